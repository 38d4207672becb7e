"""The demo shop loaded through the services real data goes through.

- Everyone's sign-up is an `identify` call (traits: name, e-mail, phone, gender, birthday,
  address), recorded by `record_events` as if the shop had sent it then; e-mail consent as
  the shop's customer export would state it (`set_email_consents`).
- Purchases older than the last `RECENT_DAYS` are the shop's order history, loaded as an
  import of its orders (`commerce.bulk.load_orders`, under the events source, so later
  events about them find them), with cancellations and refunds.
- The last `RECENT_DAYS` are live traffic through `record_events`: browsing sessions with
  page views (some from campaigns), searches, product views, carts and checkouts, the
  recent orders and what happened to them, sign-ins on second devices (which merge
  profiles), and anonymous visitors. Carts left alone are then marked abandoned.

Work goes a chunk of people at a time, each in its own transactions, so memory stays flat
and a million customers load in minutes. Calls carry fixed message ids and orders fixed
ids: loading the same shop again adds nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, select

from clientela.commerce.bulk import Placed, load_orders
from clientela.commerce.carts import abandon_carts
from clientela.commerce.catalog import ProductRecord, record_product
from clientela.commerce.ecommerce import Line
from clientela.commerce.models import EVENTS_SOURCE
from clientela.commerce.service import OrderRecord, RefundRecord
from clientela.config import Settings
from clientela.customers import service as customers
from clientela.db import session_scope
from clientela.demo.store import CATEGORIES, CHANNELS, CITIES, Ints, Shop, ascii_text
from clientela.tracking.models import Event
from clientela.tracking.service import record_events, validated_event

RECENT_DAYS = 14
PEOPLE_PER_CHUNK = 20_000
CALLS_PER_WRITE = 5_000
VISITORS_PER_CUSTOMER = 0.5  # anonymous visitors who never sign up
SHOP_URL = "https://loja.example.com"
SHIPPING_CENTS, FREE_SHIPPING_FROM = 1990, 29900
CAMPAIGNS = (("google", "cpc", "marca"), ("instagram", "social", "colecao-verao"),
             ("newsletter", "email", "novidades-da-semana"), ("facebook", "social", "ofertas"))
PAGES = (("/", "Início"), ("/ofertas", "Ofertas"), ("/novidades", "Novidades"),
         ("/sobre", "Sobre nós"))


@dataclass(slots=True)
class Loaded:
    customers: int = 0
    orders: int = 0
    calls: int = 0
    stored: int = 0
    abandoned_carts: int = 0


def load(*, engine: Engine, settings: Settings, shop: Shop, source_id: int,
         progress: Callable[[str, int, int], None] = lambda _what, _done, _total: None
         ) -> Loaded:
    """Load `shop` (see the module's docstring); `progress(what, done, total)` as it goes."""
    loaded = Loaded(customers=len(shop.people))
    writer = _Writer(engine, settings, source_id, shop.anchor)
    with session_scope(engine) as session:
        for record in _catalog(shop):
            record_product(session=session, source=EVENTS_SOURCE, record=record)
    people = len(shop.people)
    visitors = int(people * VISITORS_PER_CUSTOMER)
    recent = shop.purchases.days_ago <= RECENT_DAYS
    by_person = np.argsort(shop.purchases.person, kind="stable")
    starts = np.searchsorted(shop.purchases.person[by_person], np.arange(people + 1))
    for first in range(0, people, PEOPLE_PER_CHUNK):
        last = min(first + PEOPLE_PER_CHUNK, people)
        chunk = _Chunk(shop, range(first, last), by_person[starts[first]:starts[last]], recent)
        writer.record(chunk.sign_ups())
        writer.consent(chunk)
        loaded.orders += writer.history(chunk)
        writer.record(chunk.sessions(random.Random(f"{shop.seed}-{first}")))
        progress("customers", last, people)
    for first in range(0, visitors, PEOPLE_PER_CHUNK):
        last = min(first + PEOPLE_PER_CHUNK, visitors)
        rng = random.Random(f"{shop.seed}-visitors-{first}")
        writer.record(_visits(shop, range(first, last), rng))
        progress("visitors", last, visitors)
    with session_scope(engine) as session:
        loaded.abandoned_carts = abandon_carts(session=session, now=shop.anchor,
                                               after_minutes=settings.cart_abandon_minutes)
    loaded.calls, loaded.stored = writer.calls, writer.stored
    return loaded


def previous_anchor(*, engine: Engine, source_id: int) -> datetime | None:
    """When the demo loaded before ended its history (its calls are received then), so
    that loading it again rebuilds the same shop instead of one shifted in time."""
    with session_scope(engine, writes=False) as session:
        return session.scalar(select(Event.received_at).where(
            Event.source_id == source_id, Event.message_id == "demo-signup-0"))


class _Writer:
    """Writes through the services, a transaction at a time."""

    def __init__(self, engine: Engine, settings: Settings, source_id: int, anchor: datetime
                 ) -> None:
        self.engine, self.settings, self.source_id = engine, settings, source_id
        self.received_at = anchor
        self.calls = self.stored = 0

    def record(self, calls: list[dict[str, Any]]) -> None:
        """Record the calls in time order; those after the anchor have not happened yet (UTC
        ISO-8601 texts compare as their times do)."""
        now = self.received_at.isoformat()
        calls = sorted((call for call in calls if call["timestamp"] <= now),
                       key=lambda call: call["timestamp"])
        events = [validated_event(call, kind=None, received_at=self.received_at,
                                  currency=self.settings.store_currency) for call in calls]
        for start in range(0, len(events), CALLS_PER_WRITE):
            with session_scope(self.engine) as session:
                recorded = record_events(session=session, source_id=self.source_id,
                                         events=events[start:start + CALLS_PER_WRITE],
                                         default_region=self.settings.default_country,
                                         exchange=self.settings.exchange)
            self.stored += recorded.stored
        self.calls += len(events)

    def consent(self, chunk: _Chunk) -> None:
        with session_scope(self.engine) as session:
            owners = chunk.owners(session)
            customers.set_email_consents(session=session, consents=[
                (owners[person], state, "demo import", at)
                for person, state, at in chunk.consents() if person in owners])

    def history(self, chunk: _Chunk) -> int:
        with session_scope(self.engine) as session:
            owners = chunk.owners(session)
            placed = [Placed(record, owners[person]) for person, record in chunk.history()]
            return load_orders(session=session, source=EVENTS_SOURCE, orders=placed,
                               exchange=self.settings.exchange).orders


def _catalog(shop: Shop) -> Iterator[ProductRecord]:
    catalog = shop.catalog
    for index, product_id in enumerate(catalog.product_ids):
        yield ProductRecord(external_id=product_id, currency="BRL",
                            stock=int(10 + (index * 37) % 190), line=_line(shop, index))


def _line(shop: Shop, product: int, quantity: int = 1) -> Line:
    catalog = shop.catalog
    product_id = catalog.product_ids[product]
    return Line(product_id=product_id, sku=product_id, name=catalog.names[product],
                category=catalog.categories[product], brand=catalog.brands[product],
                quantity=quantity, price_cents=int(catalog.prices[product]),
                url=f"{SHOP_URL}/p/{product_id.lower()}",
                image_url=f"{SHOP_URL}/img/{product_id.lower()}.jpg")


def _properties(line: Line) -> dict[str, Any]:
    """A product as Segment's e-commerce spec names its fields."""
    return {"product_id": line.product_id, "sku": line.sku, "name": line.name,
            "category": line.category, "brand": line.brand, "price": _reais(line.price_cents),
            "quantity": line.quantity, "currency": "BRL", "url": line.url,
            "image_url": line.image_url}


def _reais(cents: int | None) -> float | None:
    return None if cents is None else cents / 100


def _at(anchor: datetime, days_ago: float) -> datetime:
    return anchor - timedelta(days=float(days_ago))


@dataclass(frozen=True, slots=True)
class _Order:
    """A purchase, priced: its lines and amounts, in cents."""

    external_id: str
    placed_at: datetime
    lines: tuple[Line, ...]
    subtotal: int
    discount: int
    shipping: int
    coupon: str | None
    channel: str
    fate: int  # see store.Purchases

    @property
    def total(self) -> int:
        return self.subtotal - self.discount + self.shipping

    def refund(self) -> RefundRecord | None:
        """The refund this order's fate brings, a week after it was placed."""
        if self.fate not in (2, 3):
            return None
        amount = self.total if self.fate == 2 else \
            (self.lines[0].price_cents or 0) * self.lines[0].quantity
        return RefundRecord(external_id=f"{self.external_id}-r1", amount_cents=amount,
                            reason="arrependimento" if self.fate == 2 else "defeito",
                            refunded_at=self.placed_at + timedelta(days=7))


class _Chunk:
    """Some of the shop's people, with their purchases."""

    def __init__(self, shop: Shop, people: range, purchases: Ints,
                 recent: NDArray[np.bool_]) -> None:
        self.shop, self.people = shop, people
        self.purchases = [int(index) for index in purchases]
        self.recent = recent
        self._owners: dict[int, int] | None = None

    @staticmethod
    def user_id(person: int) -> str:
        return f"demo-{person}"

    @staticmethod
    def device(person: int, second: bool = False) -> str:
        return f"demo-{'tablet' if second else 'device'}-{person}"

    def owners(self, session: Any) -> dict[int, int]:
        """The customer id of each person of the chunk (after their sign-ups)."""
        if self._owners is None:
            found = customers.identity_owners(session=session, kind="user_id",
                                              values=[self.user_id(p) for p in self.people])
            self._owners = {int(user_id.removeprefix("demo-")): cid
                            for user_id, cid in found.items()}
        return self._owners

    def sign_ups(self) -> list[dict[str, Any]]:
        people, calls = self.shop.people, []
        first_purchase: dict[int, float] = {}
        for index in self.purchases:
            person = int(self.shop.purchases.person[index])
            first_purchase[person] = max(first_purchase.get(person, 0.0),
                                         float(self.shop.purchases.days_ago[index]))
        for person in self.people:
            days = max(float(people.signed_up[person]), first_purchase.get(person, 0.0))
            city, state, country, _weight, _area = CITIES[int(people.city[person])]
            first, last = people.first[person], people.last[person]
            traits: dict[str, Any] = {
                "email": ascii_text(f"{first}.{last}{person}@example.com").lower(),
                "firstName": first, "lastName": last,
                "birthday": people.birthday[person].isoformat(),
                "address": {"city": city, "state": state, "country": country},
                "createdAt": _at(self.shop.anchor, days + 0.01).isoformat()}
            if people.gender[person]:
                traits["gender"] = people.gender[person]
            if people.phone[person]:
                traits["phone"] = people.phone[person]
            calls.append({"type": "identify", "userId": self.user_id(person),
                          "anonymousId": self.device(person), "traits": traits,
                          "messageId": f"demo-signup-{person}",
                          "timestamp": traits["createdAt"]})
        return calls

    def consents(self) -> Iterator[tuple[int, str, datetime]]:
        people = self.shop.people
        for person in self.people:
            if people.consent[person] != "unknown":
                yield person, people.consent[person], self._signed_up_at(person)

    def _signed_up_at(self, person: int) -> datetime:
        return _at(self.shop.anchor, float(self.shop.people.signed_up[person]))

    def order(self, index: int) -> _Order:
        purchases, shop = self.shop.purchases, self.shop
        start, end = purchases.item_start[index], purchases.item_start[index + 1]
        lines = tuple(_line(shop, int(product), int(quantity)) for product, quantity in zip(
            purchases.product[start:end], purchases.quantity[start:end], strict=True))
        subtotal = sum((line.price_cents or 0) * line.quantity for line in lines)
        first = int(purchases.number[index]) == 0
        coupon = "BEMVINDO10" if first and index % 4 == 0 else None
        return _Order(
            external_id=f"D{int(purchases.person[index])}-{int(purchases.number[index]) + 1}",
            placed_at=_at(shop.anchor, float(purchases.days_ago[index])), lines=lines,
            subtotal=subtotal, discount=subtotal // 10 if coupon else 0,
            shipping=0 if subtotal >= FREE_SHIPPING_FROM else SHIPPING_CENTS, coupon=coupon,
            channel=CHANNELS[int(purchases.channel[index])][0],
            fate=int(purchases.fate[index]))

    def history(self) -> Iterator[tuple[int, OrderRecord]]:
        purchases = self.shop.purchases
        for index in self.purchases:
            if self.recent[index]:
                continue
            order = self.order(index)
            refund = order.refund()
            yield int(purchases.person[index]), OrderRecord(
                external_id=order.external_id,
                status="cancelled" if order.fate == 1 else "fulfilled",
                currency="BRL", placed_at=order.placed_at, total_cents=order.total,
                subtotal_cents=order.subtotal, discount_cents=order.discount,
                shipping_cents=order.shipping, coupon=order.coupon, channel=order.channel,
                lines=order.lines, refunds=(refund,) if refund else ())

    def sessions(self, rng: random.Random) -> list[dict[str, Any]]:
        """The last RECENT_DAYS of the chunk's people: browsing, and the recent orders."""
        calls: list[dict[str, Any]] = []
        people = self.shop.people
        for index in self.purchases:
            if self.recent[index]:
                calls += self._ordering(rng, index)
        for person in self.people:
            browsing = 1 if rng.random() < 0.45 else 0
            browsing += 1 if rng.random() < 0.15 else 0
            for number in range(browsing):
                hour = int(people.hour[person])
                days_ago = rng.randrange(RECENT_DAYS) + _day_fraction(self.shop.anchor, hour,
                                                                       rng)
                calls += _Session(self, rng, person, f"b{number}", days_ago).browse()
        return calls

    def _ordering(self, rng: random.Random, index: int) -> list[dict[str, Any]]:
        order = self.order(index)
        person = int(self.shop.purchases.person[index])
        days_ago = (self.shop.anchor - order.placed_at).total_seconds() / 86400 + 0.02
        if order.channel in ("web", "app"):
            return _Session(self, rng, person, f"o{index}", days_ago).buy(order)
        # Marketplace and shop-counter orders reach the shop's server only.
        return _order_calls(order, {"userId": self.user_id(person)}, f"o{index}")


def _day_fraction(anchor: datetime, hour: int, rng: random.Random) -> float:
    """A fraction of a day back from the anchor that lands near local `hour` (UTC-3)."""
    local = (anchor - timedelta(hours=3))
    back = (local.hour + local.minute / 60 - hour - rng.random()) / 24
    return back % 1.0


class _Session:
    """One visit of one person: calls built in time order."""

    def __init__(self, chunk: _Chunk, rng: random.Random, person: int, key: str,
                 days_ago: float) -> None:
        self.chunk, self.rng, self.person = chunk, rng, person
        self.shop = chunk.shop
        self.key = f"demo-{person}-{key}"
        self.moment = _at(self.shop.anchor, days_ago)
        second_device = rng.random() < 0.05
        self.ids: dict[str, Any] = {"anonymousId": chunk.device(person, second_device)}
        if not second_device:
            self.ids["userId"] = chunk.user_id(person)
        self.calls: list[dict[str, Any]] = []

    def add(self, kind: str, **fields: Any) -> None:
        self.calls.append({"type": kind, **self.ids, "timestamp": self.moment.isoformat(),
                           "messageId": f"{self.key}-{len(self.calls)}", **fields})
        self.moment += timedelta(seconds=self.rng.randint(5, 100))

    def browse(self) -> list[dict[str, Any]]:
        self._landing()
        favourite = int(self.shop.people.favourite[self.person])
        viewed = self._views(favourite)
        if self.rng.random() < 0.3:
            line = viewed[0]
            self._sign_in()
            self.add("track", event="Product Added",
                     properties={**_properties(line), "cart_id": self.key})
            if self.rng.random() < 0.35:
                self.add("track", event="Checkout Started", properties={
                    "cart_id": self.key, "value": _reais(line.price_cents), "currency": "BRL",
                    "products": [_properties(line)]})
        return self.calls

    def buy(self, order: _Order) -> list[dict[str, Any]]:
        self._landing()
        for line in order.lines:
            self.add("track", event="Product Viewed", properties=_properties(line))
        self._sign_in()
        for line in order.lines:
            self.add("track", event="Product Added",
                     properties={**_properties(line), "cart_id": self.key})
        self.add("track", event="Checkout Started", properties={
            "cart_id": self.key, "value": _reais(order.subtotal), "currency": "BRL",
            "products": [_properties(line) for line in order.lines]})
        self.calls += _order_calls(replace(order, placed_at=self.moment), self.ids, self.key,
                                   cart_id=self.key)
        return self.calls

    def _landing(self) -> None:
        rng = self.rng
        path, title = PAGES[0] if rng.random() < 0.6 else rng.choice(PAGES)
        context: dict[str, Any] = {"page": {"path": path, "url": f"{SHOP_URL}{path}",
                                            "title": title}}
        if rng.random() < 0.4:
            source, medium, name = rng.choice(CAMPAIGNS)
            context["campaign"] = {"source": source, "medium": medium, "name": name}
        self.add("page", name=title, properties={"path": path, "url": f"{SHOP_URL}{path}",
                                                 "title": title}, context=context)
        if rng.random() < 0.3:
            noun = rng.choice(CATEGORIES[int(self.shop.people.favourite[self.person])][1])
            self.add("track", event="Products Searched", properties={"query": noun.lower()})

    def _views(self, category: int) -> list[Line]:
        members = self.shop.catalog.by_category[category]
        lines = [_line(self.shop, int(members[self.rng.randrange(len(members))]))
                 for _ in range(self.rng.randint(1, 4))]
        for line in lines:
            self.add("track", event="Product Viewed", properties=_properties(line))
        return lines

    def _sign_in(self) -> None:
        """On a second device the person signs in here: the profiles merge."""
        if "userId" not in self.ids:
            self.ids["userId"] = self.chunk.user_id(self.person)
            self.add("identify")


def _order_calls(order: _Order, ids: dict[str, Any], key: str, cart_id: str | None = None
                 ) -> list[dict[str, Any]]:
    """Order Completed, and the cancellation or refund that followed, if it has come."""
    properties: dict[str, Any] = {
        "order_id": order.external_id, "total": _reais(order.total),
        "subtotal": _reais(order.subtotal), "shipping": _reais(order.shipping),
        "discount": _reais(order.discount), "currency": "BRL", "channel": order.channel,
        "products": [_properties(line) for line in order.lines]}
    if order.coupon:
        properties["coupon"] = order.coupon
    if cart_id:
        properties["cart_id"] = cart_id
    calls = [{"type": "track", "event": "Order Completed", **ids, "properties": properties,
              "timestamp": order.placed_at.isoformat(), "messageId": f"{key}-order"}]
    after = order.placed_at + timedelta(days=1)
    if order.fate == 1:
        calls.append({"type": "track", "event": "Order Cancelled", **ids,
                      "properties": {"order_id": order.external_id},
                      "timestamp": after.isoformat(), "messageId": f"{key}-cancel"})
    refund = order.refund()
    if refund is not None:
        refunded: dict[str, Any] = {"order_id": order.external_id,
                                    "total": _reais(refund.amount_cents), "currency": "BRL",
                                    "reason": refund.reason}
        calls.append({"type": "track", "event": "Order Refunded", **ids,
                      "properties": refunded, "timestamp": refund.refunded_at.isoformat(),
                      "messageId": f"{key}-refund"})
    return calls


def _visits(shop: Shop, visitors: range, rng: random.Random) -> list[dict[str, Any]]:
    """Anonymous visitors: a page or two and some products, never signing in."""
    calls: list[dict[str, Any]] = []
    for visitor in visitors:
        moment = _at(shop.anchor, rng.uniform(0, RECENT_DAYS))
        ids = {"anonymousId": f"demo-visitor-{visitor}"}
        members = shop.catalog.by_category[rng.randrange(len(CATEGORIES))]
        steps: list[tuple[str, dict[str, Any]]] = [("page", {"name": "Início", "properties": {
            "path": "/", "url": f"{SHOP_URL}/", "title": "Início"}})]
        for _ in range(rng.randint(0, 3)):
            line = _line(shop, int(members[rng.randrange(len(members))]))
            steps.append(("track", {"event": "Product Viewed",
                                    "properties": _properties(line)}))
        for number, (kind, fields) in enumerate(steps):
            calls.append({"type": kind, **ids, "timestamp": moment.isoformat(),
                          "messageId": f"demo-visitor-{visitor}-{number}", **fields})
            moment += timedelta(seconds=rng.randint(8, 240))
    return calls

