"""Merge fields for a batch of customers: the same as one customer at a time, for customers
in every situation, with a fixed number of statements however many customers there are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from clientela.commerce.carts import abandon_carts
from clientela.core.errors import NotFound
from clientela.customers import service as customers
from clientela.customers.models import Customer, Identity
from clientela.db import IN_LIST_SIZE, session_scope
from clientela.messaging.context import customer_context, customer_contexts
from tests.helpers import basic

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RUNNING = ["Calçados", "Corrida"]


def _at(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def _product(key: str, name: str, category: str | list[str], price: str, quantity: int
             ) -> dict[str, Any]:
    return {"product_id": key, "sku": f"SKU-{key}", "name": name, "category": category,
            "brand": "Garoa", "price": price, "quantity": quantity,
            "url": f"https://loja.example/p/{key}", "image_url": f"https://loja.example/i/{key}"}


def _call(who: dict[str, str], event_name: str, days: float, number: int, **properties: Any
          ) -> dict[str, Any]:
    person = who.get("userId") or who["anonymousId"]
    return {"type": "track", **who, "event": event_name, "timestamp": _at(days),
            "messageId": f"{person}-{event_name}-{number}", "properties": properties}


def _order(who: dict[str, str], order_id: str, days: float, total: str,
           *products: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return _call(who, "Order Completed", days, int(order_id[2:]), order_id=order_id,
                 total=total, currency="BRL", products=list(products), **properties)


def _identify(user: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "timestamp": _at(60), "messageId": f"{user}-id",
            "traits": traits}


ELI, BRUNO, CARLA = {"userId": "eli"}, {"userId": "bruno"}, {"userId": "carla"}
ANON = {"anonymousId": "anon-d"}
TENIS = _product("TENIS", "Tênis Corrida", RUNNING, "200.00", 2)
JAQUETA = _product("JAQUETA", "Jaqueta", "Roupas > Inverno", "300.00", 1)
CALLS = [
    _identify("ana", email="ana@example.com", firstName="Ana"),
    _identify("bruno", email="bruno@example.com", firstName="Bruno", lastName="Lima"),
    _identify("carla", email="carla@example.com"),
    _identify("dani", email="dani@example.com", firstName="Dani"),
    # The shop's best sellers of the last 90 days.
    _order(ELI, "E-1", 20, "5000", _product("BOTA", "Bota", "Calçados > Botas", "400", 6),
           _product("TRILHA", "Tênis Trilha", "Calçados > Corrida > Trilha", "300", 4),
           _product("SAPATILHA", "Sapatilha", RUNNING, "150", 3),
           _product("BONE", "Boné", "Acessórios", "60", 2),
           _product("GARRAFA", "Garrafa", "Acessórios", "90", 1)),
    _order(BRUNO, "B-1", 30, "400.00", TENIS),
]
# Apart: events naming only a product must find it in the catalog with its name.
SECOND = [
    # Bruno: socks and a jacket through a cart; a cancelled order.
    _call(BRUNO, "Product Added", 10, 1, cart_id="cart-b1", product_id="TENIS", price=200,
          quantity=1),
    _order(BRUNO, "B-2", 8, "320.00", _product("MEIA", "Meia", "Acessórios", "20.00", 1),
           JAQUETA, cart_id="cart-b1", coupon="VOLTA10"),
    _order(BRUNO, "B-3", 3, "300", _product("BONE", "Boné", "Acessórios", "60", 5)),
    _call(BRUNO, "Order Cancelled", 2, 1, order_id="B-3"),
    # Dani bought boots as an anonymous visitor, merged into her account later.
    _call(ANON, "Product Viewed", 7, 1, product_id="BONE"),
    _order(ANON, "D-1", 6, "400", _product("BOTA", "Bota", "Calçados > Botas", "400", 1)),
]
LATER = [
    _call(BRUNO, "Product Added", 1, 2, cart_id="cart-b2", product_id="BONE", price=60,
          quantity=1),
    _call(BRUNO, "Product Removed", 0.5, 1, cart_id="cart-b2", product_id="BONE", quantity=1),
    *(_call(CARLA, "Product Viewed", 5 - n, n, product_id="TENIS") for n in range(2)),
    _call(CARLA, "Product Viewed", 1, 3, category="Roupas > Inverno"),
    _call(CARLA, "Product Viewed", 0.5, 4, product_id="NOVO", category="Acessórios"),
    _call(CARLA, "Product Added", 3, 1, cart_id="cart-c1", product_id="JAQUETA", price=300,
          quantity=1),
    _call(CARLA, "Product Added", 0.9, 2, cart_id="cart-c2", product_id="MEIA", price=20,
          quantity=1),
    _call(CARLA, "Product Removed", 0.8, 1, cart_id="cart-c2", product_id="MEIA", quantity=1),
    {"type": "alias", "previousId": "anon-d", "userId": "dani", "timestamp": _at(0.1),
     "messageId": "dani-alias"},
]


@pytest.fixture
def people(client, engine, write_key) -> dict[str, int]:
    for calls in (CALLS, SECOND, LATER):
        answer = client.post("/v1/batch", json={"batch": calls}, headers=basic(write_key))
        assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
    with session_scope(engine) as session:
        ids = dict(session.execute(select(Identity.value, Identity.customer_id).where(
            Identity.kind == "user_id")).tuples().all())
        ids["anon-d"] = session.scalars(select(Customer.id).where(
            Customer.merged_into_id == ids["dani"])).one()
        customers.add_tags(session=session, customer_id=ids["ana"], tags=["VIP", "Newsletter"])
        assert abandon_carts(session=session, now=NOW, after_minutes=24 * 60) == 1
    return ids


def _one_by_one(engine: Engine, ids: list[int]) -> dict[int, dict[str, Any]]:
    with session_scope(engine, writes=False) as session:
        return {customer_id: customer_context(session=session, customer_id=customer_id,
                                              store_currency="BRL", now=NOW)
                for customer_id in ids}


def _batch(engine: Engine, ids: list[int]) -> dict[int, dict[str, Any]]:
    with session_scope(engine, writes=False) as session:
        return customer_contexts(session=session, customer_ids=ids, store_currency="BRL",
                                 now=NOW)


def _names(products: list[dict[str, Any]]) -> list[str]:
    return [product["name"] for product in products]


def test_a_batch_gives_each_customer_what_one_customer_gets(engine, people):
    ids = [people[name] for name in ("carla", "ana", "anon-d", "bruno", "eli", "dani")]
    contexts = _batch(engine, [*ids, 999_999, people["ana"]])
    assert list(contexts) == ids  # in the order asked, once each, unknown ids left out
    assert contexts == _one_by_one(engine, ids)
    assert {name: _names(contexts[people[name]]["recommended"]) for name in people} == {
        "ana": ["Bota", "Tênis Trilha", "Sapatilha", "Boné"],
        "bruno": ["Tênis Trilha", "Sapatilha", "Bota", "Boné"],
        "carla": ["Tênis Trilha", "Sapatilha", "Tênis Corrida", "Bota"],
        "dani": ["Tênis Trilha", "Sapatilha", "Boné", "Tênis Corrida"],
        "anon-d": ["Bota", "Tênis Trilha", "Sapatilha", "Boné"],
        "eli": ["Tênis Corrida", "Meia", "Jaqueta"]}
    assert contexts[people["ana"]]["customer"]["tags"] == ["newsletter", "vip"]
    assert contexts[people["dani"]]["last_order"]["number"] == "D-1"
    merged = contexts[people["anon-d"]]
    assert (merged["customer"]["email"], merged["last_order"], merged["cart"]) == (
        None, None, None)


def test_orders_cancelled_and_carts_converted_or_emptied_are_left_out(engine, people):
    bruno = _batch(engine, [people["bruno"], people["carla"]])[people["bruno"]]
    assert bruno["customer"] == {
        "id": people["bruno"], "email": "bruno@example.com", "first_name": "Bruno",
        "last_name": "Lima", "name": "Bruno Lima", "gender": None, "birthday": None,
        "city": None, "region": None, "country": None, "locale": None, "tags": [],
        "traits": {"email": "bruno@example.com", "firstName": "Bruno", "lastName": "Lima"}}
    order = bruno["last_order"]
    assert {key: value for key, value in order.items() if key != "id"} == {
        "number": "B-2", "status": "placed", "placed_at": NOW - timedelta(days=8),
        "currency": "BRL", "coupon": "VOLTA10", "total": "R$ 320,00",
        "total_amount": Decimal("320.00"), "items": [
            {"name": "Meia", "sku": "SKU-MEIA", "quantity": 1, "price": "R$ 20,00",
             "total": "R$ 20,00", "category": "Acessórios", "brand": "Garoa",
             "url": "https://loja.example/p/MEIA", "image_url": "https://loja.example/i/MEIA"},
            {"name": "Jaqueta", "sku": "SKU-JAQUETA", "quantity": 1, "price": "R$ 300,00",
             "total": "R$ 300,00", "category": "Roupas > Inverno", "brand": "Garoa",
             "url": "https://loja.example/p/JAQUETA",
             "image_url": "https://loja.example/i/JAQUETA"}]}
    assert bruno["cart"] is None
    # Running shoes, 2 units: bought most. Their best sellers but the pair he has, then
    # the shop's; his cancelled caps count neither for him nor for the shop.
    assert bruno["recommended"][:2] == [
        {"name": "Tênis Trilha", "url": "https://loja.example/p/TRILHA",
         "image_url": "https://loja.example/i/TRILHA", "price": "R$ 300,00", "brand": "Garoa",
         "category": "Calçados > Corrida > Trilha"},
        {"name": "Sapatilha", "url": "https://loja.example/p/SAPATILHA",
         "image_url": "https://loja.example/i/SAPATILHA", "price": "R$ 150,00",
         "brand": "Garoa", "category": "Calçados > Corrida"}]


def test_the_latest_cart_with_products_and_the_category_viewed_most(engine, people):
    carla = _batch(engine, [people["carla"], people["bruno"]])[people["carla"]]
    assert (carla["customer"]["name"], carla["last_order"]) == ("", None)
    cart = carla["cart"]
    assert {key: value for key, value in cart.items() if key != "id"} == {
        "status": "abandoned", "currency": "BRL", "quantity": 1, "total": "R$ 300,00",
        "total_amount": Decimal("300.00"), "updated_at": NOW - timedelta(days=3),
        "abandoned_at": NOW, "items": [
            {"name": "Jaqueta", "sku": "SKU-JAQUETA", "quantity": 1, "price": "R$ 300,00",
             "total": "R$ 300,00", "category": "Roupas > Inverno", "brand": "Garoa",
             "url": "https://loja.example/p/JAQUETA",
             "image_url": "https://loja.example/i/JAQUETA"}]}
    # Viewed running shoes twice, a winter category and an unknown cap once each.
    assert _names(carla["recommended"]) == ["Tênis Trilha", "Sapatilha", "Tênis Corrida",
                                            "Bota"]


def test_an_unknown_customer_is_not_found_alone_and_left_out_of_a_batch(engine, people):
    assert _batch(engine, [999_999]) == {}
    assert _batch(engine, []) == {}
    with pytest.raises(NotFound) as raised:
        _one_by_one(engine, [999_999])
    assert (raised.value.code, raised.value.message) == (
        "customer_not_found", "customer 999999: no such customer")


@pytest.fixture
def shoppers(client, engine, write_key) -> list[int]:
    """IN_LIST_SIZE + 20 customers, each with an order in one of three categories."""
    calls = [_order({"userId": f"s{n}"}, f"S-{n}", 1 + n % 30, "10",
                    _product(f"P{n % 3}", f"Produto {n % 3}", f"Categoria {n % 3}", "10", 1))
             for n in range(IN_LIST_SIZE + 20)]
    for start in range(0, len(calls), 100):
        answer = client.post("/v1/batch", json={"batch": calls[start:start + 100]},
                             headers=basic(write_key))
        assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
    with session_scope(engine, writes=False) as session:
        return list(session.scalars(select(Identity.customer_id).where(
            Identity.kind == "user_id").order_by(Identity.value)))


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[int]]:
    """The number of parameters of each SELECT run, while the test runs."""
    counted: list[int] = []

    def count(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            counted.append(len(parameters))

    event.listen(engine, "before_cursor_execute", count)
    yield counted
    event.remove(engine, "before_cursor_execute", count)


def test_a_batch_larger_than_an_in_list_is_asked_in_parts(engine, shoppers, statements):
    assert len(shoppers) == IN_LIST_SIZE + 20
    contexts = _batch(engine, [*shoppers, *range(10**6, 10**6 + 600)])
    asked = list(statements)
    # Three parts: two with customers, five statements each (customers, tags, last orders,
    # carts, purchases; nobody to ask about views), one with unknown ids only (customers);
    # and one for the best sellers, every category (three and the whole shop) ranked from it.
    assert len(asked) == 5 + 5 + 1 + 1
    assert max(asked) == IN_LIST_SIZE + 4  # the ids, and the carts' statuses, size and rank
    assert list(contexts) == shoppers
    assert contexts == _one_by_one(engine, shoppers)
    first = contexts[shoppers[0]]
    assert (first["customer"]["traits"], first["last_order"]["items"][0]["name"],
            _names(first["recommended"])) == (
        {}, "Produto 0", ["Produto 1", "Produto 2"])
    assert first["last_order"]["placed_at"] == NOW - timedelta(days=1)


def test_only_the_merge_fields_asked_for_are_fetched(engine, people, statements):
    ids = [people[name] for name in ("ana", "dani")]
    everything = _batch(engine, ids)
    statements.clear()
    with session_scope(engine, writes=False) as session:
        contexts = customer_contexts(session=session, customer_ids=ids, store_currency="BRL",
                                     now=NOW, fields={"customer", "last_order", "shop"})
    assert len(statements) == 3  # customers, tags, last orders
    assert contexts == {key: {"customer": everything[key]["customer"],
                              "last_order": everything[key]["last_order"]} for key in ids}
