"""Shopify connector: `POST /webhooks/shopify` (REST Order resource payloads).

- Authenticity: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body with the app's
  secret (`SHOPSTREAM_SHOPIFY_SECRET`; `new,old` during a rotation), compared in constant time.
  Missing or wrong: 401.
- Routing: `X-Shopify-Topic` — `orders/create` → OrderPlaced, `orders/updated` → OrderUpdated,
  `orders/cancelled` → OrderCancelled, all on `shop.orders` keyed by the order id. Other topics are
  acknowledged (200) and counted but not published: Shopify disables endpoints that keep failing.
- Dedupe: on `X-Shopify-Webhook-Id` (same on every retry of a delivery); `X-Shopify-Event-Id` is kept
  as `meta.source_event_id`.
- Money: decimal strings become exact `Decimal`s, never floats.
- Line items without a SKU (custom items, gift cards) get `shopify-variant-<variant_id>` or
  `shopify-line-<line id>` so stock and order lines still have a stable key.

Products (`products/create|update|delete`) → `catalog.products`: see `connectors/shopify_products.py`.

Refunds (`refunds/create`, the REST Refund resource) -> RefundIssued on `payments`, keyed by the
order id (`order_id` of the refund):
- Shopify refunds are individual objects with their own id; each `refunds/create` is one refund,
  created once and never changed. This differs from Stripe's `charge.refunded`, which carries the
  charge's *cumulative* `amount_refunded` under one `<charge>/cumulative` refund_id. Both fit one
  consumer rule: keep the latest figure per `refund_id` (replace, never add twice), and the order's
  refunded total is the sum over its refund_ids. (A shop that also sends its Stripe events would see
  the same money from both sources; reconcile per provider, not across them.)
- `refund_id` is the Shopify refund id; the event identity is the refund id alone (a refund is
  immutable), so a redelivery maps to the same event id.
- `amount` is the exact Decimal sum of the refund's transactions with `kind: refund` and
  `status: success`, in their (single) currency; pending, failed and errored transactions move no
  money and count 0. Successful transactions in two currencies: PayloadError.
- A refund with no successful refund transaction (restock-only, store credit, or a still pending
  gateway refund) is still published with amount 0 and its lines, so returned quantities are not
  lost; its currency comes from any transaction, else from the lines' `subtotal_set.shop_money`,
  else from `line_item.price_set.shop_money` (none of them: PayloadError). A refund with neither
  money nor lines (e.g. only an order adjustment) is acknowledged and not published. A pending
  transaction that later succeeds reaches Shopify webhooks as `order_transactions/create`, which
  this connector does not translate (yet).
- `lines`: one RefundLine per `refund_line_items[]` with the refunded `quantity` (of the refund
  line, not the order line's) and the line item's SKU (same fallback as orders). Line amounts are
  not itemised (`amount` None): Shopify's per-line subtotal excludes tax and is in shop money while
  transactions may be in the presentment currency; the refund total is the authoritative figure.
- `payment_id`: the `parent_id` of the first counted transaction (the sale / capture it refunds),
  else `order/<order id>`; `provider`: that transaction's `gateway` (e.g. `shopify_payments`), else
  `shopify`; `refunded_at`: `processed_at`, else `created_at`; `reason`: the refund's `note`.

Fulfillments (`fulfillments/create`, `fulfillments/update`, the REST Fulfillment resource) -> the
Shipment* events on `fulfillment.shipments`, keyed by the order id; `shipment_id` is the fulfillment
id. Two fields decide:
- `status` (the fulfillment itself): `pending` / `open` (requested, not done), `success` (the items
  are fulfilled: the order's fulfillment_status becomes `fulfilled`, which the status mapping calls
  `shipped`), `cancelled`, `error`, `failure`.
- `shipment_status` (carrier progress, optional): mapped by SHIPMENT_STATUS below. It is kept in
  code, not in `topology/mappings/shopify.yaml`: the mapping loader
  (`processors/orders/mapping.py`, `StatusMapping` with `extra="forbid"`) rejects unknown keys, so
  a new key there would break loading the order status mapping.
Rules, in order:
  1. `status` cancelled / error / failure -> ShipmentException (`exception_code`
     `fulfillment_<status>`): nothing is on its way any more, and a person should know.
  2. a `shipment_status` SHIPMENT_STATUS maps to an event -> that event: carrier progress (in
     transit, out for delivery, delivered, attempted delivery, failure, ...) on create and on
     update; a purchased / printed label (the parcel exists, the carrier does not have it yet)
     -> ShipmentCreated on create only, as on an update it is no news.
  3. otherwise (no shipment_status, `confirmed`, or one this connector does not know yet), on
     `fulfillments/create`: `success` -> ShipmentDispatched (the merchant marked the items sent;
     consistent with the order mapping's fulfilled = shipped), `pending` / `open` ->
     ShipmentCreated. On `fulfillments/update`: acknowledged, nothing published (tracking edits
     and other changes without carrier progress).
- `carrier`: `tracking_company`, else `unknown`; tracking number and URL: the singular fields,
  else the first of the lists; `location`: `location_id`; lines: `line_items[]` SKU (same fallback
  as orders) and the quantity in this fulfillment.
- Times: an update's event happens at `updated_at` (Shopify's REST fulfillment has no delivered
  or in-transit timestamp), a create's at `created_at`.
- Identity of the event id: fulfillment id + event + status + shipment_status + that time, so a
  redelivery maps to the same event id and every real change to a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from shopstream.connectors import shopify_products
from shopstream.connectors.base import Outgoing, PayloadError, lower_headers, make_meta, parse_time
from shopstream.connectors.payload import representing
from shopstream.connectors.shopify_payloads import (
    ShopifyAddress,
    ShopifyFulfillment,
    ShopifyOrder,
    ShopifyRefund,
    parse_fulfillment,
    parse_order,
    parse_refund,
    shopify_decimal,
)
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
    RefundIssued,
    RefundLine,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    ShipmentLine,
)
from shopstream.topology import names

SOURCE = "shopify"
ORDERS_TOPIC = names.SHOP_ORDERS
ORDER_TOPICS = {"orders/create": "OrderPlaced", "orders/updated": "OrderUpdated",
                "orders/cancelled": "OrderCancelled"}
PAYMENTS_TOPIC = names.PAYMENTS
SHIPMENTS_TOPIC = names.FULFILLMENT_SHIPMENTS
REFUND_TOPIC = "refunds/create"
FULFILLMENT_TOPICS = ("fulfillments/create", "fulfillments/update")

ShipmentKind = Literal["created", "dispatched", "delivered", "exception"]

#: Fulfillment `shipment_status` -> canonical shipment event (see the module docstring, rule 2).
#: A status listed with None carries no carrier progress: the fulfillment's `status` decides on
#: create, an update is acknowledged without an event. Values not listed (Shopify adds new ones)
#: are treated like None, never guessed.
SHIPMENT_STATUS: dict[str, ShipmentKind | None] = {
    "confirmed": None,                 # Shopify's default when nothing else is known
    "label_purchased": "created",      # a parcel exists, the carrier does not have it yet
    "label_printed": "created",
    "ready_for_pickup": "dispatched",  # waiting at a pickup point / locker: on its way, not delivered
    "carrier_picked_up": "dispatched",
    "in_transit": "dispatched",
    "out_for_delivery": "dispatched",
    "delayed": "dispatched",           # still moving; reported in status_detail, not an exception
    "delivered": "delivered",
    "picked_up": "delivered",          # the buyer collected it (local pickup / pickup point)
    "attempted_delivery": "exception",
    "failure": "exception",
}
#: Fulfillment `status` values that mean nothing is (any more) on its way (rule 1).
FAILED_FULFILLMENT = frozenset({"cancelled", "error", "failure"})
#: `fulfillments/create` without carrier progress: fulfilled items count as dispatched (rule 3).
DISPATCHED_ON_CREATE = frozenset({"success"})
#: Refund transactions that moved money back to the buyer.
REFUND_KIND, REFUND_SUCCESS = "refund", "success"


def sign(secret: str, body: bytes) -> str:
    """The `X-Shopify-Hmac-Sha256` value Shopify sends for `body`."""
    return hmac_sha256_base64(secret, body)


def _money(amount: Decimal, currency: str) -> Money:
    return Money(amount=amount, currency=currency.upper())


def _address(a: ShopifyAddress | None) -> Address | None:
    if a is None:
        return None
    return Address(name=a.name, line1=a.address1, line2=a.address2, city=a.city, postal_code=a.zip,
                   region=a.province_code, country_code=a.country_code)


def _shipping(order: ShopifyOrder) -> Money | None:
    shop_money = (order.total_shipping_price_set or {}).get("shop_money") or {}
    if not isinstance(shop_money, dict):  # found by the fuzz test: `"shop_money": 5` raised TypeError
        raise PayloadError("total_shipping_price_set.shop_money: expected an object")
    if "amount" not in shop_money:
        return None
    try:
        return _money(shopify_decimal(shop_money["amount"], "total_shipping_price_set"), order.currency)
    except ValueError as exc:
        raise PayloadError(str(exc)) from exc


def _lines(order: ShopifyOrder) -> list[OrderLine]:
    return [OrderLine(line_id=str(li.id), sku=li.canonical_sku(), quantity=li.quantity,
                      unit_price=_money(li.price, order.currency), title=li.title)
            for li in order.line_items]


def shipment_kind(fulfillment: ShopifyFulfillment, *, created: bool) -> ShipmentKind | None:
    """Which canonical shipment event a fulfillment delivery means (None: acknowledged, not published)."""
    status = fulfillment.status.lower()
    if status in FAILED_FULFILLMENT:
        return "exception"
    progress = SHIPMENT_STATUS.get((fulfillment.shipment_status or "").lower())
    if progress is not None and (progress != "created" or created):
        return progress
    if not created:
        return None
    return "dispatched" if status in DISPATCHED_ON_CREATE else "created"


class ShopifyConnector:
    """Translates Shopify order, refund and fulfillment webhooks into canonical events."""

    name = SOURCE

    #: Request headers a parked body keeps: what `verify`, `delivery_id` and `translate` read on a redrive.
    kept_headers: tuple[str, ...] = (
        "x-shopify-hmac-sha256", "x-shopify-topic", "x-shopify-webhook-id", "x-shopify-event-id",
        "x-shopify-shop-domain", "x-shopify-api-version", "x-shopify-triggered-at")

    def __init__(self, secret: Secrets, currency: str = "EUR") -> None:
        self._secret = secrets_of(secret)
        self.currency = currency  # product payloads name no currency: the shop's (products only)

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        given = lower_headers(headers).get("x-shopify-hmac-sha256", "")
        return signed_by(self._secret, given, body, sign)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return lower_headers(headers).get("x-shopify-webhook-id") or None

    def deleted_product(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """The product id of a `products/delete` delivery (the front looks its SKUs up)."""
        if lower_headers(headers).get("x-shopify-topic") != "products/delete":
            return None
        return shopify_products.deleted_product_id(body)

    def translate_deleted(self, headers: Mapping[str, str], body: bytes, received_at: datetime,
                          skus: list[str]) -> list[Outgoing]:
        """One ProductDeleted per SKU, at `X-Shopify-Triggered-At` (else the time received)."""
        h = lower_headers(headers)
        stamp = h.get("x-shopify-triggered-at")
        deleted_at = parse_time(stamp, "X-Shopify-Triggered-At") if stamp else received_at
        return shopify_products.translate_deleted(shopify_products.deleted_product_id(body), skus, deleted_at,
                                                  received_at, h.get("x-shopify-event-id")
                                                  or h.get("x-shopify-webhook-id"))

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        h = lower_headers(headers)
        topic = h.get("x-shopify-topic", "")
        if not topic:
            raise PayloadError("missing X-Shopify-Topic header")
        event_source_id = h.get("x-shopify-event-id") or h.get("x-shopify-webhook-id")
        if topic == REFUND_TOPIC:
            return self._refund(parse_refund(body), received_at, event_source_id)
        if topic in FULFILLMENT_TOPICS:
            return self._fulfillment(parse_fulfillment(body), topic == "fulfillments/create", received_at,
                                     event_source_id)
        if topic in shopify_products.PRODUCT_TOPICS:
            return shopify_products.translate_product(topic, body, received_at, self.currency, event_source_id)
        record_type = ORDER_TOPICS.get(topic)
        if record_type is None:
            return []
        order = parse_order(body)
        order_id = str(order.id)
        common: dict[str, Any] = dict(order_id=order_id, correlation=f"shopify:order:{order_id}")
        with representing(f"order {order_id}"):
            record = self._record(record_type, order, received_at, event_source_id, common)
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
            # facts for the review rules (ip velocity, gateway)
            client_ip=order.browser_ip or None,
            payment_gateway=order.payment_gateway_names[0] if order.payment_gateway_names else None,
        )
        if record_type == "OrderPlaced":
            return OrderPlaced(meta=meta(created, order.created_at), placed_at=created, **body)
        updated = parse_time(order.updated_at or order.created_at, "updated_at")
        return OrderUpdated(meta=meta(updated, order.updated_at or order.created_at), updated_at=updated, **body)

    # ------------------------------------------------------------------------ refunds

    def _refund(self, refund: ShopifyRefund, received_at: datetime, event_source_id: str | None) -> list[Outgoing]:
        order_id, refund_id = str(refund.order_id), str(refund.id)
        counted = [t for t in refund.transactions
                   if t.kind.lower() == REFUND_KIND and (t.status or "").lower() == REFUND_SUCCESS]
        with representing(f"refund {refund_id}"):  # a quantity beyond an Avro int is the sender's error
            lines = [RefundLine(sku=rli.line_item.canonical_sku(), quantity=rli.quantity)
                     for rli in refund.refund_line_items]
        if not counted and not lines:
            return []  # no money and no items: nothing a consumer could act on
        currencies = {t.currency.upper() for t in counted if t.currency}
        if len(currencies) > 1:
            raise PayloadError(f"refund {refund_id}: successful transactions in several currencies: "
                               f"{', '.join(sorted(currencies))}")
        if any(not t.currency for t in counted):
            raise PayloadError(f"refund {refund_id}: transactions.currency is required on every "
                               "successful refund transaction")
        currency = currencies.pop() if currencies else self._fallback_currency(refund)
        if currency is None:
            raise PayloadError(f"refund {refund_id}: no successful transaction and no currency on any "
                               "transaction or refund line; cannot state the refunded amount")
        amount = sum((t.amount for t in counted), Decimal("0"))
        refunded_at = parse_time(refund.processed_at or refund.created_at,
                                 "processed_at" if refund.processed_at else "created_at")
        first = counted[0] if counted else None
        payment_id = str(first.parent_id) if first is not None and first.parent_id is not None \
            else f"order/{order_id}"
        provider = (first.gateway if first is not None and first.gateway else None) or SOURCE
        meta = make_meta(source=SOURCE, event_type="RefundIssued", identity=f"refund:{refund_id}",
                         occurred_at=refunded_at, received_at=received_at, source_event_id=event_source_id,
                         correlation_id=f"shopify:order:{order_id}")
        with representing(f"refund {refund_id}"):
            record = RefundIssued(meta=meta, order_id=order_id, payment_id=payment_id, provider=provider,
                                  refund_id=refund_id, amount=_money(amount, currency), refunded_at=refunded_at,
                                  reason=refund.note or None, lines=lines)
        return [Outgoing(topic=PAYMENTS_TOPIC, key=order_id, record=record)]

    @staticmethod
    def _fallback_currency(refund: ShopifyRefund) -> str | None:
        for t in refund.transactions:
            if t.currency:
                return t.currency.upper()
        for rli in refund.refund_line_items:
            for money_set in (rli.subtotal_set, rli.line_item.price_set):
                code = money_set.currency() if money_set is not None else None
                if code:
                    return code.upper()
        return None

    # ------------------------------------------------------------------- fulfillments

    def _fulfillment(self, f: ShopifyFulfillment, created: bool, received_at: datetime,
                     event_source_id: str | None) -> list[Outgoing]:
        kind = shipment_kind(f, created=created)
        if kind is None:
            return []
        order_id, shipment_id = str(f.order_id), str(f.id)
        stamp, field = (f.created_at, "created_at") if created or not f.updated_at else (f.updated_at, "updated_at")
        when = parse_time(stamp, field)
        event_type = {"created": "ShipmentCreated", "dispatched": "ShipmentDispatched",
                      "delivered": "ShipmentDelivered", "exception": "ShipmentException"}[kind]
        meta = make_meta(source=SOURCE, event_type=event_type,
                         identity=f"fulfillment:{shipment_id}:{f.status}:{f.shipment_status or ''}:{stamp}",
                         occurred_at=when, received_at=received_at, source_event_id=event_source_id,
                         correlation_id=f"shopify:order:{order_id}")
        carrier = f.tracking_company or "unknown"
        tracking = f.tracking_number or next(iter(f.tracking_numbers), None)
        url = f.tracking_url or next(iter(f.tracking_urls), None)
        location = str(f.location_id) if f.location_id is not None else None
        detail = f.shipment_status or f.status
        record: ShipmentCreated | ShipmentDispatched | ShipmentDelivered | ShipmentException
        with representing(f"fulfillment {shipment_id}"):
            lines = [ShipmentLine(sku=li.canonical_sku(), quantity=li.quantity) for li in f.line_items]
            if kind == "created":
                record = ShipmentCreated(meta=meta, order_id=order_id, shipment_id=shipment_id,
                                         carrier=f.tracking_company, tracking_number=tracking, location=location,
                                         lines=lines, created_at=when)
            elif kind == "dispatched":
                record = ShipmentDispatched(meta=meta, order_id=order_id, shipment_id=shipment_id, carrier=carrier,
                                            tracking_number=tracking, tracking_url=url, location=location,
                                            lines=lines, dispatched_at=when, status_detail=detail)
            elif kind == "delivered":
                record = ShipmentDelivered(meta=meta, order_id=order_id, shipment_id=shipment_id, carrier=carrier,
                                           tracking_number=tracking, delivered_at=when, lines=lines,
                                           status_detail=detail)
            else:
                failed = f.status.lower() in FAILED_FULFILLMENT
                code = f"fulfillment_{f.status.lower()}" if failed else (f.shipment_status or "unknown").lower()
                record = ShipmentException(meta=meta, order_id=order_id, shipment_id=shipment_id, carrier=carrier,
                                           tracking_number=tracking, exception_code=code, status_detail=detail,
                                           reported_at=when, lines=lines)
        return [Outgoing(topic=SHIPMENTS_TOPIC, key=order_id, record=record)]
