"""automation: scenarios and enrolments; deliveries name their template and subject and may
belong to a scenario's step instead of a campaign

Revision ID: c5d1e2f3a4b6
Revises: 95e8b2dafb8c
Create Date: 2026-11-22 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clientela.core.types

revision: str = "c5d1e2f3a4b6"
down_revision: str | None = "95e8b2dafb8c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "scenarios",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("ready_made", sa.String(length=32), nullable=True),
        sa.Column("trigger", JSON, nullable=False),
        sa.Column("steps", JSON, nullable=False),
        sa.Column("goal_event", sa.String(length=255), nullable=True),
        sa.Column("reentry", sa.String(length=16), nullable=False),
        sa.Column("quiet_start", sa.Integer(), nullable=True),
        sa.Column("quiet_end", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("active_since", clientela.core.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", clientela.core.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", clientela.core.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("reentry IN ('never','after_exit','always')",
                           name=op.f("ck_scenarios_reentry")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenarios")),
        sa.UniqueConstraint("name", name=op.f("uq_scenarios_name")),
    )
    op.create_table(
        "enrolments",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("scenario_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("next_run_at", clientela.core.types.UTCDateTime(), nullable=False),
        sa.Column("entered_at", clientela.core.types.UTCDateTime(), nullable=False),
        sa.Column("finished_at", clientela.core.types.UTCDateTime(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.CheckConstraint("status IN ('active','completed','converted','exited')",
                           name=op.f("ck_enrolments_status")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_enrolments_customer_id_customers")),
        sa.ForeignKeyConstraint(["scenario_id"], ["scenarios.id"], ondelete="CASCADE",
                                name=op.f("fk_enrolments_scenario_id_scenarios")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolments")),
        sa.UniqueConstraint("scenario_id", "customer_id", "key",
                            name=op.f("uq_enrolments_scenario_id_customer_id_key")),
    )
    with op.batch_alter_table("enrolments") as batch_op:
        batch_op.create_index("ix_enrolments_due", ["status", "next_run_at"])
        batch_op.create_index(batch_op.f("ix_enrolments_customer_id"), ["customer_id"])

    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("enrolment_id", BIG_ID, nullable=True))
        batch_op.add_column(sa.Column("step", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("template_id", BIG_ID, nullable=True))
        batch_op.add_column(sa.Column("subject", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("tracking", sa.Boolean(), nullable=True))
    op.execute("UPDATE deliveries SET template_id = (SELECT template_id FROM campaigns c "
               "WHERE c.id = deliveries.campaign_id), subject = (SELECT subject FROM "
               "campaigns c WHERE c.id = deliveries.campaign_id), tracking = (SELECT tracking "
               "FROM campaigns c WHERE c.id = deliveries.campaign_id)")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.alter_column("template_id", existing_type=BIG_ID, nullable=False)
        batch_op.alter_column("subject", existing_type=sa.String(length=500), nullable=False)
        batch_op.alter_column("tracking", existing_type=sa.Boolean(), nullable=False)
        batch_op.alter_column("campaign_id", existing_type=BIG_ID, nullable=True)
        batch_op.create_foreign_key(batch_op.f("fk_deliveries_enrolment_id_enrolments"),
                                    "enrolments", ["enrolment_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_deliveries_template_id_templates"),
                                    "templates", ["template_id"], ["id"])
        batch_op.create_unique_constraint(batch_op.f("uq_deliveries_enrolment_id_step"),
                                          ["enrolment_id", "step"])


def downgrade() -> None:
    op.execute("DELETE FROM deliveries WHERE campaign_id IS NULL")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_deliveries_enrolment_id_step"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_deliveries_template_id_templates"),
                                 type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_deliveries_enrolment_id_enrolments"),
                                 type_="foreignkey")
        batch_op.alter_column("campaign_id", existing_type=BIG_ID, nullable=False)
        for column in ("tracking", "subject", "template_id", "step", "enrolment_id"):
            batch_op.drop_column(column)
    op.drop_table("enrolments")
    op.drop_table("scenarios")
