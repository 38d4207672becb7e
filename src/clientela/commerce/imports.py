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

from clientela.commerce.bulk import Placed, load_orders
from clientela.commerce.catalog import ProductRecord, record_product
from clientela.commerce.ecommerce import MAX_QUANTITY, Line
from clientela.commerce.models import ORDER_STATUSES, Product
from clientela.commerce.payloads import count, text
from clientela.commerce.service import OrderRecord
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
    checked: list[tuple[OrderRecord, _Order]] = []
    for order in orders.values():
        found = _checked(order, exchange.store_currency)
        if isinstance(found, list):
            report.problems += found
            report.skipped += 1
        else:
            checked.append((found, order))
    buyers = _Buyers(session, [order for _record, order in checked])
    placed: list[tuple[OrderRecord, _Buyer]] = []
    for record, order in checked:
        buyer = buyers.of(order, record.placed_at)
        if isinstance(buyer, Problem):
            report.problems.append(buyer)
            report.skipped += 1
        else:
            placed.append((record, buyer))
    _refuse_unless(report, skip_invalid)
    owners = buyers.write(session, placed, default_region)
    loaded = load_orders(session=session, source=SOURCE, exchange=exchange, progress=progress,
                         orders=[Placed(record, owners[id(buyer)]) for record, buyer in placed])
    report.imported, report.new = loaded.orders, loaded.new
    return report


@dataclass(slots=True)
class _Buyer:
    """A customer an order names: a stored one (`customer_id`) or one to create."""

    customer_id: int | None
    user_ids: set[str]
    traits: list[tuple[dict[str, Any], datetime]] = field(default_factory=list)
    identities: list[tuple[str, str]] = field(default_factory=list)  # to add: (kind, value)


class _Buyers:
    """Who placed each order: the customer with its user id, else its e-mail, else a new one
    (rows naming the same user id or e-mail are the same new customer). An order whose user id
    and e-mail belong to two different customers is a problem, as in the profile API."""

    def __init__(self, session: Session, orders: list[_Order]) -> None:
        self.by_user_id: dict[str, _Buyer] = {}
        self.by_email: dict[str, _Buyer] = {}
        self._look_up(session, orders)

    def of(self, order: _Order, placed_at: datetime) -> _Buyer | Problem:
        values, line = order.values, order.first_line
        user_id = values["customer_user_id"] or None
        email = normalize_email(values["customer_email"]) if values["customer_email"] else None
        known = self.by_user_id.get(user_id) if user_id else None
        by_email = self.by_email.get(email) if email else None
        if known is not None and by_email is not None and known is not by_email:
            return Problem(line, "customer_email", "belongs to another customer than "
                           f"customer_user_id {user_id!r}; merge the two first")
        buyer = known or by_email or _Buyer(None, set())
        if user_id and known is None and buyer.user_ids:  # found by e-mail
            return Problem(line, "customer_user_id", "the customer with this e-mail has user "
                           f"id {sorted(buyer.user_ids)[0]!r}")
        if user_id and known is None:
            buyer.user_ids.add(user_id)
            self.by_user_id[user_id] = buyer
            buyer.identities.append(("user_id", user_id))
        if email and by_email is None:
            self.by_email[email] = buyer
            buyer.identities.append(("email", email))
        stated = {"email": values["customer_email"], "firstName": values["customer_first_name"],
                  "lastName": values["customer_last_name"]}
        buyer.traits.append(({key: value for key, value in stated.items() if value}, placed_at))
        return buyer

    def _look_up(self, session: Session, orders: list[_Order]) -> None:
        """Learn the stored customers the orders' user ids and e-mails belong to."""
        values = [order.values for order in orders]
        by_user_id = customers.identity_owners(
            session=session, kind="user_id",
            values={row["customer_user_id"] for row in values if row["customer_user_id"]})
        by_email = customers.identity_owners(
            session=session, kind="email",
            values={email for row in values if row["customer_email"]
                    and (email := normalize_email(row["customer_email"]))})
        user_ids = customers.user_ids_of(session=session,
                                         customer_ids=set(by_email.values()))
        stored: dict[int, _Buyer] = {}
        for customer_id in {*by_user_id.values(), *by_email.values()}:
            stored[customer_id] = _Buyer(customer_id, set(user_ids.get(customer_id, ())))
        for user_id, customer_id in by_user_id.items():
            stored[customer_id].user_ids.add(user_id)
            self.by_user_id[user_id] = stored[customer_id]
        for email, customer_id in by_email.items():
            self.by_email[email] = stored[customer_id]

    def write(self, session: Session, placed: list[tuple[OrderRecord, _Buyer]], region: str
              ) -> dict[int, int]:
        """Create the new customers, add identities, traits and seen times; the customer id
        of each buyer (by `id(buyer)`)."""
        buyers = list({id(buyer): buyer for _record, buyer in placed}.values())
        fresh = [buyer for buyer in buyers if buyer.customer_id is None]
        ids = customers.create_customers(session=session, seen_at=[
            min(at for _traits, at in buyer.traits) for buyer in fresh])
        for buyer, customer_id in zip(fresh, ids, strict=True):
            buyer.customer_id = customer_id
        owners = {id(buyer): buyer.customer_id for buyer in buyers
                  if buyer.customer_id is not None}
        customers.add_identities(session=session, identities=[
            (owners[id(buyer)], kind, value) for buyer in buyers
            for kind, value in buyer.identities])
        customers.apply_trait_observations(
            session=session, source=SOURCE, default_region=region,
            observations={owners[id(buyer)]: buyer.traits for buyer in buyers})
        customers.record_activity(session=session, activity={
            owners[id(buyer)]: customers.Activity(
                first_seen_at=min(at for _traits, at in buyer.traits),
                last_seen_at=max(at for _traits, at in buyer.traits)) for buyer in buyers})
        return owners


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
