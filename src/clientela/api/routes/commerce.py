"""/api/v1/products, /api/v1/orders and a customer's orders and carts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from clientela.api.deps import (
    Limit,
    QueryText,
    ReadSessionDep,
    RowId,
    SecretKeyDep,
    SettingsDep,
)
from clientela.api.responses import FastJSONResponse
from clientela.commerce import imports, queries
from clientela.commerce.schemas import (
    CartOut,
    ImportReport,
    OrderOut,
    OrderPage,
    ProductDetail,
    ProductPage,
)
from clientela.config import Settings
from clientela.core.errors import InvalidInput
from clientela.core.pagination import decode_cursor, encode_cursor, time_position
from clientela.customers import service as customers
from clientela.db import session_scope

router = APIRouter(prefix="/api/v1", tags=["commerce"])
Status = Annotated[str | None, Query(max_length=16)]
MapText = Annotated[str, Query(max_length=300, pattern=r"^[^\x00]*$")]
MAX_CSV_BYTES = 50 * 1024 * 1024


@router.get("/products", response_model=ProductPage)
def list_products(session: ReadSessionDep, settings: SettingsDep, _key: SecretKeyDep,
                  q: QueryText = None, cursor: str | None = None,
                  limit: Limit = 50) -> ProductPage:
    """The catalog by id; `q` searches name, SKU, brand, category and external id."""
    after = _id_position(decode_cursor(cursor, secret=_secret(settings, "products")))\
        if cursor else None
    rows = queries.products(session=session, q=q, limit=limit + 1, after=after)
    more = len(rows) > limit
    rows = rows[:limit]
    return ProductPage(items=rows, next_cursor=encode_cursor(
        [rows[-1].id], secret=_secret(settings, "products")) if more else None)


@router.get("/products/{product_id}", response_model=ProductDetail)
def get_product(product_id: RowId, session: ReadSessionDep, _key: SecretKeyDep
                ) -> ProductDetail:
    """A product with its sales (orders, units, buyers, revenue by currency) and top buyers."""
    return queries.product(session=session, product_id=product_id)


@router.get("/orders", response_model=OrderPage)
def list_orders(session: ReadSessionDep, settings: SettingsDep, _key: SecretKeyDep,
                customer_id: Annotated[RowId | None, Query()] = None,
                status: Status = None, cursor: str | None = None,
                limit: Limit = 50) -> OrderPage:
    """Orders, newest first, with their items and refunds."""
    return _order_page(session, settings, customer_id, status, cursor, limit)


@router.get("/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: RowId, session: ReadSessionDep, settings: SettingsDep,
              _key: SecretKeyDep) -> OrderOut:
    return queries.order(session=session, order_id=order_id,
                         store_currency=settings.store_currency)


@router.get("/customers/{customer_id}/orders", response_model=OrderPage)
def customer_orders(customer_id: RowId, session: ReadSessionDep, settings: SettingsDep,
                    _key: SecretKeyDep, status: Status = None, cursor: str | None = None,
                    limit: Limit = 50) -> OrderPage:
    """One customer's orders, newest first."""
    customers.get_customer(session=session, customer_id=customer_id)
    return _order_page(session, settings, customer_id, status, cursor, limit)


@router.get("/customers/{customer_id}/carts", response_model=list[CartOut])
def customer_carts(customer_id: RowId, session: ReadSessionDep,
                   _key: SecretKeyDep) -> list[CartOut]:
    """One customer's carts (open, converted, abandoned), most recently changed first."""
    customers.get_customer(session=session, customer_id=customer_id)
    return queries.carts(session=session, customer_id=customer_id)


@router.post("/imports/{kind}", response_model=ImportReport, openapi_extra={
    "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def import_csv(
    kind: Literal["orders", "customers", "products"], request: Request, settings: SettingsDep,
    _key: SecretKeyDep, skip_invalid: bool = False,
    mapped: Annotated[list[MapText] | None,
                      Query(alias="map", description="COLUMN=HEADER")] = None,
) -> Any:
    """Import orders, customers or products from a CSV body (as `clientela import KIND`):
    all or nothing unless `skip_invalid`; a 400 lists every problem by line and column."""
    body = await request.body()
    if len(body) > MAX_CSV_BYTES:
        raise InvalidInput(f"body: larger than {MAX_CSV_BYTES} bytes", code="payload_too_large")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("body: must be UTF-8 text", code="invalid_encoding") from None
    mapping = dict(item.split("=", 1) for item in mapped or [] if "=" in item)
    engine = request.app.state.engine

    def run() -> imports.Report:
        with session_scope(engine) as session:
            return imports.import_file(session=session, kind=kind, text=text, mapping=mapping,
                                       exchange=settings.exchange,
                                       default_region=settings.default_country,
                                       skip_invalid=skip_invalid)

    try:
        report = await run_in_threadpool(run)
    except imports.ImportRefused as refused:
        return FastJSONResponse(status_code=400, content={
            "code": refused.code, "message": refused.message,
            "problems": [_problem(problem) for problem in refused.report.problems]})
    return ImportReport(rows=report.rows, imported=report.imported, new=report.new,
                        skipped=report.skipped,
                        problems=[_problem(problem) for problem in report.problems])


def _problem(problem: imports.Problem) -> dict[str, Any]:
    return {"line": problem.line, "column": problem.column, "rule": problem.rule}


def _order_page(session: ReadSessionDep, settings: Settings, customer_id: int | None,
                status: str | None, cursor: str | None, limit: int) -> OrderPage:
    secret = _secret(settings, "orders")
    before = time_position(decode_cursor(cursor, secret=secret)) if cursor else None
    rows = queries.orders(session=session, customer_id=customer_id, status=status,
                          limit=limit + 1, before=before, store_currency=settings.store_currency)
    more = len(rows) > limit
    rows = rows[:limit]
    return OrderPage(items=rows, next_cursor=encode_cursor(
        [rows[-1].placed_at.isoformat(), rows[-1].id], secret=secret) if more else None)


def _secret(settings: Settings, listing: str) -> str:
    return f"{settings.secret_key}:{listing}"


def _id_position(values: list[object]) -> int:
    if len(values) == 1 and type(values[0]) is int:
        return values[0]
    raise InvalidInput("cursor: does not belong to this listing", code="invalid_cursor")
