"""tags stored lower-case; (event, timestamp) index covers customer_id, and on PostgreSQL
(customer_id, timestamp) covers event; indexes on the event properties segments filter by most

Revision ID: a41c9e07b3d2
Revises: d68966fda90f
Create Date: 2026-11-22 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a41c9e07b3d2"
down_revision: str | None = "d68966fda90f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in clientela.tracking.models.INDEXED_PROPERTIES when this migration was written.
PROPERTIES = ("category", "product_id")


def _lower_tags(connection: sa.Connection) -> None:
    """Each customer's tags lower-cased; of two that become one, the older is kept."""
    tags = sa.table("customer_tags", sa.column("customer_id", sa.BigInteger),
                    sa.column("tag", sa.String), sa.column("created_at", sa.DateTime))
    rows = connection.execute(sa.select(tags.c.customer_id, tags.c.tag, tags.c.created_at)
                              .order_by(tags.c.created_at)).all()
    touched = {customer_id for customer_id, tag, _ in rows if tag != tag.lower()}
    if not touched:
        return
    lowered: dict[tuple[int, str], object] = {}
    for customer_id, tag, created_at in rows:
        if customer_id in touched:
            lowered.setdefault((customer_id, tag.lower()), created_at)
    ids = sorted(touched)
    for start in range(0, len(ids), 500):
        connection.execute(sa.delete(tags).where(tags.c.customer_id.in_(ids[start:start + 500])))
    connection.execute(sa.insert(tags), [
        {"customer_id": customer_id, "tag": tag, "created_at": created_at}
        for (customer_id, tag), created_at in lowered.items()])


def _extract(dialect: str, key: str) -> str:
    if dialect == "postgresql":
        return f"(properties ->> '{key}')"
    return f"json_extract(properties, '$.{key}')"


def upgrade() -> None:
    connection = op.get_bind()
    _lower_tags(connection)
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_index("ix_events_event_time")
        batch_op.create_index("ix_events_event_time", ["event", "timestamp", "customer_id"])
    dialect = connection.dialect.name
    if dialect == "postgresql":  # "did X lately?" for one customer from the index alone
        op.drop_index("ix_events_customer_time", table_name="events")
        op.create_index("ix_events_customer_time", "events", ["customer_id", "timestamp"],
                        postgresql_include=["event"])
    for key in PROPERTIES:
        op.execute(f"CREATE INDEX ix_events_property_{key} ON events "
                   f"({_extract(dialect, key)}, event, timestamp, customer_id) "
                   f"WHERE {_extract(dialect, key)} IS NOT NULL")


def downgrade() -> None:
    for key in PROPERTIES:
        op.execute(f"DROP INDEX ix_events_property_{key}")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_events_customer_time", table_name="events")
        op.create_index("ix_events_customer_time", "events", ["customer_id", "timestamp"])
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_index("ix_events_event_time")
        batch_op.create_index("ix_events_event_time", ["event", "timestamp"])
