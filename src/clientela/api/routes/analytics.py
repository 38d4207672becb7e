"""/api/v1/rfm and /api/v1/reports: RFM groups, the R×F grid and the shop's aggregate views."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from clientela.analytics import queries, reports
from clientela.analytics.schemas import (
    Bucket,
    CohortRow,
    CountryRow,
    Overview,
    PeriodRow,
    RfmOut,
    TopRow,
)
from clientela.api.deps import Limit, ReadSessionDep, SecretKeyDep, SettingsDep
from clientela.core.clock import utcnow

router = APIRouter(prefix="/api/v1", tags=["analytics"])


@router.get("/rfm", response_model=RfmOut)
def rfm(session: ReadSessionDep, settings: SettingsDep, _key: SecretKeyDep) -> RfmOut:
    """Each RFM group with its size and revenue share, and customers by R and F score, as
    last computed (nightly, or by `clientela rfm compute`)."""
    return queries.rfm(session=session, currency=settings.store_currency)


Start = Annotated[date | None, Query(description="From the start of this day (UTC).")]
End = Annotated[date | None, Query(description="To the end of this day (UTC).")]


@router.get("/reports/overview", response_model=Overview)
def overview(session: ReadSessionDep, settings: SettingsDep, _key: SecretKeyDep,
             start: Start = None, end: End = None) -> Overview:
    """Orders, revenue, average order value, buyers new and returning, repeat-purchase
    rate, over the period (everything by default)."""
    return reports.overview(session=session, currency=settings.store_currency, start=start,
                            end=end)


@router.get("/reports/revenue", response_model=list[PeriodRow])
def revenue(session: ReadSessionDep, settings: SettingsDep, _key: SecretKeyDep,
            interval: Literal["day", "week", "month"] = "month", start: Start = None,
            end: End = None) -> list[PeriodRow]:
    """Orders, revenue and buyers (new and returning) per day, ISO week or month."""
    return reports.over_time(session=session, currency=settings.store_currency,
                             interval=interval, start=start, end=end)


@router.get("/reports/distribution", response_model=list[Bucket])
def distribution(session: ReadSessionDep, settings: SettingsDep, _key: SecretKeyDep,
                 by: Literal["revenue", "orders"] = "revenue") -> list[Bucket]:
    """Buyers by their total revenue (readable buckets) or by their number of orders."""
    return reports.distribution(session=session, currency=settings.store_currency, by=by)


@router.get("/reports/cohorts", response_model=list[CohortRow])
def cohorts(session: ReadSessionDep, _key: SecretKeyDep,
            cohorts: Annotated[int, Query(ge=1, le=120)] = 12,
            months: Annotated[int, Query(ge=0, le=120)] = 12) -> list[CohortRow]:
    """Monthly cohorts of new buyers and the share buying again in each month after."""
    return reports.cohorts(session=session, cohorts=cohorts, months=months, until=utcnow())


@router.get("/reports/top", response_model=list[TopRow])
def top(session: ReadSessionDep, settings: SettingsDep, _key: SecretKeyDep,
        by: Literal["product", "category"] = "product", limit: Limit = 10,
        start: Start = None, end: End = None) -> list[TopRow]:
    """Best-selling products (or top-level categories) by revenue in the store currency."""
    return reports.top_products(session=session, exchange=settings.exchange, by=by,
                                limit=limit, start=start, end=end)


@router.get("/reports/countries", response_model=list[CountryRow])
def countries(session: ReadSessionDep, settings: SettingsDep, _key: SecretKeyDep,
              limit: Limit = 50) -> list[CountryRow]:
    """Customers, buyers and revenue by country, largest first."""
    return reports.countries(session=session, currency=settings.store_currency, limit=limit)
