"""A made-up customer with every merge field filled in, for previews."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from clientela.messaging.merge_fields.money import Money, line


def sample_context() -> dict[str, Any]:
    """A realistic made-up customer, for previews when no customer is chosen."""
    money = Money("BRL")
    shoe = {"name": "Tênis Corrida Leve", "sku": "TN-4021", "category": "Calçados > Corrida",
            "brand": "Garoa", "url": "https://loja.example/p/tenis-corrida-leve",
            "image_url": "https://loja.example/img/tenis-corrida-leve.jpg"}
    sock = {"name": "Meia Esportiva (3 pares)", "sku": "MA-0107", "category": "Acessórios",
            "brand": "Garoa", "url": "https://loja.example/p/meia-esportiva",
            "image_url": "https://loja.example/img/meia-esportiva.jpg"}
    bottle = {"name": "Garrafa Térmica 750 ml", "sku": "GT-0750", "category": "Acessórios",
              "brand": "Maré", "url": "https://loja.example/p/garrafa-termica",
              "image_url": "https://loja.example/img/garrafa-termica.jpg"}
    return {
        "customer": {"id": 0, "email": "ana.souza@example.com", "first_name": "Ana",
                     "last_name": "Souza", "name": "Ana Souza", "gender": "female",
                     "birthday": date(1990, 5, 17), "city": "São Paulo", "region": "SP",
                     "country": "BR", "locale": "pt-BR",
                     "traits": {"email": "ana.souza@example.com", "firstName": "Ana",
                                "lastName": "Souza", "plan": "vip"},
                     "tags": ["newsletter", "vip"]},
        "last_order": {"id": 0, "number": "100234", "status": "paid",
                       "placed_at": datetime(2026, 11, 2, 14, 30, tzinfo=UTC),
                       "currency": "BRL", "coupon": None, "total": money(30_980, "BRL"),
                       "total_amount": money.amount(30_980, "BRL"),
                       "items": [_sample(money, shoe, 1, 25_990), _sample(money, sock, 2, 2_495)]},
        "cart": {"id": 0, "status": "abandoned", "currency": "BRL", "quantity": 1,
                 "total": money(8_990, "BRL"), "total_amount": money.amount(8_990, "BRL"),
                 "updated_at": datetime(2026, 11, 20, 21, 5, tzinfo=UTC),
                 "abandoned_at": datetime(2026, 11, 20, 22, 5, tzinfo=UTC),
                 "items": [_sample(money, bottle, 1, 8_990)]},
        "recommended": [
            _product(money, "Jaqueta Corta-Vento", "jaqueta-corta-vento", 34_990, "Garoa"),
            _product(money, "Bermuda de Corrida", "bermuda-corrida", 11_990, "Garoa"),
            _product(money, "Boné Dry Fit", "bone-dry-fit", 6_990, "Maré"),
            _product(money, "Viseira Leve", "viseira-leve", 4_990, "Maré")],
    }


def _sample(money: Money, product: dict[str, str], quantity: int, cents: int
            ) -> dict[str, Any]:
    return line(money, "BRL", quantity=quantity, price_cents=cents, name=product["name"],
                sku=product["sku"], category=product["category"], brand=product["brand"],
                url=product["url"], image_url=product["image_url"])


def _product(money: Money, name: str, slug: str, cents: int, brand: str) -> dict[str, Any]:
    return {"name": name, "url": f"https://loja.example/p/{slug}",
            "image_url": f"https://loja.example/img/{slug}.jpg", "price": money(cents, "BRL"),
            "brand": brand, "category": "Roupas > Corrida"}
