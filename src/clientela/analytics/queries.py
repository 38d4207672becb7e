"""Read-side SQL over the stored model results."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientela.analytics.rfm import GROUPS
from clientela.analytics.schemas import RfmGroupOut, RfmOut
from clientela.core.money import as_decimal
from clientela.customers.models import Customer

C = Customer.__table__.c


def rfm(*, session: Session, currency: str) -> RfmOut:
    """Each RFM group's size and share of revenue, and the R×F grid, as last computed."""
    live = C.merged_into_id.is_(None)
    by_group = {group: (count, revenue) for group, count, revenue in session.execute(
        select(C.rfm_group, func.count(), func.coalesce(func.sum(C.revenue_cents), 0))
        .where(live, C.rfm_group.is_not(None)).group_by(C.rfm_group))}
    total = sum(revenue for _count, revenue in by_group.values())
    groups = [RfmGroupOut(group=group, customers=by_group.get(group, (0, 0))[0],
                          revenue_total=float(as_decimal(by_group.get(group, (0, 0))[1],
                                                         currency)),
                          revenue_share=round(by_group.get(group, (0, 0))[1] / total, 6)
                          if total else 0.0) for group in GROUPS]
    grid = [[0] * 5 for _ in range(5)]
    for r, f, count in session.execute(
            select(C.rfm_recency, C.rfm_frequency, func.count())
            .where(live, C.rfm_recency.is_not(None))
            .group_by(C.rfm_recency, C.rfm_frequency)):
        grid[r - 1][f - 1] = count
    return RfmOut(computed_at=session.scalar(select(func.max(C.rfm_at)).where(live)),
                  customers=sum(count for count, _revenue in by_group.values()),
                  groups=groups, grid=grid)
