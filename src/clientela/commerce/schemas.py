"""The API's view of products, orders and carts. Amounts are decimal numbers in the row's
currency (never floats on the way in; exact to the minor unit on the way out)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field


class ProductOut(BaseModel):
    id: int
    source: str
    external_id: str
    sku: str | None
    name: str | None
    category: str | None
    brand: str | None
    price: Decimal | None
    currency: str | None
    url: str | None
    image_url: str | None
    stock: int | None
    active: bool
    updated_at: datetime


class ProductSales(BaseModel):
    """What a product sold: orders that were not cancelled, in their order currency."""

    orders: int
    units: int
    buyers: int
    revenue: dict[str, Decimal] = Field(description="Sales by currency.")


class ProductDetail(ProductOut):
    sales: ProductSales
    top_buyers: list[int] = Field(description="Customer ids, most units first.")


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


class OrderItemOut(BaseModel):
    product_id: int | None
    sku: str | None
    name: str | None
    category: str | None
    brand: str | None
    quantity: int
    unit_price: Decimal


class RefundOut(BaseModel):
    external_id: str
    amount: Decimal
    reason: str | None
    refunded_at: datetime


class OrderOut(BaseModel):
    id: int
    source: str
    external_id: str
    customer_id: int
    status: str
    currency: str
    subtotal: Decimal | None
    discount: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    refunded: Decimal
    net_store: Decimal | None = Field(description="Total less refunds in the store currency; "
                                      "null without a rate for the order's currency.")
    coupon: str | None
    channel: str
    placed_at: datetime
    items: list[OrderItemOut]
    refunds: list[RefundOut]


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class CartOut(BaseModel):
    id: int
    external_id: str | None
    customer_id: int
    status: str
    currency: str | None
    items: list[dict[str, Any]]
    quantity: int
    value: Decimal
    checkout_started_at: datetime | None
    order_id: int | None
    updated_at: datetime
    abandoned_at: datetime | None


class ImportProblem(BaseModel):
    line: int
    column: str
    rule: str


class ImportReport(BaseModel):
    rows: int
    imported: int
    new: int
    skipped: int
    problems: list[ImportProblem] = Field(description="Rows left out with skip_invalid.")
