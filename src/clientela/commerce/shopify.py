"""Shopify webhooks: the signature, and how its REST resources (Order, Refund, Customer,
Product) read as Clientela's orders, refunds, customers and products."""

from __future__ import annotations

from typing import Any

from clientela.commerce.catalog import ProductRecord
from clientela.commerce.ecommerce import Line
from clientela.commerce.payloads import (
    count,
    identifier,
    items,
    moment,
    money,
    object_at,
    order_line,
    text,
)
from clientela.commerce.service import OrderRecord, RefundRecord
from clientela.core.money import currency_code

SOURCE = "shopify"
ORDER_TOPICS = ("orders/create", "orders/updated", "orders/cancelled", "orders/paid",
                "orders/fulfilled")
CUSTOMER_TOPICS = ("customers/create", "customers/update")
PRODUCT_TOPICS = ("products/create", "products/update")
PRIVACY_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
# Where an order was placed (`source_name`) in the words of the channel column.
_CHANNELS = {"web": "web", "pos": "store", "shopify_draft_order": "phone", "iphone": "app",
             "android": "app"}


def order_record(order: dict[str, Any]) -> OrderRecord:
    """A Shopify Order resource as an order."""
    currency = currency_code(order.get("currency"), "currency")
    refunds = tuple(refund_record(refund, currency)[1] for refund in items(order, "refunds"))
    return OrderRecord(
        external_id=identifier(order, "id"), status=_status(order), currency=currency,
        placed_at=moment(order, "created_at"),
        total_cents=money(order, "total_price", currency) or 0,
        subtotal_cents=money(order, "subtotal_price", currency),
        discount_cents=money(order, "total_discounts", currency) or 0,
        shipping_cents=_shipping(order, currency), tax_cents=money(order, "total_tax",
                                                                      currency) or 0,
        coupon=next((text(code.get("code")) for code in items(order, "discount_codes")
                     if isinstance(code, dict) and code.get("code")), None),
        channel=_CHANNELS.get(str(order.get("source_name") or "web"),
                              str(order.get("source_name"))[:64]),
        lines=tuple(order_line(item, currency, f"line_items[{index}]")
                    for index, item in enumerate(items(order, "line_items"))),
        refunds=refunds)


def refund_record(refund: dict[str, Any], currency: str) -> tuple[str, RefundRecord]:
    """(the order's id, the refund) of a Shopify Refund resource: the successful refund
    transactions are what went back to the customer."""
    amount = sum(money(transaction, "amount", currency) or 0
                 for transaction in items(refund, "transactions")
                 if isinstance(transaction, dict) and transaction.get("kind") == "refund"
                 and transaction.get("status", "success") == "success")
    return identifier(refund, "order_id"), RefundRecord(
        external_id=identifier(refund, "id"), amount_cents=amount,
        reason=str(refund["note"])[:500] if refund.get("note") else None,
        refunded_at=moment(refund, "created_at"))


def order_email(order: dict[str, Any]) -> str | None:
    email = order.get("email") or order.get("contact_email") or \
        object_at(order, "customer").get("email")
    return email if isinstance(email, str) and email else None


def order_names(order: dict[str, Any]) -> dict[str, str]:
    """First and last name from the order's customer, else its billing address."""
    for holder in (order.get("customer"), order.get("billing_address")):
        if isinstance(holder, dict) and (holder.get("first_name") or holder.get("last_name")):
            return {key: str(holder[key]) for key in ("first_name", "last_name")
                    if isinstance(holder.get(key), str) and holder[key]}
    return {}


def customer_fields(customer: dict[str, Any]) -> dict[str, Any]:
    """Profile fields of a Shopify Customer resource (those it states)."""
    fields: dict[str, Any] = {key: customer[key] for key in ("email", "first_name", "last_name")
                              if isinstance(customer.get(key), str) and customer[key]}
    address = customer.get("default_address")
    if isinstance(address, dict):
        for key, field in (("city", "city"), ("province", "region"), ("country_code", "country")):
            if isinstance(address.get(key), str) and address[key]:
                fields[field] = address[key]
    consent = customer.get("email_marketing_consent")
    state = consent.get("state") if isinstance(consent, dict) else None
    if state in ("subscribed", "unsubscribed"):
        fields["consent"] = {"email_marketing": state, "source": "shopify"}
    return fields


def product_record(product: dict[str, Any], currency: str) -> ProductRecord:
    """A Shopify Product resource: its first variant gives SKU, price and stock."""
    variants = [variant for variant in items(product, "variants") if isinstance(variant, dict)]
    first = variants[0] if variants else {}
    image = object_at(product, "image")
    stock = first.get("inventory_quantity")
    return ProductRecord(
        external_id=identifier(product, "id"), currency=currency,
        line=Line(product_id=identifier(product, "id"), sku=text(first.get("sku")),
                  name=text(product.get("title"), 500), category=text(product.get("product_type")),
                  brand=text(product.get("vendor")),
                  price_cents=money(first, "price", currency, "variants[0]"),
                  image_url=text(image.get("src"), 2000)),
        stock=count(stock),
        active=product.get("status", "active") == "active")


def _status(order: dict[str, Any]) -> str:
    if order.get("cancelled_at"):
        return "cancelled"
    if order.get("financial_status") == "refunded":
        return "refunded"
    if order.get("fulfillment_status") == "fulfilled":
        return "fulfilled"
    if order.get("financial_status") in ("paid", "partially_refunded", "partially_paid"):
        return "paid"
    return "placed"


def _shipping(order: dict[str, Any], currency: str) -> int:
    in_shop_currency = object_at(object_at(order, "total_shipping_price_set"), "shop_money")
    if in_shop_currency.get("amount") is not None:
        return money(in_shop_currency, "amount", currency,
                     "total_shipping_price_set.shop_money") or 0
    return sum(money(line, "price", currency, "shipping_lines") or 0
               for line in items(order, "shipping_lines") if isinstance(line, dict))


