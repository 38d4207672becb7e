"""enrolments count the failed attempts of their current step (webhooks give up)

Revision ID: c9a7d3e5f1b2
Revises: b8e4f1a2c3d5
Create Date: 2026-11-22 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c9a7d3e5f1b2"
down_revision: str | None = "b8e4f1a2c3d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrolments") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("enrolments") as batch:
        batch.drop_column("attempts")
