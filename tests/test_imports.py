"""`clientela import orders FILE.csv`: all or nothing, a report by line and column, upserts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from clientela.commerce.imports import ImportRefused, Report, import_file
from clientela.commerce.models import Order, OrderItem
from clientela.customers import profile
from clientela.customers.models import Customer, Identity
from clientela.customers.schemas import CustomerIn
from clientela.db import session_scope
from tests.test_cli import _run

ONE_ROW_PER_ITEM = """\
order_id,customer_email,customer_first_name,placed_at,currency,total,sku,product_name,quantity,unit_price
1001,ana@example.com,Ana,2026-05-01T10:00:00Z,BRL,109.80,TEE-1,Camiseta,2,49.90
1001,,,,,,CAP-1,Boné,1,10.00
1002,bruno@example.com,Bruno,2026-05-02,BRL,,MUG-1,Caneca,3,15.00
"""
ONE_ROW_PER_ORDER = """\
Pedido,E-mail,Data,Valor,Status
2001,carla@example.com,2026-06-01T09:30:00-03:00,250.00,paid
2002,carla@example.com,2026-06-05T09:30:00-03:00,100.00,cancelled
"""
BROKEN = """\
order_id,customer_email,placed_at,total,quantity,unit_price
3001,dora@example.com,2026-07-01,abc,,
3002,,2026-07-02,10.00,,
3003,eva@example.com,yesterday,10.00,,
3004,fabio@example.com,2026-07-04,,x,5
3005,gil@example.com,2026-07-05,20.00,,
"""


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _orders(engine) -> dict[str, tuple[str, int, int]]:
    with session_scope(engine, writes=False) as session:
        rows = session.execute(select(Order.external_id, Order.status, Order.total_cents,
                                      func.count(OrderItem.id))
                               .outerjoin(OrderItem, OrderItem.order_id == Order.id)
                               .group_by(Order.id).order_by(Order.external_id)).all()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def test_one_row_per_item_groups_into_orders_and_reimporting_changes_nothing(
        settings, engine, tmp_path):
    path = _file(tmp_path, "orders.csv", ONE_ROW_PER_ITEM)
    done = _run(settings, "import", "orders", path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3 rows: 2 orders (2 new), 0 skipped"
    assert _orders(engine) == {"1001": ("placed", 10980, 2), "1002": ("placed", 4500, 1)}
    again = _run(settings, "import", "orders", path)
    assert again.stdout.strip() == "3 rows: 2 orders (0 new), 0 skipped"
    assert _orders(engine) == {"1001": ("placed", 10980, 2), "1002": ("placed", 4500, 1)}
    with session_scope(engine, writes=False) as session:
        totals = dict(session.execute(select(Customer.email, Customer.revenue_cents)).all())
    assert totals == {"ana@example.com": 10980, "bruno@example.com": 4500}


def test_headers_are_mapped_onto_columns(settings, engine, tmp_path):
    path = _file(tmp_path, "pedidos.csv", ONE_ROW_PER_ORDER)
    done = _run(settings, "import", "orders", path, "--map", "order_id=Pedido",
                "--map", "customer_email=E-mail", "--map", "placed_at=Data",
                "--map", "total=Valor", "--map", "status=Status")
    assert done.returncode == 0, done.stderr
    assert _orders(engine) == {"2001": ("paid", 25000, 0), "2002": ("cancelled", 10000, 0)}
    with session_scope(engine, writes=False) as session:
        customer = session.scalars(select(Customer)).one()
        assert (customer.orders_count, customer.revenue_cents,
                customer.first_order_at.isoformat()) == (1, 25000, "2026-06-01T12:30:00+00:00")


def test_a_file_with_bad_rows_is_refused_whole_with_each_problem_named(
        settings, engine, tmp_path):
    path = _file(tmp_path, "broken.csv", BROKEN)
    done = _run(settings, "import", "orders", path)
    assert done.returncode == 2
    problems = [line.split(": ", 1)[1] for line in done.stderr.splitlines()
                if line.startswith(path)]
    assert problems == [
        "line 2, column total: 'abc' is not a number",
        "line 3, column customer_email: customer_email or customer_user_id is required",
        "line 4, column placed_at: 'yesterday' is not an ISO-8601 date-time",
        "line 5, column quantity: must be a whole number from 0 to 1000000",
    ]
    assert "nothing imported" in done.stderr
    assert _orders(engine) == {}
    skipped = _run(settings, "import", "orders", path, "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    assert skipped.stdout.strip() == "5 rows: 1 orders (1 new), 4 skipped"
    assert _orders(engine) == {"3005": ("placed", 2000, 0)}


def test_the_api_takes_the_same_file(api, engine):
    headers = {"Content-Type": "text/csv"}
    answer = api.post("/api/v1/imports/orders", content=ONE_ROW_PER_ITEM.encode(),
                      headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"rows": 3, "imported": 2, "new": 2, "skipped": 0,
                             "problems": []}
    refused = api.post("/api/v1/imports/orders", content=BROKEN.encode(), headers=headers)
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_file"
    assert refused.json()["problems"][0] == {"line": 2, "column": "total",
                                             "rule": "'abc' is not a number"}
    assert len(refused.json()["problems"]) == 4
    assert set(_orders(engine)) == {"1001", "1002"}
    mapped = api.post("/api/v1/imports/orders", content=ONE_ROW_PER_ORDER.encode(),
                      headers=headers, params=[("map", "order_id=Pedido"),
                                               ("map", "customer_email=E-mail"),
                                               ("map", "placed_at=Data"), ("map", "total=Valor"),
                                               ("map", "status=Status"), ("skip_invalid", "true")])
    assert mapped.json()["new"] == 2
    assert api.post("/api/v1/imports/orders", content=b"\xff\xfe",
                    headers=headers).json()["code"] == "invalid_encoding"


CUSTOMERS = """\
user_id,email,phone,first_name,last_name,birthday,city,country,email_marketing,tags
u-1,ana@example.com,(11) 98765-4321,Ana,Souza,1990-04-12,São Paulo,BR,subscribed,vip;newsletter
,bruno@example.com,,Bruno,,,,,unsubscribed,
"""
PRODUCTS = """\
product_id,sku,name,category,brand,price,currency,stock,active
P-1,TEE-1,Camiseta,Roupas > Camisetas,Garoa,49.90,BRL,12,true
P-2,MUG-1,Caneca,Casa,,15,,0,false
"""


def test_customers_and_products_from_csv(settings, engine, api, tmp_path):
    done = _run(settings, "import", "customers", _file(tmp_path, "c.csv", CUSTOMERS))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2 rows: 2 customers (2 new), 0 skipped"
    again = _run(settings, "import", "customers", _file(tmp_path, "c.csv", CUSTOMERS))
    assert again.stdout.strip() == "2 rows: 2 customers (0 new), 0 skipped"
    ana = api.get("/api/v1/customers", params={"user_id": "u-1"}).json()["items"][0]
    assert (ana["email"], ana["phone"], ana["birthday"], ana["city"], ana["tags"],
            ana["consent"]["email_marketing"]) == (
        "ana@example.com", "+5511987654321", "1990-04-12", "São Paulo", ["newsletter", "vip"],
        "subscribed")
    done = _run(settings, "import", "products", _file(tmp_path, "p.csv", PRODUCTS))
    assert done.stdout.strip() == "2 rows: 2 products (2 new), 0 skipped"
    products = api.get("/api/v1/products").json()["items"]
    assert [(p["external_id"], p["name"], p["category"], p["price"], p["currency"], p["stock"],
             p["active"]) for p in products] == [
        ("P-1", "Camiseta", "Roupas > Camisetas", "49.90", "BRL", 12, True),
        ("P-2", "Caneca", "Casa", "15.00", "BRL", 0, False)]


def test_bad_customer_and_product_rows_are_named(settings, api, tmp_path):
    bad_customers = ("email,phone,birthday,email_marketing\n"
                     "not-an-email,,1990-13-01,maybe\n,12,,\n")
    done = _run(settings, "import", "customers", _file(tmp_path, "c.csv", bad_customers))
    assert done.returncode == 2
    problems = [line.split(": ", 1)[1] for line in done.stderr.splitlines()
                if line.startswith(str(tmp_path))]
    assert problems[:3] == ["line 2, column email: not an e-mail address",
                            "line 2, column email_marketing: must be subscribed or unsubscribed",
                            "line 2, column birthday: Input should be a valid date or datetime, "
                            "month value is outside expected range of 1-12"]
    assert "line 3, column email: email or user_id is required" in problems
    assert "line 3, column phone: not a phone number" in problems
    assert api.get("/api/v1/customers").json()["items"] == []
    refused = api.post("/api/v1/imports/products", content=b"product_id,price,stock\n,x,1.5\n",
                       headers={"Content-Type": "text/csv"})
    assert refused.status_code == 400
    assert refused.json()["problems"] == [
        {"line": 2, "column": "product_id", "rule": "required"},
        {"line": 2, "column": "price", "rule": "'x' is not a number"},
        {"line": 2, "column": "stock", "rule": "must be a whole number"}]



BUYERS = """\
order_id,customer_user_id,customer_email,customer_first_name,placed_at,total,status
4001,u-a,ana.nova@example.com,,2026-08-01,10.00,paid
4002,u-b,bia@example.com,,2026-08-02,20.00,refunded
4003,u-a,bia@example.com,,2026-08-03,30.00,paid
4004,,carla@example.com,Carla,2026-08-04,40.00,paid
4005,u-c,Carla@Example.com,,2026-08-05,50.00,paid
4006,u-z,bia@example.com,,2026-08-06,60.00,paid
"""


def test_orders_find_their_buyers_by_user_id_then_email_and_conflicts_are_named(
        settings, engine):
    with session_scope(engine) as session:
        ana, _new = profile.upsert_customer(session=session, data=CustomerIn(
            user_id="u-a", email="ana@example.com"), default_region="BR")
        bia, _new = profile.upsert_customer(session=session, data=CustomerIn(
            email="bia@example.com"), default_region="BR")
        ana_id, bia_id = ana.id, bia.id

    def run(skip_invalid: bool) -> Report:
        with session_scope(engine) as session:
            return import_file(session=session, kind="orders", text=BUYERS, mapping={},
                               exchange=settings.exchange, default_region="BR",
                               skip_invalid=skip_invalid)

    expected = ["line 4, column customer_email: belongs to another customer than "
                "customer_user_id 'u-a'; merge the two first",
                "line 7, column customer_user_id: the customer with this e-mail has user id "
                "'u-b'"]
    with pytest.raises(ImportRefused) as refused:
        run(skip_invalid=False)
    assert [str(problem) for problem in refused.value.report.problems] == expected
    assert _orders(engine) == {}
    report = run(skip_invalid=True)
    assert (report.rows, report.imported, report.new, report.skipped) == (6, 4, 4, 2)
    assert _orders(engine) == {"4001": ("paid", 1000, 0), "4002": ("refunded", 2000, 0),
                               "4004": ("paid", 4000, 0), "4005": ("paid", 5000, 0)}
    with session_scope(engine, writes=False) as session:
        owners = dict(session.execute(select(Order.external_id, Order.customer_id)).all())
        carla = owners["4004"]
        assert owners == {"4001": ana_id, "4002": bia_id, "4004": carla, "4005": carla}
        identities = session.execute(select(Identity.customer_id, Identity.kind, Identity.value)
                                     .order_by(Identity.customer_id, Identity.kind,
                                               Identity.value)).all()
        assert identities == [
            (ana_id, "email", "ana.nova@example.com"), (ana_id, "email", "ana@example.com"),
            (ana_id, "user_id", "u-a"), (bia_id, "email", "bia@example.com"),
            (bia_id, "user_id", "u-b"), (carla, "email", "carla@example.com"),
            (carla, "user_id", "u-c")]
        totals = {row.id: (row.orders_count, row.revenue_cents, row.first_name) for row in
                  session.scalars(select(Customer))}
        # A refunded order still counts as an order, but for no revenue.
        assert totals == {ana_id: (1, 1000, None), bia_id: (1, 0, None),
                          carla: (2, 9000, "Carla")}
    again = run(skip_invalid=True)
    assert (again.imported, again.new) == (4, 0)


def test_a_merged_customer_with_two_user_ids_takes_the_orders_of_both(settings, engine, api):
    first = api.post("/api/v1/customers", json={"user_id": "u-1", "email": "um@example.com"})
    second = api.post("/api/v1/customers", json={"user_id": "u-2"})
    merged = api.post(f"/api/v1/customers/{first.json()['id']}/merge",
                      json={"customer_id": second.json()["id"]})
    assert merged.status_code == 200, merged.text
    survivor = first.json()["id"]
    text = ("order_id,customer_user_id,customer_email,placed_at,total\n"
            "5001,u-1,,2026-09-01,10.00\n5002,u-2,,2026-09-02,20.00\n"
            "5003,,um@example.com,2026-09-03,30.00\n5004,u-3,um@example.com,2026-09-04,1.00\n")
    with session_scope(engine) as session:
        report = import_file(session=session, kind="orders", text=text, mapping={},
                             exchange=settings.exchange, default_region="BR",
                             skip_invalid=True)
    assert [str(problem) for problem in report.problems] == [
        "line 5, column customer_user_id: the customer with this e-mail has user id 'u-1'"]
    with session_scope(engine, writes=False) as session:
        owners = dict(session.execute(select(Order.external_id, Order.customer_id)).all())
        assert owners == {"5001": survivor, "5002": survivor, "5003": survivor}
        assert session.get(Customer, survivor).revenue_cents == 6000
