"""The analytics API's contracts."""

from __future__ import annotations

from datetime import datetime

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
