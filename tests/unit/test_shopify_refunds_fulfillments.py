"""The Shopify connector, pure: `refunds/create` -> RefundIssued, `fulfillments/create|update` -> Shipment*."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shopstream.connectors.base import PayloadError
from shopstream.connectors.shopify import SHIPMENT_STATUS, ShopifyConnector, sign
from shopstream.schemas.models import (
    RefundIssued,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
)

SECRET = "shpss_test_secret"
RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# Shaped like the example Refund Shopify's REST docs show (the `refunds/create` body is the bare
# refund object); kept as raw JSON text because Shopify sends some amounts as JSON numbers.
DOCS_REFUND_JSON = b"""{
  "id": 509562969,
  "order_id": 450789469,
  "created_at": "2024-04-30T12:59:12-04:00",
  "note": "it broke during shipping",
  "user_id": 548380009,
  "processed_at": "2024-04-30T12:59:12-04:00",
  "restock": true,
  "duties": [],
  "total_duties_set": {"shop_money": {"amount": "0.00", "currency_code": "USD"},
                       "presentment_money": {"amount": "0.00", "currency_code": "USD"}},
  "additional_fees": [],
  "total_additional_fees_set": {"shop_money": {"amount": "0.00", "currency_code": "USD"}},
  "admin_graphql_api_id": "gid://shopify/Refund/509562969",
  "refund_line_items": [
    {
      "id": 104689539,
      "quantity": 1,
      "line_item_id": 703073504,
      "location_id": 487838322,
      "restock_type": "legacy_restock",
      "subtotal": 195.66,
      "total_tax": 3.98,
      "subtotal_set": {"shop_money": {"amount": "195.66", "currency_code": "USD"},
                       "presentment_money": {"amount": "195.66", "currency_code": "USD"}},
      "total_tax_set": {"shop_money": {"amount": "3.98", "currency_code": "USD"}},
      "line_item": {
        "id": 703073504, "variant_id": 457924702, "title": "IPod Nano - 8gb", "quantity": 1,
        "sku": "IPOD2008BLACK", "variant_title": "black", "vendor": null, "fulfillment_service": "manual",
        "product_id": 632910392, "requires_shipping": true, "taxable": true, "gift_card": false,
        "name": "IPod Nano - 8gb - black", "price": "199.00",
        "price_set": {"shop_money": {"amount": "199.00", "currency_code": "USD"}},
        "total_discount": "0.00", "fulfillment_status": null
      }
    },
    {
      "id": 709875399,
      "quantity": 2,
      "line_item_id": 466157049,
      "location_id": 487838322,
      "restock_type": "return",
      "subtotal": 0.0,
      "total_tax": 0.0,
      "line_item": {
        "id": 466157049, "variant_id": 39072856, "title": "IPod Nano - 8gb", "quantity": 3,
        "sku": null, "price": "0.00"
      }
    }
  ],
  "transactions": [
    {
      "id": 179259969, "order_id": 450789469, "kind": "refund", "gateway": "bogus", "status": "success",
      "message": null, "created_at": "2024-04-30T12:59:12-04:00", "test": false,
      "authorization": "authorization-key", "location_id": null, "user_id": null, "parent_id": 801038806,
      "processed_at": "2024-04-30T12:59:12-04:00", "device_id": null, "error_code": null, "source_name": "web",
      "receipt": {}, "amount": "199.65", "currency": "USD", "payment_id": "#1001.3",
      "admin_graphql_api_id": "gid://shopify/OrderTransaction/179259969"
    },
    {
      "id": 179259970, "order_id": 450789469, "kind": "refund", "gateway": "bogus", "status": "success",
      "created_at": "2024-04-30T12:59:13-04:00", "parent_id": 801038806, "amount": 0.10, "currency": "USD"
    },
    {
      "id": 179259971, "order_id": 450789469, "kind": "refund", "gateway": "bogus", "status": "failure",
      "created_at": "2024-04-30T12:59:14-04:00", "parent_id": 801038806, "amount": "50.00", "currency": "USD"
    }
  ],
  "order_adjustments": []
}"""

# Shaped like the example Fulfillment Shopify's REST docs show (the body of fulfillments/create|update).
DOCS_FULFILLMENT: dict[str, Any] = {
    "id": 255858046,
    "order_id": 450789469,
    "status": "success",
    "created_at": "2024-05-01T09:00:00-04:00",
    "service": "manual",
    "updated_at": "2024-05-01T09:00:00-04:00",
    "tracking_company": "USPS",
    "shipment_status": None,
    "location_id": 655441491,
    "origin_address": None,
    "email": "bob.norman@mail.example.com",
    "destination": {"first_name": "Bob", "city": "Ottawa", "country_code": "CA"},
    "line_items": [
        {"id": 466157049, "variant_id": 39072856, "title": "IPod Nano - 8gb", "quantity": 1, "sku": "IPOD2008GREEN",
         "variant_title": "green", "vendor": None, "fulfillment_service": "manual", "product_id": 632910392,
         "requires_shipping": True, "taxable": True, "gift_card": False, "name": "IPod Nano - 8gb - green",
         "price": "199.00", "total_discount": "0.00", "fulfillment_status": "fulfilled"},
        {"id": 518995019, "variant_id": 49148385, "title": "IPod Nano - 8gb", "quantity": 2, "sku": "",
         "price": "199.00", "fulfillment_status": "fulfilled"},
    ],
    "tracking_number": "1Z2345",
    "tracking_numbers": ["1Z2345"],
    "tracking_url": "https://tools.usps.com/go/TrackConfirmAction_input?qtc_tLabels1=1Z2345",
    "tracking_urls": ["https://tools.usps.com/go/TrackConfirmAction_input?qtc_tLabels1=1Z2345"],
    "receipt": {"testcase": True, "authorization": "123456"},
    "name": "#1001.1",
    "admin_graphql_api_id": "gid://shopify/Fulfillment/255858046",
}


def headers(topic: str, body: bytes, *, webhook_id: str = "wh-1", event_id: str | None = "evt-1") -> dict[str, str]:
    h = {"Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": sign(SECRET, body),
         "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-Shop-Domain": "example.myshopify.com"}
    if event_id is not None:
        h["X-Shopify-Event-Id"] = event_id
    return h


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def fulfillment(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(DOCS_FULFILLMENT), **changes}


def refund_payload() -> dict[str, Any]:
    return dict(json.loads(DOCS_REFUND_JSON))


@pytest.fixture
def connector() -> ShopifyConnector:
    return ShopifyConnector(SECRET)


def translate_one(connector: ShopifyConnector, topic: str, body: bytes, received: datetime = RECEIVED) -> Any:
    outgoing = connector.translate(headers(topic, body), body, received)
    assert len(outgoing) == 1, outgoing
    return outgoing[0]


# ------------------------------------------------------------------------------------ refunds


def test_refund_from_the_docs_example(connector: ShopifyConnector) -> None:
    out = translate_one(connector, "refunds/create", DOCS_REFUND_JSON)
    assert out.topic == "payments" and out.key == "450789469"
    rec = out.record
    assert type(rec) is RefundIssued
    assert rec.order_id == "450789469" and rec.refund_id == "509562969"
    # Only successful refund transactions count: 199.65 + 0.10 (a JSON number), not the failed 50.00.
    assert rec.amount.amount == Decimal("199.75") and type(rec.amount.amount) is Decimal
    assert str(rec.amount.amount) == "199.75"
    assert rec.amount.currency == "USD"
    assert rec.payment_id == "801038806" and rec.provider == "bogus"
    assert rec.refunded_at == datetime(2024, 4, 30, 16, 59, 12, tzinfo=UTC)
    assert rec.reason == "it broke during shipping"
    # Refunded quantities are the refund lines', not the order lines'; the SKU falls back like orders.
    assert [(ln.sku, ln.quantity, ln.amount) for ln in rec.lines] == [
        ("IPOD2008BLACK", 1, None), ("shopify-variant-39072856", 2, None)]
    meta = rec.meta
    assert meta.event_type == "RefundIssued" and meta.source == "shopify"
    assert meta.occurred_at == rec.refunded_at and meta.recorded_at == RECEIVED
    assert meta.source_event_id == "evt-1" and meta.correlation_id == "shopify:order:450789469"


def test_refund_amounts_are_exact(connector: ShopifyConnector) -> None:
    payload = refund_payload()
    payload["transactions"] = [
        {"id": i, "kind": "refund", "status": "success", "amount": amount, "currency": "eur",
         "gateway": "shopify_payments", "parent_id": 77}
        for i, amount in enumerate(["0.10", "0.20", "19.90", "0.1"])
    ]
    rec = translate_one(connector, "refunds/create", body_of(payload)).record
    # With floats 0.1 + 0.2 + 19.9 + 0.1 is 20.300000000000001.
    assert rec.amount.amount == Decimal("20.30") and str(rec.amount.amount) == "20.30"
    assert rec.amount.currency == "EUR" and rec.provider == "shopify_payments" and rec.payment_id == "77"


def test_refund_without_money_keeps_its_lines_with_amount_zero(connector: ShopifyConnector) -> None:
    """A restock-only refund (or one whose gateway refund is still pending) still reports the items."""
    payload = refund_payload()
    payload["transactions"] = [{"id": 1, "kind": "refund", "status": "pending", "amount": "199.00", "currency": "CAD"}]
    rec = translate_one(connector, "refunds/create", body_of(payload)).record
    assert rec.amount.amount == Decimal("0") and rec.amount.currency == "CAD"
    assert [ln.quantity for ln in rec.lines] == [1, 2]
    assert rec.payment_id == "order/450789469" and rec.provider == "shopify"

    payload["transactions"] = []  # no transactions at all: the currency comes from the lines' shop money
    rec = translate_one(connector, "refunds/create", body_of(payload)).record
    assert rec.amount.amount == Decimal("0") and rec.amount.currency == "USD"


def test_refund_without_money_or_lines_is_acknowledged_without_an_event(connector: ShopifyConnector) -> None:
    payload = refund_payload()
    payload["transactions"], payload["refund_line_items"] = [], []
    body = body_of(payload)
    assert connector.translate(headers("refunds/create", body), body, RECEIVED) == []


def test_refund_event_id_is_deterministic(connector: ShopifyConnector) -> None:
    first = translate_one(connector, "refunds/create", DOCS_REFUND_JSON).record
    # A redelivery a day later, with another event id header: still the same event.
    body = DOCS_REFUND_JSON
    (again,) = connector.translate(headers("refunds/create", body, event_id="evt-2"), body,
                                   datetime(2024, 5, 2, 8, 0, tzinfo=UTC))
    assert again.record.meta.event_id == first.meta.event_id  # type: ignore[attr-defined]
    other = refund_payload()
    other["id"] = 509562970
    assert translate_one(connector, "refunds/create", body_of(other)).record.meta.event_id != first.meta.event_id


def _refund_with(change: Any) -> bytes:
    payload = refund_payload()
    change(payload)
    return body_of(payload)


def _set_tx(field: str, value: Any) -> Any:
    def change(p: dict[str, Any]) -> None:
        p["transactions"][0][field] = value
    return change


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "body is not JSON"),
    (b"[]", "not a JSON object"),
    (_refund_with(lambda p: p.pop("order_id")), "order_id: Field required"),
    (_refund_with(lambda p: p.pop("id")), "id: Field required"),
    (_refund_with(_set_tx("amount", "12,50")), "not a decimal amount"),
    (_refund_with(_set_tx("amount", "-1.00")), "must not be negative"),
    (_refund_with(_set_tx("amount", "Infinity")), "not a finite amount"),
    (_refund_with(_set_tx("currency", "EURO")), "transactions.0.currency"),
    (_refund_with(_set_tx("currency", "EUR")), "several currencies: EUR, USD"),
    (_refund_with(_set_tx("currency", None)), "transactions.currency is required"),
    (_refund_with(_set_tx("amount", "1.23456")), "cannot be represented"),
    (_refund_with(lambda p: p["refund_line_items"][0].update(quantity=-1)), "refund_line_items.0.quantity"),
    (_refund_with(lambda p: p["refund_line_items"][0].pop("line_item")), "refund_line_items.0.line_item"),
    (_refund_with(lambda p: p.update(created_at="yesterday", processed_at=None)),
     "created_at: not an ISO-8601 timestamp"),
    (_refund_with(lambda p: p.update(transactions=[], refund_line_items=[
        {"quantity": 1, "line_item": {"id": 1, "sku": "X"}}])), "cannot state the refunded amount"),
])
def test_bad_refund_is_a_payload_error_with_a_readable_reason(connector: ShopifyConnector, body: bytes,
                                                              reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        connector.translate(headers("refunds/create", body), body, RECEIVED)
    assert reason in str(info.value)
    assert "Traceback" not in str(info.value) and len(str(info.value)) < 600


# ------------------------------------------------------------------------------- fulfillments


def test_fulfillment_created_with_success_is_dispatched(connector: ShopifyConnector) -> None:
    out = translate_one(connector, "fulfillments/create", body_of(DOCS_FULFILLMENT))
    assert out.topic == "fulfillment.shipments" and out.key == "450789469"
    rec = out.record
    assert type(rec) is ShipmentDispatched
    assert rec.order_id == "450789469" and rec.shipment_id == "255858046"
    assert rec.carrier == "USPS" and rec.tracking_number == "1Z2345"
    assert rec.tracking_url is not None and rec.tracking_url.endswith("1Z2345")
    assert rec.location == "655441491"
    assert rec.dispatched_at == datetime(2024, 5, 1, 13, 0, tzinfo=UTC) == rec.meta.occurred_at
    assert [(ln.sku, ln.quantity) for ln in rec.lines] == [("IPOD2008GREEN", 1), ("shopify-variant-49148385", 2)]
    assert rec.status_detail == "success"
    assert rec.meta.event_type == "ShipmentDispatched" and rec.meta.correlation_id == "shopify:order:450789469"


@pytest.mark.parametrize("status", ["pending", "open"])
def test_fulfillment_created_not_yet_done_is_created(connector: ShopifyConnector, status: str) -> None:
    payload = fulfillment(status=status, tracking_company=None, tracking_number=None, tracking_numbers=[],
                          tracking_url=None, tracking_urls=[])
    rec = translate_one(connector, "fulfillments/create", body_of(payload)).record
    assert type(rec) is ShipmentCreated
    assert rec.carrier is None and rec.tracking_number is None and rec.location == "655441491"
    assert rec.created_at == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
    assert [ln.quantity for ln in rec.lines] == [1, 2]


def test_fulfillment_created_with_a_printed_label_is_created(connector: ShopifyConnector) -> None:
    rec = translate_one(connector, "fulfillments/create", body_of(fulfillment(shipment_status="label_printed"))).record
    assert type(rec) is ShipmentCreated and rec.carrier == "USPS" and rec.tracking_number == "1Z2345"


@pytest.mark.parametrize(("shipment_status", "kind"), [
    ("in_transit", ShipmentDispatched),
    ("out_for_delivery", ShipmentDispatched),
    ("carrier_picked_up", ShipmentDispatched),
    ("delivered", ShipmentDelivered),
    ("attempted_delivery", ShipmentException),
    ("failure", ShipmentException),
])
def test_fulfillment_update_by_shipment_status(connector: ShopifyConnector, shipment_status: str,
                                               kind: type) -> None:
    payload = fulfillment(shipment_status=shipment_status, updated_at="2024-05-03T15:30:00+02:00")
    out = translate_one(connector, "fulfillments/update", body_of(payload))
    rec = out.record
    assert type(rec) is kind
    assert out.topic == "fulfillment.shipments" and out.key == "450789469"
    assert rec.shipment_id == "255858046" and rec.carrier == "USPS" and rec.tracking_number == "1Z2345"
    when = datetime(2024, 5, 3, 13, 30, tzinfo=UTC)
    assert rec.meta.occurred_at == when and rec.status_detail == shipment_status
    if isinstance(rec, ShipmentDelivered):
        assert rec.delivered_at == when
    elif isinstance(rec, ShipmentException):
        assert rec.reported_at == when and rec.exception_code == shipment_status
    else:
        assert rec.dispatched_at == when


@pytest.mark.parametrize("shipment_status", [None, "confirmed", "label_printed", "label_purchased",
                                             "some_new_status"])
def test_fulfillment_update_without_carrier_progress_publishes_nothing(connector: ShopifyConnector,
                                                                       shipment_status: str | None) -> None:
    body = body_of(fulfillment(shipment_status=shipment_status, updated_at="2024-05-03T15:30:00+02:00"))
    assert connector.translate(headers("fulfillments/update", body), body, RECEIVED) == []


@pytest.mark.parametrize("topic", ["fulfillments/create", "fulfillments/update"])
@pytest.mark.parametrize("status", ["cancelled", "error", "failure"])
def test_failed_or_cancelled_fulfillment_is_an_exception(connector: ShopifyConnector, topic: str,
                                                         status: str) -> None:
    rec = translate_one(connector, topic, body_of(fulfillment(status=status, shipment_status="in_transit"))).record
    assert type(rec) is ShipmentException
    assert rec.exception_code == f"fulfillment_{status}"


def test_missing_carrier_and_plural_tracking_fields(connector: ShopifyConnector) -> None:
    payload = fulfillment(tracking_company=None, tracking_number=None, tracking_url=None,
                          tracking_numbers=["JJD0001", "JJD0002"], tracking_urls=None, location_id=None,
                          shipment_status="delivered")
    rec = translate_one(connector, "fulfillments/update", body_of(payload)).record
    assert type(rec) is ShipmentDelivered
    assert rec.carrier == "unknown" and rec.tracking_number == "JJD0001"


def test_shipment_status_table_names_only_known_events() -> None:
    assert set(SHIPMENT_STATUS.values()) <= {None, "created", "dispatched", "delivered", "exception"}
    assert SHIPMENT_STATUS["delivered"] == "delivered" and SHIPMENT_STATUS["failure"] == "exception"


def test_fulfillment_event_ids_are_deterministic_and_change_with_status_and_time(
        connector: ShopifyConnector) -> None:
    def event_id(topic: str, payload: dict[str, Any], received: datetime = RECEIVED) -> str:
        return str(translate_one(connector, topic, body_of(payload), received).record.meta.event_id)

    transit = fulfillment(shipment_status="in_transit", updated_at="2024-05-02T10:00:00+00:00")
    base = event_id("fulfillments/update", transit)
    assert event_id("fulfillments/update", transit, datetime(2024, 5, 9, tzinfo=UTC)) == base  # a retry
    assert event_id("fulfillments/update", {**transit, "shipment_status": "out_for_delivery"}) != base
    assert event_id("fulfillments/update", {**transit, "updated_at": "2024-05-02T10:00:01+00:00"}) != base
    assert event_id("fulfillments/update", {**transit, "id": 255858047}) != base
    assert event_id("fulfillments/create", DOCS_FULFILLMENT) != base


def _fulfillment_with(**changes: Any) -> bytes:
    return body_of(fulfillment(**changes))


@pytest.mark.parametrize(("body", "reason"), [
    (b"\xff\xfe", "body is not JSON"),
    (b'"x"', "not a JSON object"),
    (body_of({k: v for k, v in DOCS_FULFILLMENT.items() if k != "order_id"}), "order_id: Field required"),
    (body_of({k: v for k, v in DOCS_FULFILLMENT.items() if k != "status"}), "status: Field required"),
    (_fulfillment_with(line_items=[{"id": 1, "sku": "A", "quantity": -2}]), "line_items.0.quantity"),
    (_fulfillment_with(line_items=[{"id": 1, "sku": "A"}]), "line_items.0.quantity: Field required"),
    (_fulfillment_with(tracking_numbers="1Z2345"), "tracking_numbers"),
    (_fulfillment_with(created_at="2024-05-01T09:00:00"), "created_at: timestamp without a UTC offset"),
])
def test_bad_fulfillment_is_a_payload_error_with_a_readable_reason(connector: ShopifyConnector, body: bytes,
                                                                   reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        connector.translate(headers("fulfillments/create", body), body, RECEIVED)
    assert reason in str(info.value)
    assert "Traceback" not in str(info.value) and len(str(info.value)) < 600


def test_bad_updated_at_on_update_is_a_payload_error(connector: ShopifyConnector) -> None:
    body = _fulfillment_with(shipment_status="delivered", updated_at="soon")
    with pytest.raises(PayloadError, match="updated_at: not an ISO-8601 timestamp"):
        connector.translate(headers("fulfillments/update", body), body, RECEIVED)
