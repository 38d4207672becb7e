"""E-mail templates: sandboxed rendering, the shop's layout, inlined CSS, the text part, and
the merge fields read from real customers, orders, carts and views on both databases."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from sqlalchemy import select

from clientela.core.errors import InvalidInput, NotFound
from clientela.customers import service as customers
from clientela.customers.models import Identity
from clientela.db import session_scope
from clientela.messaging.context import Money, customer_context, sample_context
from clientela.messaging.templates import (
    Brand,
    Rendered,
    TemplateParts,
    check,
    names_read,
    plain_text,
    render,
)
from tests.helpers import basic

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BRAND = Brand(shop_name="Loja Garoa", color="#0f766e", logo_url=None,
              address="Rua Augusta, 100 - São Paulo")
UNSUBSCRIBE = "https://loja.example/u/t0k3n"
PREFERENCES = "https://loja.example/u/t0k3n/preferences"
FOOTER = ("\n\n--\nLoja Garoa\nRua Augusta, 100 - São Paulo\n\n"
          f"Preferências de e-mail: {PREFERENCES}\nCancelar inscrição: {UNSUBSCRIBE}")


def _render(html: str, context: dict[str, Any] | None = None, *, subject: str = "Oi",
            text: str | None = None, brand: Brand = BRAND) -> Rendered:
    return render(TemplateParts(subject=subject, html=html, text=text), context or {},
                  brand=brand, unsubscribe_url=UNSUBSCRIBE, preferences_url=PREFERENCES)


def _content(html: str) -> str:
    """What the layout's content cell holds."""
    start = html.index('line-height: 1.5;">\n') + len('line-height: 1.5;">\n')
    return html[start:html.index("\n</td></tr>", start)]


# Rendering ---------------------------------------------------------------------------------

def test_merge_fields_render_and_missing_ones_are_blank_or_their_default():
    context = {"customer": {"first_name": "Ana", "last_name": None, "traits": {"plan": "vip"}},
               "last_order": None, "cart": {"items": []}}
    rendered = _render(
        "<p>{{ customer.first_name }}|{{ customer.last_name }}|{{ customer.nickname }}|"
        "{{ customer.traits.plan }}|{{ customer.traits.pet.name }}|"
        "{{ last_order.items[0].name }}|{{ last_order.number | default('sem pedido') }}|"
        "{{ customer.last_name | default('Cliente') }}|{{ customer.first_name | d('x') }}|"
        "{{ nothing.at.all() }}|{% for item in cart.items %}x{% else %}vazio{% endfor %}|"
        "{% for item in last_order.items %}x{% endfor %}|"
        "{{ 'sim' if last_order.total_amount > 10 else 'não' }}</p>", context,
        subject="  Olá,\n  {{ customer.first_name }}\r\n{{ customer.last_name }}!  ",
        text="{{ customer.first_name }} {{ customer.last_name | default('Cliente') }}")
    assert _content(rendered.html) == (
        '<p>Ana|||vip|||sem pedido|Cliente|Ana||vazio||não</p>')
    assert rendered.subject == "Olá, Ana !"
    assert rendered.text == "Ana Cliente" + FOOTER


def test_shop_and_links_are_merge_fields_too_and_the_layout_shows_them():
    spoof = {"unsubscribe_url": "https://evil.example", "shop": {"shop_name": "Evil"}}
    rendered = _render('<p>{{ shop.shop_name }} <a href="{{ preferences_url }}">prefs</a> '
                       '{{ unsubscribe_url }}</p>', spoof)
    assert _content(rendered.html) == (
        f'<p>Loja Garoa <a href="{PREFERENCES}" style="color: #0f766e;">prefs</a> '
        f'{UNSUBSCRIBE}</p>')
    footer = rendered.html[rendered.html.index('<td class="footer"'):]
    assert footer.startswith(
        '<td class="footer" style="padding: 20px 32px;color: #71717a;font-family: Arial, '
        'Helvetica, sans-serif;font-size: 12px;line-height: 1.5;">\n'
        '<p>Loja Garoa<br>Rua Augusta, 100 - São Paulo</p>\n'
        f'<p><a href="{UNSUBSCRIBE}" style="color: #52525b;">Cancelar inscrição</a> · '
        f'<a href="{PREFERENCES}" style="color: #52525b;">Preferências de e-mail</a></p>\n')
    assert '<span class="shop" style="color: #0f766e;' in rendered.html
    assert "<title>Oi</title>" in rendered.html


def test_the_logo_replaces_the_name_and_the_address_is_left_out_when_unknown():
    brand = Brand(shop_name="Maré & Cia", color="#123", logo_url="https://cdn.example/l.png?v=1&s=2",
                  address=None)
    rendered = _render("<p>x</p>", brand=brand)
    assert ('<img src="https://cdn.example/l.png?v=1&amp;s=2" alt="Maré &amp; Cia" height="40" '
            'style="display: block; border: 0;">') in rendered.html
    assert '<span class="shop"' not in rendered.html
    assert "<p>Maré &amp; Cia</p>" in rendered.html
    assert rendered.text.endswith(f"\n\n--\nMaré & Cia\n\nPreferências de e-mail: "
                                  f"{PREFERENCES}\nCancelar inscrição: {UNSUBSCRIBE}")


def test_a_brand_colour_must_be_a_hex_colour():
    with pytest.raises(InvalidInput) as raised:
        Brand(shop_name="x", color="red;} body{display:none", logo_url=None, address=None)
    assert (raised.value.code, raised.value.message) == (
        "invalid_color", "color: 'red;} body{display:n' must be a hex colour like #0f766e")


def test_customer_values_are_escaped_in_html_and_plain_in_text():
    context = {"customer": {"first_name": "<script>alert(1)</script>", "city": "Tom & Jerry"}}
    rendered = _render("<p>Oi {{ customer.first_name }} de {{ customer.city }}</p>", context,
                       subject="Oi {{ customer.first_name }}")
    assert _content(rendered.html) == (
        "<p>Oi &lt;script&gt;alert(1)&lt;/script&gt; de Tom &amp; Jerry</p>")
    assert rendered.subject == "Oi <script>alert(1)</script>"
    assert rendered.text == "Oi <script>alert(1)</script> de Tom & Jerry" + FOOTER
    written = _render("x", context, text="Oi {{ customer.first_name }}")
    assert written.text == "Oi <script>alert(1)</script>" + FOOTER


def test_css_is_inlined_media_queries_kept_and_links_left_intact():
    rendered = _render(
        "<style>p { color: red } .big { font-size: 20px }"
        " @media (max-width: 600px) { p { color: blue } }</style>"
        '<p class="big">Oi <a href="https://loja.example/p?a=1&b=2#top">veja</a></p>'
        "<a href='https://loja.example/x?utm_source=email&amp;id=7'>x</a>")
    assert _content(rendered.html) == (
        '<p class="big" style="color: red;font-size: 20px;">Oi '
        '<a href="https://loja.example/p?a=1&amp;b=2#top" style="color: #0f766e;">veja</a>'
        '</p><a href="https://loja.example/x?utm_source=email&amp;id=7" '
        'style="color: #0f766e;">x</a>')
    hrefs = [unescape(href) for href in re.findall(r'href="([^"]*)"', rendered.html)]
    assert hrefs == ["https://loja.example/p?a=1&b=2#top",
                     "https://loja.example/x?utm_source=email&id=7", UNSUBSCRIBE, PREFERENCES]
    head = rendered.html[:rendered.html.index("<meta")]
    assert "@media (max-width: 600px) { p { color: blue } }" in head
    assert "@media only screen and (max-width: 620px)" in head
    assert "p { color: red }" not in rendered.html


def test_the_text_part_is_derived_from_the_html_when_not_written():
    rendered = _render(
        "<style>p { color: red }</style><h1>Olá,&nbsp;Ana!</h1>\n"
        "<p>Seu   pedido\n chegou.<br>Obrigado &amp; até logo.</p><!-- a note -->"
        '<table><tr><td><a href="https://l.example/p/1"><img src="i.jpg" alt="Tênis"></a></td>'
        '<td><a href="https://l.example/p/1">Tênis</a><br>R$ 10,00</td></tr></table>'
        '<ul><li>um</li><li><a href="https://l.example/2">https://l.example/2</a></li></ul>'
        '<p><a href="https://l.example/banner"><img src="b.jpg" alt="Ofertas"></a> '
        '<a href="#top">topo</a> <a href="mailto:sac@l.example">fale conosco</a></p>')
    assert rendered.text == (
        "Olá, Ana!\n\nSeu pedido chegou.\nObrigado & até logo.\n\n"
        "Tênis (https://l.example/p/1)\nR$ 10,00\n\n"
        "- um\n- https://l.example/2\n\n"
        "Ofertas (https://l.example/banner) topo fale conosco (mailto:sac@l.example)"
        + FOOTER)
    assert plain_text("") == ""


def test_a_template_is_compiled_once_per_text():
    from clientela.messaging.templates import _compiled

    _compiled.cache_clear()
    for number in range(3):
        _render("<p>{{ n }}</p>", {"n": number})
    assert _compiled.cache_info().hits == 4 and _compiled.cache_info().misses == 2


# The sandbox -------------------------------------------------------------------------------

@pytest.mark.parametrize(("part", "source", "message"), [
    ("html", "<p>\n{{ ''.__class__.__mro__[1].__subclasses__() }}</p>",
     "html: line 2: not allowed: '__class__', '__mro__', '__subclasses__' (names starting "
     "with '_' are Python internals)"),
    ("subject", "{{ customer.__init__.__globals__ }}",
     "subject: line 1: not allowed: '__init__', '__globals__' (names starting with '_' are "
     "Python internals)"),
    ("text", "x\n\n{{ customer['__class__'] }}",
     "text: line 3: not allowed: '__class__' (names starting with '_' are Python internals)"),
    ("html", "{{ customer | attr('__dict__') }}",
     "html: line 1: not allowed: '__dict__' (names starting with '_' are Python internals)"),
    ("html", "<p>{% for x in items %}\n{{ x }", "html: line 2: unexpected '}'"),
    ("subject", "{% if %}", "subject: line 1: Expected an expression, got 'end of statement "
     "block'"),
    ("text", "{{ x }}\n{% endfor %}", "text: line 2: Encountered unknown tag 'endfor'."),
])
def test_unsafe_or_broken_templates_are_refused_naming_the_part_and_line(part, source,
                                                                          message):
    parts = {"subject": "Oi", "html": "<p>x</p>", "text": None, part: source}
    with pytest.raises(InvalidInput) as raised:
        check(TemplateParts(**parts))
    assert (raised.value.code, raised.value.message) == ("invalid_template", message)
    with pytest.raises(InvalidInput) as again:
        render(TemplateParts(**parts), {}, brand=BRAND, unsubscribe_url=UNSUBSCRIBE,
               preferences_url=PREFERENCES)
    assert again.value.message == message


@pytest.mark.parametrize(("source", "message"), [
    ("{{ cart['items'].append(1) }}",
     "html: line 1: not allowed in a template: 'append' of a list is not allowed"),
    ("\n{{ customer.traits.update({'a': 1}) }}",
     "html: line 2: not allowed in a template: 'update' of a dict is not allowed"),
    ("{% set name = customer.first_name %}{{ name.format.__self__ }}",
     "html: line 1: not allowed: '__self__' (names starting with '_' are Python internals)"),
    ("{{ '{0.__class__}'.format(customer) }}",
     "html: line 1: not allowed in a template: '__class__' of a dict is not allowed"),
    ("{% set n = name %}{{ n | attr(secret) }}",
     "html: line 1: not allowed in a template: '__class__' of a str is not allowed"),
    ("{{ 1 / 0 }}", "html: line 1: ZeroDivisionError: division by zero"),
])
def test_reaching_python_internals_at_render_time_is_an_error_not_a_leak(source, message):
    context = {"customer": {"first_name": "Ana", "traits": {}}, "cart": {"items": [1]},
               "name": "Ana", "secret": "__class__"}
    with pytest.raises(InvalidInput) as raised:
        _render(source, context)
    assert (raised.value.code, raised.value.message) == ("invalid_template", message)


def test_check_accepts_a_good_template():
    check(TemplateParts(subject="{{ customer.first_name | default('Olá') }}",
                        html="{% for item in cart.items %}<p>{{ item.name }}</p>{% endfor %}",
                        text="{{ shop.shop_name }}"))


# Merge fields from the database --------------------------------------------------------------

def _at(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def _product(key: str, name: str, category: str | list[str], price: str,
             quantity: int) -> dict[str, Any]:
    return {"product_id": key, "sku": f"SKU-{key}", "name": name, "category": category,
            "brand": "Garoa", "price": price, "quantity": quantity,
            "url": f"https://loja.example/p/{key}?ref=crm&x=1",
            "image_url": f"https://loja.example/img/{key}.jpg"}


def _call(user: str, event: str, days: float, number: int, **properties: Any
          ) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "timestamp": _at(days),
            "messageId": f"{user}-{event}-{number}", "properties": properties}


def _order(user: str, order_id: str, days: float, total: str, *products: dict[str, Any]
           ) -> dict[str, Any]:
    return _call(user, "Order Completed", days, int(order_id[2:]), order_id=order_id,
                 total=total, currency="BRL", products=list(products))


RUNNING = ["Calçados", "Corrida"]
CALLS = [
    {"type": "identify", "userId": "ana", "timestamp": _at(60), "messageId": "ana-id",
     "traits": {"email": "ana@example.com", "firstName": "Ana", "lastName": "Souza",
                "gender": "female", "birthday": "1990-05-17", "locale": "pt-BR",
                "address": {"city": "São Paulo", "state": "SP", "country": "BR"},
                "plan": "vip", "shoe_size": 37}},
    {"type": "identify", "userId": "bia", "timestamp": _at(60), "messageId": "bia-id",
     "traits": {"email": "bia@example.com", "firstName": "<script>"}},
    {"type": "identify", "userId": "dora", "timestamp": _at(60), "messageId": "dora-id",
     "traits": {"email": "dora@example.com"}},
    _order("ana", "A-1", 40, "399.80", _product("TENIS", "Tênis Corrida", RUNNING, "199.90", 2)),
    _order("ana", "A-2", 10, "1234.56",
           _product("JAQUETA", "Jaqueta <Leve>", "Roupas", "1200.00", 1),
           {"name": "Embrulho", "price": "34.56", "quantity": 1}),
    _order("carlos", "C-1", 5, "4000",
           _product("SAPATILHA", "Sapatilha", RUNNING, "149.00", 3),
           _product("TRILHA", "Tênis Trilha", "Calçados > Corrida > Trilha", "299.00", 4),
           _product("BOTA", "Bota", "Calçados > Botas", "399.00", 6),
           _product("BONE", "Boné", "Acessórios", "59.90", 5),
           _product("GARRAFA", "Garrafa Térmica", "Acessórios", "89.90", 1)),
    _order("carlos", "C-2", 120, "100", _product("VELHO", "Tênis Antigo", RUNNING, "10", 10)),
    _order("carlos", "C-3", 3, "90", _product("CANCELADO", "Tênis X", RUNNING, "10", 9)),
    _call("carlos", "Order Cancelled", 2, 1, order_id="C-3"),
]
# Apart: a cart event naming only a product, in the batch that first names it, would leave
# it in the catalog without the name its order line gives.
LATER = [
    _call("carlos", "Product Added", 1, 1, product_id="BOTA", price=399, quantity=1),
    *(_call("bia", "Product Viewed", 4 + n, n, product_id="BONE") for n in range(3)),
    _call("bia", "Product Viewed", 2, 9, category="Calçados > Botas"),
    _call("bia", "Product Added", 1.5, 1, cart_id="cart-bia", product_id="GARRAFA",
          price="89.90", quantity=2),
    _call("bia", "Product Added", 1, 2, cart_id="cart-bia", product_id="BONE", name="Boné",
          price="59.90", quantity=1),
]


@pytest.fixture
def people(client, engine, write_key) -> dict[str, int]:
    for calls in (CALLS, LATER):
        answer = client.post("/v1/batch", json={"batch": calls}, headers=basic(write_key))
        assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
    with session_scope(engine) as session:
        ids = dict(session.execute(select(Identity.value, Identity.customer_id).where(
            Identity.kind == "user_id")).tuples().all())
        customers.add_tags(session=session, customer_id=ids["ana"], tags=["VIP", "Corrida"])
    return ids


def _context(engine, customer_id: int) -> dict[str, Any]:
    with session_scope(engine, writes=False) as session:
        return customer_context(session=session, customer_id=customer_id,
                                store_currency="BRL", now=NOW)


def _names(products: list[dict[str, Any]]) -> list[str]:
    return [product["name"] for product in products]


def test_the_customer_with_orders_gets_names_traits_last_order_and_recommendations(
        engine, people):
    context = _context(engine, people["ana"])
    assert context["customer"] == {
        "id": people["ana"], "email": "ana@example.com", "first_name": "Ana",
        "last_name": "Souza", "name": "Ana Souza", "gender": "female",
        "birthday": date(1990, 5, 17), "city": "São Paulo", "region": "SP", "country": "BR",
        "locale": "pt-BR", "tags": ["corrida", "vip"],
        "traits": {"email": "ana@example.com", "firstName": "Ana", "lastName": "Souza",
                   "gender": "female", "birthday": "1990-05-17", "locale": "pt-BR",
                   "address": {"city": "São Paulo", "state": "SP", "country": "BR"},
                   "plan": "vip", "shoe_size": 37}}
    order = context["last_order"]
    assert {key: order[key] for key in ("number", "status", "currency", "total",
                                        "total_amount", "coupon")} == {
        "number": "A-2", "status": "placed", "currency": "BRL", "total": "R$ 1.234,56",
        "total_amount": Decimal("1234.56"), "coupon": None}
    assert order["placed_at"] == NOW - timedelta(days=10)
    assert order["items"] == [
        {"name": "Jaqueta <Leve>", "sku": "SKU-JAQUETA", "quantity": 1, "price": "R$ 1.200,00",
         "total": "R$ 1.200,00", "category": "Roupas", "brand": "Garoa",
         "url": "https://loja.example/p/JAQUETA?ref=crm&x=1",
         "image_url": "https://loja.example/img/JAQUETA.jpg"},
        {"name": "Embrulho", "sku": None, "quantity": 1, "price": "R$ 34,56",
         "total": "R$ 34,56", "category": None, "brand": None, "url": None,
         "image_url": None}]
    assert context["cart"] is None
    # Favourite category: running shoes (2 units), the ones below it count; the Tênis
    # Corrida she bought, the old and the cancelled orders do not; then the shop's best.
    assert _names(context["recommended"]) == ["Tênis Trilha", "Sapatilha", "Bota", "Boné"]
    assert context["recommended"][0] == {
        "name": "Tênis Trilha", "url": "https://loja.example/p/TRILHA?ref=crm&x=1",
        "image_url": "https://loja.example/img/TRILHA.jpg", "price": "R$ 299,00",
        "brand": "Garoa", "category": "Calçados > Corrida > Trilha"}


def test_a_customer_without_orders_gets_the_cart_and_what_she_viewed_most(engine, people):
    context = _context(engine, people["bia"])
    assert (context["customer"]["first_name"], context["customer"]["name"],
            context["customer"]["last_name"], context["customer"]["tags"]) == (
        "<script>", "<script>", None, [])
    assert context["last_order"] is None
    cart = context["cart"]
    assert {key: cart[key] for key in ("status", "quantity", "total", "total_amount")} == {
        "status": "open", "quantity": 3, "total": "R$ 239,70",
        "total_amount": Decimal("239.70")}
    # The first line named only the product: the catalog fills in the rest.
    assert cart["items"] == [
        {"name": "Garrafa Térmica", "sku": "SKU-GARRAFA", "quantity": 2, "price": "R$ 89,90",
         "total": "R$ 179,80", "category": "Acessórios", "brand": "Garoa",
         "url": "https://loja.example/p/GARRAFA?ref=crm&x=1",
         "image_url": "https://loja.example/img/GARRAFA.jpg"},
        {"name": "Boné", "sku": "SKU-BONE", "quantity": 1, "price": "R$ 59,90",
         "total": "R$ 59,90", "category": "Acessórios", "brand": "Garoa",
         "url": "https://loja.example/p/BONE?ref=crm&x=1",
         "image_url": "https://loja.example/img/BONE.jpg"}]
    # Viewed Boné three times (accessories), boots once: accessories first, then the shop's.
    assert _names(context["recommended"]) == ["Boné", "Garrafa Térmica", "Bota", "Tênis Trilha"]


def test_a_customer_with_no_history_gets_the_shops_best_sellers(engine, people):
    context = _context(engine, people["dora"])
    assert (context["customer"]["name"], context["last_order"], context["cart"]) == (
        "", None, None)
    assert _names(context["recommended"]) == ["Bota", "Boné", "Tênis Trilha", "Sapatilha"]
    with session_scope(engine, writes=False) as session:
        later = customer_context(session=session, customer_id=people["dora"],
                                 store_currency="BRL", now=NOW + timedelta(days=120))
        assert later["recommended"] == []  # nothing sold in the 90 days before then
        with pytest.raises(NotFound) as raised:
            customer_context(session=session, customer_id=999_999, store_currency="BRL",
                             now=NOW)
    assert raised.value.message == "customer 999999: no such customer"


def test_a_real_customer_renders_into_a_personal_message(engine, people):
    template = TemplateParts(
        subject="{{ customer.first_name | default('Olá') }}, volte para o carrinho",
        html=("<p>Oi {{ customer.first_name | default('cliente') }}!</p>"
              "{% for item in cart.items %}<p><a href=\"{{ item.url }}\">{{ item.name }}</a> "
              "{{ item.quantity }} × {{ item.price }}</p>{% endfor %}"
              "<p>Total: {{ cart.total }}</p><p>{{ last_order.number | default('-') }}</p>"),
        text=None)
    with session_scope(engine, writes=False) as session:
        context = customer_context(session=session, customer_id=people["bia"],
                                   store_currency="BRL", now=NOW)
    rendered = render(template, context, brand=BRAND, unsubscribe_url=UNSUBSCRIBE,
                      preferences_url=PREFERENCES)
    assert rendered.subject == "<script>, volte para o carrinho"
    assert _content(rendered.html) == (
        "<p>Oi &lt;script&gt;!</p>"
        '<p><a href="https://loja.example/p/GARRAFA?ref=crm&amp;x=1" style="color: #0f766e;">'
        "Garrafa Térmica</a> 2 × R$ 89,90</p>"
        '<p><a href="https://loja.example/p/BONE?ref=crm&amp;x=1" style="color: #0f766e;">'
        "Boné</a> 1 × R$ 59,90</p><p>Total: R$ 239,70</p><p>-</p>")
    assert rendered.text == (
        "Oi <script>!\n\n"
        "Garrafa Térmica (https://loja.example/p/GARRAFA?ref=crm&x=1) 2 × R$ 89,90\n\n"
        "Boné (https://loja.example/p/BONE?ref=crm&x=1) 1 × R$ 59,90\n\n"
        "Total: R$ 239,70\n\n-" + FOOTER)


def test_the_sample_customer_has_the_shape_of_a_real_one(engine, people):
    real, sample = _context(engine, people["ana"]), sample_context()
    assert set(sample) == set(real) == {"customer", "last_order", "cart", "recommended"}
    assert set(sample["customer"]) == set(real["customer"])
    assert set(sample["last_order"]) == set(real["last_order"])
    assert set(sample["last_order"]["items"][0]) == set(real["last_order"]["items"][0])
    assert set(sample["cart"]) == set(_context(engine, people["bia"])["cart"])
    assert set(sample["cart"]["items"][0]) == set(real["last_order"]["items"][0])
    assert set(sample["recommended"][0]) == set(real["recommended"][0])
    assert len(sample["recommended"]) == 4


@pytest.mark.parametrize(("store", "minor", "currency", "written"), [
    ("BRL", 123_456, "BRL", "R$ 1.234,56"),
    ("BRL", 5, "BRL", "R$ 0,05"),
    ("BRL", 123_456_789, "USD", "US$ 1.234.567,89"),
    ("BRL", 1_500, "JPY", "JP¥ 1.500"),
    ("BRL", 1_000, "ARS", "ARS 10,00"),
    ("USD", 123_456, "USD", "$1,234.56"),
    ("USD", 123_456, "BRL", "R$1,234.56"),
    ("USD", 1_234_567, "KWD", "KWD 1,234.567"),
    ("BRL", -990, None, "-R$ 9,90"),
])
def test_money_is_written_as_the_stores_market_writes_it(store, minor, currency, written):
    assert Money(store)(minor, currency) == written


def test_the_names_a_template_reads_are_the_merge_fields_a_send_fetches():
    parts = TemplateParts(
        subject="{{ customer.first_name }}, {{ shop.shop_name }}",
        html="{% for product in recommended %}{{ product.name }}{% endfor %}"
             "{% set total = cart.total %}{{ total }} <a href='{{ unsubscribe_url }}'>x</a>",
        text=None)
    assert names_read(parts) == {"customer", "shop", "recommended", "cart", "unsubscribe_url"}
    assert names_read(TemplateParts(subject="Oi", html="<p>Olá</p>",
                                    text="{{ last_order.number }}")) == {"last_order"}
