"""Shopify connector: `POST /webhooks/shopify` (REST Order resource payloads).

- Authenticity: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body with the app's
  secret (`SHOPSTREAM_SHOPIFY_SECRET`), compared in constant time. Missing or wrong: 401.
- Routing: `X-Shopify-Topic` — `orders/create` → OrderPlaced, `orders/updated` → OrderUpdated,
  `orders/cancelled` → OrderCancelled, all on `shop.orders` keyed by the order id. Other topics are
  acknowledged (200) and counted but not published: Shopify disables endpoints that keep failing.
- Dedupe: on `X-Shopify-Webhook-Id` (same on every retry of a delivery); `X-Shopify-Event-Id` is kept
  as `meta.source_event_id`.
- Money: decimal strings become exact `Decimal`s, never floats.
- Line items without a SKU (custom items, gift cards) get `shopify-variant-<variant_id>` or
  `shopify-line-<line id>` so stock and order lines still have a stable key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shopstream.connectors.base import (
    Outgoing,
    PayloadError,
    constant_time_equal,
    lower_headers,
    make_meta,
    parse_time,
)
from shopstream.schemas.models import (
    Address,
    Customer,
    EventMeta,
    Money,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderUpdated,
)

SOURCE = "shopify"
ORDERS_TOPIC = "shop.orders"
ORDER_TOPICS = {"orders/create": "OrderPlaced", "orders/updated": "OrderUpdated",
                "orders/cancelled": "OrderCancelled"}


def sign(secret: str, body: bytes) -> str:
    """The `X-Shopify-Hmac-Sha256` value Shopify sends for `body`."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _decimal(value: Any, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{field}: not a decimal amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"{field}: not a finite amount")
    return amount


class _Loose(BaseModel):
    # Shopify adds fields over time; unknown ones are ignored, the ones we read are validated.
    model_config = ConfigDict(extra="ignore")


class ShopifyLineItem(_Loose):
    id: int | str
    sku: str | None = None
    variant_id: int | str | None = None
    quantity: int = Field(ge=0)
    price: Decimal
    title: str | None = None

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, v: Any) -> Decimal:
        return _decimal(v, "price")

    def canonical_sku(self) -> str:
        if self.sku and self.sku.strip():
            return self.sku.strip()
        if self.variant_id is not None:
            return f"shopify-variant-{self.variant_id}"
        return f"shopify-line-{self.id}"


class ShopifyAddress(_Loose):
    name: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    zip: str | None = None
    province_code: str | None = None
    country_code: str | None = None


class ShopifyCustomer(_Loose):
    id: int | str | None = None
    email: str | None = None
    orders_count: int | None = None


class ShopifyOrder(_Loose):
    id: int | str
    name: str | None = None
    email: str | None = None
    created_at: str
    updated_at: str | None = None
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    total_price: Decimal
    subtotal_price: Decimal | None = None
    total_tax: Decimal | None = None
    total_shipping_price_set: dict[str, Any] | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    line_items: list[ShopifyLineItem]
    shipping_address: ShopifyAddress | None = None
    billing_address: ShopifyAddress | None = None
    customer: ShopifyCustomer | None = None
    cancelled_at: str | None = None
    cancel_reason: str | None = None

    @field_validator("total_price", "subtotal_price", "total_tax", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> Decimal | None:
        return None if v is None else _decimal(v, "amount")


def _money(amount: Decimal, currency: str) -> Money:
    return Money(amount=amount, currency=currency.upper())


def _address(a: ShopifyAddress | None) -> Address | None:
    if a is None:
        return None
    return Address(name=a.name, line1=a.address1, line2=a.address2, city=a.city, postal_code=a.zip,
                   region=a.province_code, country_code=a.country_code)


def _shipping(order: ShopifyOrder) -> Money | None:
    shop_money = (order.total_shipping_price_set or {}).get("shop_money") or {}
    if "amount" not in shop_money:
        return None
    try:
        return _money(_decimal(shop_money["amount"], "total_shipping_price_set"), order.currency)
    except ValueError as exc:
        raise PayloadError(str(exc)) from exc


def _lines(order: ShopifyOrder) -> list[OrderLine]:
    return [OrderLine(line_id=str(li.id), sku=li.canonical_sku(), quantity=li.quantity,
                      unit_price=_money(li.price, order.currency), title=li.title)
            for li in order.line_items]


def parse_order(body: bytes) -> ShopifyOrder:
    """Validate a Shopify Order payload; PayloadError with a readable reason otherwise."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError("body is not a JSON object")
    try:
        return ShopifyOrder.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise PayloadError(f"not a Shopify order: {reasons}") from None


class ShopifyConnector:
    """Translates Shopify order webhooks into OrderPlaced / OrderUpdated / OrderCancelled."""

    name = SOURCE

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        given = lower_headers(headers).get("x-shopify-hmac-sha256", "")
        return bool(self._secret) and bool(given) and constant_time_equal(sign(self._secret, body), given)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return lower_headers(headers).get("x-shopify-webhook-id") or None

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        h = lower_headers(headers)
        topic = h.get("x-shopify-topic", "")
        if not topic:
            raise PayloadError("missing X-Shopify-Topic header")
        record_type = ORDER_TOPICS.get(topic)
        if record_type is None:
            return []
        order = parse_order(body)
        order_id = str(order.id)
        event_source_id = h.get("x-shopify-event-id") or h.get("x-shopify-webhook-id")
        common: dict[str, Any] = dict(order_id=order_id, correlation=f"shopify:order:{order_id}")
        try:
            record = self._record(record_type, order, received_at, event_source_id, common)
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
            raise PayloadError(f"order {order_id} cannot be represented: {reasons}") from None
        return [Outgoing(topic=ORDERS_TOPIC, key=order_id, record=record)]

    def _record(self, record_type: str, order: ShopifyOrder, received_at: datetime,
                event_source_id: str | None, common: dict[str, Any]) -> OrderPlaced | OrderUpdated | OrderCancelled:
        order_id: str = common["order_id"]
        created = parse_time(order.created_at, "created_at")

        def meta(occurred: datetime, version_marker: str) -> EventMeta:
            # Identity = order + what changed + when: a retried delivery maps to the same event id.
            return make_meta(source=SOURCE, event_type=record_type,
                             identity=f"{order_id}:{version_marker}", occurred_at=occurred,
                             received_at=received_at, source_event_id=event_source_id,
                             correlation_id=common["correlation"])

        if record_type == "OrderCancelled":
            if not order.cancelled_at:
                raise PayloadError("orders/cancelled without cancelled_at")
            cancelled = parse_time(order.cancelled_at, "cancelled_at")
            return OrderCancelled(meta=meta(cancelled, order.cancelled_at), order_id=order_id,
                                  cancelled_at=cancelled, reason=order.cancel_reason,
                                  source_financial_status=order.financial_status, lines=[])
        body: dict[str, Any] = dict(
            order_id=order_id, order_number=order.name, currency=order.currency.upper(),
            total=_money(order.total_price, order.currency),
            subtotal=_money(order.subtotal_price, order.currency) if order.subtotal_price is not None else None,
            total_tax=_money(order.total_tax, order.currency) if order.total_tax is not None else None,
            shipping=_shipping(order), lines=_lines(order),
            customer=Customer(customer_id=str(order.customer.id) if order.customer.id is not None else None,
                              email=order.customer.email or order.email,
                              orders_count=order.customer.orders_count) if order.customer else None,
            shipping_address=_address(order.shipping_address), billing_address=_address(order.billing_address),
            source_financial_status=order.financial_status, source_fulfillment_status=order.fulfillment_status,
        )
        if record_type == "OrderPlaced":
            return OrderPlaced(meta=meta(created, order.created_at), placed_at=created, **body)
        updated = parse_time(order.updated_at or order.created_at, "updated_at")
        return OrderUpdated(meta=meta(updated, order.updated_at or order.created_at), updated_at=updated, **body)
