"""WooCommerce connector: `POST /webhooks/woocommerce` (REST API v3 Order resource payloads, pure).

- Authenticity: `X-WC-Webhook-Signature` is the base64 HMAC-SHA256 of the raw body with the
  webhook's secret (`SHOPSTREAM_WOOCOMMERCE_SECRET`; `new,old` during a rotation), compared in constant
  time. Wrong: 401.
- The creation ping: when a webhook is saved, WooCommerce POSTs the form body `webhook_id=<n>`
  with no signature and no `X-WC-Webhook-*` headers, and disables the webhook unless it gets a
  2xx. `verify` accepts an *unsigned* request only when it is exactly that (body
  `webhook_id=<digits>`, no `X-WC-Webhook-Topic`, no signature header), and `translate` answers []
  for it (the front acknowledges: 200 `ignored`). Nothing can be published through that door: a
  request that names a topic or carries any other body must be signed, and `translate` refuses
  (PayloadError) a body that is not a ping when no signature came with it. A ping carries no
  delivery id, so it is never claimed in the dedupe store.
- Routing (`X-WC-Webhook-Topic`), all on `shop.orders` keyed by the order id:
  `order.created` -> OrderPlaced; `order.updated` -> OrderUpdated, or OrderCancelled when the
  status is `cancelled`. Products (`product.*`) → `catalog.products`: `connectors/woocommerce_products.py`.
  Other topics (`order.deleted`, `order.restored`, coupons ...)
  are acknowledged and counted, not published.
- Dedupe: on `X-WC-Webhook-Delivery-ID`; `X-WC-Webhook-ID` (the webhook) + the order's
  `date_modified_gmt` identify the event for the deterministic event id.
- Statuses: WooCommerce has one `status`; it is carried as `source_financial_status` on every
  record (mapped by `topology/mappings/woocommerce.yaml`). As `source_fulfillment_status` only
  `completed` says something about shipping ("order fulfilled"), so it is carried there for
  `completed` and left empty otherwise (empty = no information: a refunded or re-opened order does
  not move a shipped order back). OrderCancelled carries no financial status: WooCommerce's
  `cancelled` says nothing about money (a paid order's refund arrives as its own status/payment
  event), and mapping it to a payment state would block cancelling paid orders.
- Money: WooCommerce's decimal strings become exact Decimals; JSON numbers (line `price` is one)
  are parsed straight to Decimal, never through a float. A unit price with more than 4 decimal
  places (WooCommerce divides tax-inclusive totals by quantity) is taken as line `subtotal` /
  quantity when that is exact, else rounded half-even to 4 places (the canonical decimal(18,4));
  order totals are always exact.
- Times: the `*_gmt` fields (WooCommerce writes them without an offset) are read as UTC.
- Line items without a SKU get `woocommerce-variation-<id>`, `woocommerce-product-<id>` or
  `woocommerce-line-<id>`, so stock and order lines keep a stable key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopstream.connectors import woocommerce_products
from shopstream.connectors.base import Outgoing, PayloadError, lower_headers, make_meta, parse_time
from shopstream.connectors.payload import decimal_amount, parse_body, representing
from shopstream.connectors.products import deleted
from shopstream.connectors.signing import Secrets, hmac_sha256_base64, secrets_of, signed_by
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
from shopstream.topology import names

SOURCE = "woocommerce"
ORDERS_TOPIC = names.SHOP_ORDERS
ORDER_TOPICS = {"order.created", "order.updated"}
SIGNATURE_HEADER = "x-wc-webhook-signature"
TOPIC_HEADER = "x-wc-webhook-topic"
PING_BODY = re.compile(rb"^webhook_id=[0-9]{1,20}$")
#: The statuses WooCommerce core knows; others (plugins' custom ones) pass through and are mapped, or
#: rejected to review by the lifecycle when the mapping does not cover them.
STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed")
FOUR_PLACES = Decimal("0.0001")


def sign(secret: str, body: bytes) -> str:
    """The `X-WC-Webhook-Signature` value WooCommerce sends for `body`."""
    return hmac_sha256_base64(secret, body)


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """True for WooCommerce's unsigned creation ping (and only for it)."""
    h = lower_headers(headers)
    return SIGNATURE_HEADER not in h and TOPIC_HEADER not in h and bool(PING_BODY.match(body.strip()))


def _decimal(value: Any, field: str) -> Decimal:
    return decimal_amount(value, field)


def _gmt(value: str | None, field: str) -> datetime:
    """A `*_gmt` timestamp ("2024-05-01T09:30:00", no offset) as aware UTC."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?", value):
        value += "+00:00"
    return parse_time(value, field)


class _Loose(BaseModel):
    # WooCommerce and its plugins add fields; unknown ones are ignored, the ones we read are validated.
    model_config = ConfigDict(extra="ignore")


class WooLineItem(_Loose):
    id: int | str
    name: str | None = None
    product_id: int | str | None = None
    variation_id: int | str | None = None
    sku: str | None = None
    quantity: int = Field(ge=0)
    price: Decimal
    subtotal: Decimal | None = None

    @field_validator("price", "subtotal", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> Decimal | None:
        return None if v is None or v == "" else _decimal(v, "amount")

    def canonical_sku(self) -> str:
        if self.sku and self.sku.strip():
            return self.sku.strip()
        if self.variation_id not in (None, 0, "0", ""):
            return f"woocommerce-variation-{self.variation_id}"
        if self.product_id not in (None, 0, "0", ""):
            return f"woocommerce-product-{self.product_id}"
        return f"woocommerce-line-{self.id}"

    def unit_price(self) -> Decimal:
        places = self.price.as_tuple().exponent
        if isinstance(places, int) and places >= -4:
            return self.price
        if self.subtotal is not None and self.quantity > 0:
            exact = self.subtotal / self.quantity
            if exact == exact.quantize(FOUR_PLACES, rounding=ROUND_HALF_EVEN):
                return exact
        return self.price.quantize(FOUR_PLACES, rounding=ROUND_HALF_EVEN)


class WooAddress(_Loose):
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    address_1: str | None = None
    address_2: str | None = None
    city: str | None = None
    state: str | None = None
    postcode: str | None = None
    country: str | None = None
    email: str | None = None

    def canonical(self) -> Address | None:
        name = " ".join(p for p in (self.first_name, self.last_name) if p and p.strip()) or self.company or None
        parts = dict(name=name, line1=self.address_1 or None, line2=self.address_2 or None, city=self.city or None,
                     postal_code=self.postcode or None, region=self.state or None,
                     country_code=(self.country or "").upper() or None)
        return Address(**parts) if any(parts.values()) else None


class WooOrder(_Loose):
    id: int | str
    number: str | int | None = None
    status: str = Field(min_length=1)
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    date_created_gmt: str
    date_modified_gmt: str | None = None
    total: Decimal
    total_tax: Decimal | None = None
    shipping_total: Decimal | None = None
    discount_total: Decimal | None = None
    customer_id: int | str | None = None
    billing: WooAddress | None = None
    shipping: WooAddress | None = None
    line_items: list[WooLineItem]
    customer_note: str | None = None

    @field_validator("total", "total_tax", "shipping_total", "discount_total", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> Decimal | None:
        return None if v is None or v == "" else _decimal(v, "amount")


def parse_order(body: bytes) -> WooOrder:
    """Validate a WooCommerce Order payload; PayloadError with a readable reason otherwise."""
    return parse_body(WooOrder, body, "WooCommerce order")


class WooCommerceConnector:
    """Translates WooCommerce order webhooks into OrderPlaced / OrderUpdated / OrderCancelled."""

    name = SOURCE

    #: Request headers a parked body keeps: what `verify`, `delivery_id` and `translate` read on a redrive.
    kept_headers: tuple[str, ...] = ("x-wc-webhook-signature", "x-wc-webhook-topic", "x-wc-webhook-delivery-id",
                    "x-wc-webhook-id", "x-wc-webhook-resource", "x-wc-webhook-event", "x-wc-webhook-source")

    def __init__(self, secret: Secrets) -> None:
        self._secret = secrets_of(secret)

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        given = lower_headers(headers).get(SIGNATURE_HEADER, "")
        if not given:
            return is_ping(headers, body)  # unsigned: only the ping, which publishes nothing
        return signed_by(self._secret, given, body, sign)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return lower_headers(headers).get("x-wc-webhook-delivery-id") or None

    def deleted_product(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """The product id of a signed `product.deleted` delivery (the front looks its SKUs up)."""
        h = lower_headers(headers)
        if not h.get(SIGNATURE_HEADER) or h.get(TOPIC_HEADER) != "product.deleted":
            return None
        return woocommerce_products.deleted_product_id(body)

    def translate_deleted(self, headers: Mapping[str, str], body: bytes, received_at: datetime,
                          skus: list[str]) -> list[Outgoing]:
        """One ProductDeleted per SKU, at the time received (the body carries no time)."""
        product_id = woocommerce_products.deleted_product_id(body)
        source_event_id = lower_headers(headers).get("x-wc-webhook-delivery-id")
        return [deleted(woocommerce_products.SOURCE, sku, product_id, received_at, received_at, source_event_id)
                for sku in skus]

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        h = lower_headers(headers)
        if not h.get(SIGNATURE_HEADER):
            if is_ping(headers, body):
                return []
            # verify() lets nothing else through unsigned; refuse rather than trust a caller that skipped it.
            raise PayloadError("unsigned request that is not a WooCommerce webhook ping")
        topic = h.get(TOPIC_HEADER, "")
        if not topic:
            raise PayloadError("missing X-WC-Webhook-Topic header")
        if topic in woocommerce_products.PRODUCT_TOPICS:
            return woocommerce_products.translate_product(topic, body, received_at, "EUR",
                                                          h.get("x-wc-webhook-delivery-id"))
        if topic not in ORDER_TOPICS:
            return []
        order = parse_order(body)
        order_id = str(order.id)
        try:
            with representing(f"order {order_id}"):
                record = self._record(topic, order, h, received_at)
        except PayloadError:
            raise
        except ValueError as exc:
            raise PayloadError(f"order {order_id}: {exc}") from None
        return [Outgoing(topic=ORDERS_TOPIC, key=order_id, record=record)]

    def _record(self, topic: str, order: WooOrder, h: Mapping[str, str],
                received_at: datetime) -> OrderPlaced | OrderUpdated | OrderCancelled:
        order_id = str(order.id)
        created = _gmt(order.date_created_gmt, "date_created_gmt")
        modified_raw = order.date_modified_gmt or order.date_created_gmt
        modified = _gmt(modified_raw, "date_modified_gmt")
        source_event_id = h.get("x-wc-webhook-delivery-id")

        def meta(record_type: str, occurred: datetime, marker: str) -> EventMeta:
            # Identity = order + what changed + when: a retried delivery maps to the same event id.
            return make_meta(source=SOURCE, event_type=record_type, identity=f"{order_id}:{marker}",
                             occurred_at=occurred, received_at=received_at, source_event_id=source_event_id,
                             correlation_id=f"woocommerce:order:{order_id}")

        if topic == "order.updated" and order.status == "cancelled":
            return OrderCancelled(meta=meta("OrderCancelled", modified, modified_raw), order_id=order_id,
                                  cancelled_at=modified, reason=order.customer_note or None,
                                  source_financial_status=None, lines=[])
        currency = order.currency.upper()

        def money(amount: Decimal) -> Money:
            return Money(amount=amount, currency=currency)

        lines = [OrderLine(line_id=str(li.id), sku=li.canonical_sku(), quantity=li.quantity,
                           unit_price=money(li.unit_price()), title=li.name) for li in order.line_items]
        subtotal = sum((li.subtotal for li in order.line_items if li.subtotal is not None), Decimal("0"))
        billing = order.billing
        customer = None
        if order.customer_id not in (None, 0, "0", "") or (billing and billing.email):
            customer = Customer(customer_id=str(order.customer_id) if order.customer_id not in (None, 0, "0", "")
                                else None, email=(billing.email or None) if billing else None)
        body: dict[str, Any] = dict(
            order_id=order_id, order_number=str(order.number) if order.number is not None else None,
            currency=currency, total=money(order.total),
            subtotal=money(subtotal) if all(li.subtotal is not None for li in order.line_items) else None,
            total_tax=money(order.total_tax) if order.total_tax is not None else None,
            shipping=money(order.shipping_total) if order.shipping_total is not None else None,
            lines=lines, customer=customer,
            shipping_address=order.shipping.canonical() if order.shipping else None,
            billing_address=billing.canonical() if billing else None,
            source_financial_status=order.status,
            source_fulfillment_status=order.status if order.status == "completed" else None,
        )
        if topic == "order.created":
            return OrderPlaced(meta=meta("OrderPlaced", created, order.date_created_gmt), placed_at=created, **body)
        return OrderUpdated(meta=meta("OrderUpdated", modified, modified_raw), updated_at=modified, **body)
