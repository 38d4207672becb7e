"""The analytics API's contracts."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class RfmGroupOut(BaseModel):
    group: str
    customers: int
    revenue_total: float = Field(description="Their revenue, in the store currency.")
    revenue_share: float = Field(description="Of the scored customers' revenue, 0-1.")


class RfmOut(BaseModel):
    computed_at: datetime | None
    customers: int
    groups: list[RfmGroupOut]
    grid: list[list[int]] = Field(description="Customers by recency (rows, R=1 first) and "
                                              "frequency (columns, F=1 first).")


class Overview(BaseModel):
    customers: int = Field(description="Live customers now, buyers or not.")
    buyers: int
    new_buyers: int = Field(description="Buyers whose first purchase is in the period.")
    returning_buyers: int
    orders: int
    revenue_total: float
    average_order_value: float | None
    repeat_purchase_rate: float | None = Field(
        description="Buyers with two purchases or more in the period, among all buyers.")


class PeriodRow(BaseModel):
    period: date = Field(description="The first day of the day, ISO week or month.")
    orders: int
    revenue_total: float
    buyers: int
    new_buyers: int
    returning_buyers: int


class Bucket(BaseModel):
    low: float
    high: float | None = Field(description="Inclusive for orders, exclusive for money; "
                                           "null: no upper bound.")
    customers: int


class CohortRow(BaseModel):
    cohort: date = Field(description="The month of the first purchase.")
    customers: int
    retention: list[float] = Field(description="Share of the cohort buying in month 0, 1, …")


class TopRow(BaseModel):
    key: str
    name: str | None
    units: int
    orders: int
    revenue_total: float


class CountryRow(BaseModel):
    country: str | None
    customers: int
    buyers: int
    revenue_total: float
