"""refunded orders bring no revenue

Orders written before this revision could say `refunded` and still carry their total as net
revenue (a platform that calls an order refunded without listing its refunds), or say
`paid` with refunds that cover the total (a restatement delivered after the refund). Their
net revenue, status and their customers' revenue are put right once.

Revision ID: 5b8e1c7d2a40
Revises: 7e2b4d6a9c1f
Create Date: 2026-11-22 18:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '5b8e1c7d2a40'
down_revision: str | None = '7e2b4d6a9c1f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE orders SET status = 'refunded' WHERE status IN ('placed', 'paid', "
               "'fulfilled') AND total_cents > 0 AND refunded_cents >= total_cents")
    op.execute("UPDATE orders SET net_store_cents = 0 WHERE status = 'refunded' "
               "AND (net_store_cents IS NULL OR net_store_cents <> 0)")
    op.execute("UPDATE customers SET revenue_cents = (SELECT coalesce(sum(net_store_cents), 0) "
               "FROM orders WHERE orders.customer_id = customers.id "
               "AND orders.status <> 'cancelled') "
               "WHERE id IN (SELECT customer_id FROM orders WHERE status = 'refunded')")


def downgrade() -> None:
    pass  # the corrected values are right under the earlier revision too
