"""CSV imports of orders, customers and products: every row checked before anything is
written (unless invalid rows are to be skipped), each problem named by line and column;
rows are upserted (orders and products by their id, customers by user id or e-mail), so a
file imported twice changes nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientela.commerce.catalog import ProductRecord, record_product
from clientela.commerce.ecommerce import MAX_QUANTITY, Line
from clientela.commerce.models import ORDER_STATUSES, Product
from clientela.commerce.payloads import count, text
from clientela.commerce.service import OrderRecord, find_order, record_order
from clientela.core.errors import InvalidInput
from clientela.core.money import Exchange, currency_code, to_minor
from clientela.customers import profile
from clientela.customers import service as customers
from clientela.customers.normalize import normalize_email, normalize_phone
from clientela.customers.schemas import CustomerIn
from clientela.tracking.schemas import parse_time

SOURCE = "import"
ORDER_COLUMNS = ("order_id", "customer_user_id", "customer_email", "customer_first_name",
                 "customer_last_name", "placed_at", "status", "currency", "total", "subtotal",
                 "discount", "shipping", "tax", "coupon", "channel")
ITEM_COLUMNS = ("product_id", "sku", "product_name", "category", "brand", "quantity",
                "unit_price")
COLUMNS = ORDER_COLUMNS + ITEM_COLUMNS
CUSTOMER_COLUMNS = ("user_id", "email", "phone", "first_name", "last_name", "gender",
                    "birthday", "locale", "city", "region", "country", "email_marketing",
                    "tags")
PRODUCT_COLUMNS = ("product_id", "sku", "name", "category", "brand", "price", "currency",
                   "url", "image_url", "stock", "active")
KINDS = {"orders": COLUMNS, "customers": CUSTOMER_COLUMNS, "products": PRODUCT_COLUMNS}
MAX_PROBLEMS = 1000


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    column: str
    rule: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.rule}"


@dataclass(slots=True)
class Report:
    """Rows read; records (orders, customers or products) imported, new among them, and
    left out with their problems."""

    rows: int = 0
    imported: int = 0
    new: int = 0
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)


class _Problems(list[Problem]):
    """Problems found in a file, each named by its line and column."""

    def read(self, reader: Callable[[], Any], line: int, column: str) -> Any:
        """What `reader` reads, or None with the rule it broke noted."""
        try:
            return reader()
        except InvalidInput as error:
            self.append(Problem(line, column, error.message.partition(": ")[2]
                                or error.message))
            return None


Checked = TypeVar("Checked")


class ImportRefused(InvalidInput):
    """The file has invalid rows and was not imported; `report` lists them."""

    def __init__(self, report: Report) -> None:
        shown = "; ".join(str(problem) for problem in report.problems[:5])
        super().__init__(f"{len(report.problems)} problem(s), nothing imported: {shown}",
                         code="invalid_file")
        self.report = report


@dataclass(slots=True)
class _Order:
    first_line: int
    values: dict[str, str]
    lines: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def read_rows(text: str, mapping: Mapping[str, str] | None = None, kind: str = "orders"
              ) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, row by Clientela's column names) for each data row of a CSV file of
    `kind`; `mapping` names the file's header for any column whose header differs."""
    columns = KINDS[kind]
    reader = csv.DictReader(io.StringIO(text))
    headers = {column: (mapping or {}).get(column, column) for column in columns}
    unknown = set(mapping or {}) - set(columns)
    if unknown:
        raise InvalidInput(f"mapping: unknown column(s) {', '.join(sorted(unknown))}; "
                           f"columns are {', '.join(columns)}", code="invalid_mapping")
    try:
        for row in reader:
            yield reader.line_num, {column: (row.get(header) or "").strip()
                                    for column, header in headers.items()}
    except csv.Error as error:
        raise InvalidInput(f"line {reader.line_num}: not readable as CSV ({error})",
                           code="invalid_csv") from None


def import_orders(*, session: Session, rows: Iterable[tuple[int, dict[str, str]]],
                  exchange: Exchange, default_region: str, skip_invalid: bool = False,
                  progress: Callable[[int], None] = lambda _done: None) -> Report:
    """Import orders from rows (see `read_rows`); raises ImportRefused, writing nothing, when
    any row is invalid, unless `skip_invalid` (then the invalid orders are left out)."""
    report = Report()
    orders: dict[str, _Order] = {}
    for line, row in rows:
        report.rows += 1
        order_id = row["order_id"]
        if not order_id:
            report.problems.append(Problem(line, "order_id", "required"))
            continue
        order = orders.setdefault(order_id, _Order(line, row))
        order.lines.append((line, row))
    records: list[tuple[OrderRecord, dict[str, str]]] = []
    for order in orders.values():
        found = _checked(order, exchange.store_currency)
        if isinstance(found, list):
            report.problems += found
            report.skipped += 1
        else:
            records.append((found, order.values))
    _refuse_unless(report, skip_invalid)
    for record, values in records:
        known = find_order(session=session, source=SOURCE, external_id=record.external_id)
        customer_id = _customer(session, values, known.customer_id if known else None,
                                record.placed_at, default_region)
        record_order(session=session, source=SOURCE, record=record, customer_id=customer_id,
                     exchange=exchange)
        report.imported += 1
        report.new += known is None
        progress(len(orders[record.external_id].lines))
    return report


def _checked(order: _Order, store_currency: str) -> OrderRecord | list[Problem]:
    problems = _Problems()
    read = problems.read
    values, line = order.values, order.first_line
    for other_line, row in order.lines[1:]:
        for column in ORDER_COLUMNS:
            if row[column] and row[column] != values[column]:
                problems.append(Problem(other_line, column,
                                        f"differs from line {line} of the same order"))
    if not values["customer_user_id"] and not values["customer_email"]:
        problems.append(Problem(line, "customer_email", "customer_email or customer_user_id "
                                "is required"))
    if values["customer_email"] and normalize_email(values["customer_email"]) is None:
        problems.append(Problem(line, "customer_email", "not an e-mail address"))
    for column, limit in _LIMITS.items():
        if len(values[column]) > limit:
            problems.append(Problem(line, column, f"at most {limit} characters"))
    placed = read(lambda: _placed(values["placed_at"]), line, "placed_at")
    status = values["status"] or "placed"
    if status not in ORDER_STATUSES:
        problems.append(Problem(line, "status", f"must be one of {', '.join(ORDER_STATUSES)}"))
    currency = read(lambda: currency_code(values["currency"] or store_currency, "currency"),
                    line, "currency") or store_currency
    amounts = {name: read(partial(_amount, values[name], currency), line, name)
               for name in ("total", "subtotal", "discount", "shipping", "tax")}
    items = [item for item in (_item(row, number, currency, read)
                               for number, row in order.lines) if item is not None]
    total = amounts["total"]
    if total is None and items:
        total = sum((item.price_cents or 0) * item.quantity for item in items)
    if total is None and not values["total"]:
        problems.append(Problem(line, "total", "required when the order has no items"))
    if problems or placed is None or total is None:
        return problems
    return OrderRecord(
        external_id=values["order_id"], status=status, currency=currency, placed_at=placed,
        total_cents=total, subtotal_cents=amounts["subtotal"],
        discount_cents=amounts["discount"] or 0, shipping_cents=amounts["shipping"] or 0,
        tax_cents=amounts["tax"] or 0, coupon=values["coupon"] or None,
        channel=values["channel"] or "web", lines=tuple(items))


# Order columns cut to what the database holds (items are cut when read).
_LIMITS = {"order_id": 255, "customer_user_id": 255, "customer_email": 320,
           "customer_first_name": 200, "customer_last_name": 200, "coupon": 255, "channel": 64}


def _item(row: dict[str, str], line: int, currency: str,
          read: Callable[[Callable[[], Any], int, str], Any]) -> Line | None:
    if not any(row[column] for column in ITEM_COLUMNS):
        return None
    quantity = read(lambda: _quantity(row["quantity"]), line, "quantity")
    price = read(lambda: _amount(row["unit_price"], currency), line, "unit_price")
    return Line(product_id=text(row["product_id"]), sku=text(row["sku"]),
                name=text(row["product_name"], 500), category=text(row["category"], 500),
                brand=text(row["brand"]), quantity=quantity if quantity is not None else 1,
                price_cents=price)


def _placed(text: str) -> datetime:
    if not text:
        raise InvalidInput("placed_at: required", code="invalid_row")
    moment = parse_time(text, "placed_at")
    assert moment is not None
    return moment


def _amount(text: str, currency: str) -> int | None:
    return to_minor(text, "amount", currency) if text else None


def _quantity(text: str) -> int:
    if not text:
        return 1
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_QUANTITY:
        raise InvalidInput(f"quantity: must be a whole number from 0 to {MAX_QUANTITY}",
                           code="invalid_row")
    return int(text)


def _customer(session: Session, values: dict[str, str], known: int | None, placed: datetime,
              region: str) -> int:
    fields = {"email": values["customer_email"] or None,
              "user_id": values["customer_user_id"] or None,
              "first_name": values["customer_first_name"] or None,
              "last_name": values["customer_last_name"] or None}
    stated = {key: value for key, value in fields.items() if value}
    if stated.keys() & {"email", "user_id"}:
        customer, _new = profile.upsert_customer(session=session, data=CustomerIn(**stated),
                                                 default_region=region)
        return customer.id
    return known or customers.create_customer(session=session, seen_at=placed)


def import_customers(*, session: Session, rows: Iterable[tuple[int, dict[str, str]]],
                     default_region: str, skip_invalid: bool = False,
                     progress: Callable[[int], None] = lambda _done: None) -> Report:
    """Create or update customers (found by user id, else e-mail) from rows of `read_rows`."""
    report, checked = _checked_rows(rows, partial(_customer_in, region=default_region),
                                    skip_invalid)
    for data in checked:
        _customer_found, new = profile.upsert_customer(session=session, data=data,
                                                       default_region=default_region)
        report.imported += 1
        report.new += new
        progress(1)
    return report


def import_products(*, session: Session, rows: Iterable[tuple[int, dict[str, str]]],
                    exchange: Exchange, skip_invalid: bool = False,
                    progress: Callable[[int], None] = lambda _done: None) -> Report:
    """Create or update catalog products (by product id) from rows of `read_rows`."""
    report, checked = _checked_rows(
        rows, partial(_product, store_currency=exchange.store_currency), skip_invalid)
    for record in checked:
        known = session.scalar(select(Product.id).where(Product.source == SOURCE,
                                                        Product.external_id == record.external_id))
        record_product(session=session, source=SOURCE, record=record)
        report.imported += 1
        report.new += known is None
        progress(1)
    return report


def _checked_rows(rows: Iterable[tuple[int, dict[str, str]]],
                  check: Callable[[int, dict[str, str]], Checked | list[Problem]],
                  skip_invalid: bool) -> tuple[Report, list[Checked]]:
    """Each row checked on its own: what passed, and a report of the rest (ImportRefused if
    any failed, unless `skip_invalid`)."""
    report, checked = Report(), []
    for line, row in rows:
        report.rows += 1
        found = check(line, row)
        if isinstance(found, list):
            report.problems += found
            report.skipped += 1
        else:
            checked.append(found)
    _refuse_unless(report, skip_invalid)
    return report, checked


def _refuse_unless(report: Report, skip_invalid: bool) -> None:
    if report.problems and not skip_invalid:
        report.problems = report.problems[:MAX_PROBLEMS]
        raise ImportRefused(report)


def _customer_in(line: int, row: dict[str, str], *, region: str) -> CustomerIn | list[Problem]:
    problems: list[Problem] = []
    if not row["user_id"] and not row["email"]:
        problems.append(Problem(line, "email", "email or user_id is required"))
    if row["email"] and normalize_email(row["email"]) is None:
        problems.append(Problem(line, "email", "not an e-mail address"))
    if row["phone"] and normalize_phone(row["phone"], default_region=region) is None:
        problems.append(Problem(line, "phone", "not a phone number"))
    if row["email_marketing"] not in ("", "subscribed", "unsubscribed"):
        problems.append(Problem(line, "email_marketing", "must be subscribed or unsubscribed"))
    fields: dict[str, Any] = {column: row[column] for column in CUSTOMER_COLUMNS
                              if row[column] and column not in ("email_marketing", "tags")}
    if row["email_marketing"]:
        fields["consent"] = {"email_marketing": row["email_marketing"], "source": "import"}
    if row["tags"]:
        fields["tags"] = [tag.strip() for tag in row["tags"].split(";") if tag.strip()]
    try:
        data = CustomerIn(**fields)
    except ValidationError as error:
        for problem in error.errors():
            column = str(problem["loc"][0]) if problem["loc"] else "row"
            problems.append(Problem(line, column, str(problem["msg"])))
        return problems
    return problems or data


def _product(line: int, row: dict[str, str], *, store_currency: str
             ) -> ProductRecord | list[Problem]:
    problems = _Problems()
    if not row["product_id"]:
        problems.append(Problem(line, "product_id", "required"))
    elif len(row["product_id"]) > 255:
        problems.append(Problem(line, "product_id", "at most 255 characters"))
    currency = problems.read(partial(currency_code, row["currency"] or store_currency,
                                     "currency"), line, "currency") or store_currency
    price = problems.read(partial(_amount, row["price"], currency), line, "price")
    stock = problems.read(partial(_whole, row["stock"]), line, "stock")
    if row["active"].lower() not in ("", "true", "false", "yes", "no", "1", "0"):
        problems.append(Problem(line, "active", "must be true or false"))
    if problems:
        return problems
    return ProductRecord(
        external_id=row["product_id"], currency=currency,
        stock=stock, active=row["active"].lower() not in ("false", "no", "0"),
        line=Line(product_id=row["product_id"], sku=text(row["sku"]),
                  name=text(row["name"], 500), category=text(row["category"], 500),
                  brand=text(row["brand"]), price_cents=price, url=text(row["url"], 2000),
                  image_url=text(row["image_url"], 2000)))


def _whole(text: str) -> int | None:
    if not text:
        return None
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or count(int(text)) is None:
        raise InvalidInput("stock: must be a whole number", code="invalid_row")
    return int(text)


def import_file(*, session: Session, kind: str, text: str, mapping: Mapping[str, str],
                exchange: Exchange, default_region: str, skip_invalid: bool,
                progress: Callable[[int], None] = lambda _done: None) -> Report:
    """Import a CSV file of `kind` (orders, customers or products)."""
    if kind not in KINDS:
        raise InvalidInput(f"kind: must be one of {', '.join(KINDS)}", code="invalid_kind")
    rows = list(read_rows(text, mapping, kind))
    if kind == "orders":
        return import_orders(session=session, rows=rows, exchange=exchange,
                             default_region=default_region, skip_invalid=skip_invalid,
                             progress=progress)
    if kind == "customers":
        return import_customers(session=session, rows=rows, default_region=default_region,
                                skip_invalid=skip_invalid, progress=progress)
    return import_products(session=session, rows=rows, exchange=exchange,
                           skip_invalid=skip_invalid, progress=progress)
