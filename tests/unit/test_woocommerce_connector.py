"""The WooCommerce connector, pure: signature, creation ping, delivery id, translation of order webhooks."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shopstream.connectors.base import PayloadError
from shopstream.connectors.woocommerce import STATUSES, WooCommerceConnector, is_ping, sign
from shopstream.processors.orders.mapping import load_mapping
from shopstream.schemas.models import OrderCancelled, OrderPlaced, OrderUpdated

SECRET = "wc-webhook-secret"
RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# Shaped like the Order resource in the WooCommerce REST API v3 docs (trimmed), as the raw JSON text
# the shop sends. Note line `price` is a JSON number there, the totals are decimal strings.
DOCS_ORDER_JSON = b"""{
  "id": 727,
  "parent_id": 0,
  "number": "727",
  "order_key": "wc_order_58d2d042d1d",
  "created_via": "rest-api",
  "version": "3.0.0",
  "status": "processing",
  "currency": "USD",
  "date_created": "2017-03-22T16:28:02",
  "date_created_gmt": "2017-03-22T19:28:02",
  "date_modified": "2017-03-22T16:28:08",
  "date_modified_gmt": "2017-03-22T19:28:08",
  "discount_total": "0.00",
  "discount_tax": "0.00",
  "shipping_total": "10.00",
  "shipping_tax": "0.00",
  "cart_tax": "1.35",
  "total": "29.35",
  "total_tax": "1.35",
  "prices_include_tax": false,
  "customer_id": 0,
  "customer_ip_address": "",
  "customer_user_agent": "",
  "customer_note": "",
  "billing": {
    "first_name": "John", "last_name": "Doe", "company": "", "address_1": "969 Market", "address_2": "",
    "city": "San Francisco", "state": "CA", "postcode": "94103", "country": "US",
    "email": "john.doe@example.com", "phone": "(555) 555-5555"
  },
  "shipping": {
    "first_name": "John", "last_name": "Doe", "company": "", "address_1": "969 Market", "address_2": "",
    "city": "San Francisco", "state": "CA", "postcode": "94103", "country": "US"
  },
  "payment_method": "bacs",
  "payment_method_title": "Direct Bank Transfer",
  "transaction_id": "",
  "date_paid": "2017-03-22T16:28:08",
  "date_paid_gmt": "2017-03-22T19:28:08",
  "date_completed": null,
  "date_completed_gmt": null,
  "cart_hash": "",
  "meta_data": [{"id": 13106, "key": "_download_permissions_granted", "value": "yes"}],
  "line_items": [
    {
      "id": 315, "name": "Woo Single #1", "product_id": 93, "variation_id": 0, "quantity": 2,
      "tax_class": "", "subtotal": "6.00", "subtotal_tax": "0.45", "total": "6.00", "total_tax": "0.45",
      "taxes": [{"id": 75, "total": "0.45", "subtotal": "0.45"}], "meta_data": [], "sku": "", "price": 3
    },
    {
      "id": 316, "name": "Ship Your Idea &ndash; Color: Black, Size: M Test", "product_id": 22,
      "variation_id": 23, "quantity": 1, "tax_class": "", "subtotal": "12.00", "subtotal_tax": "0.90",
      "total": "12.00", "total_tax": "0.90", "taxes": [{"id": 75, "total": "0.9", "subtotal": "0.9"}],
      "meta_data": [{"id": 2095, "key": "pa_color", "value": "black"}], "sku": "Bar3", "price": 12
    }
  ],
  "tax_lines": [{"id": 318, "rate_code": "US-CA-STATE TAX", "rate_id": 75, "label": "State Tax",
                 "compound": false, "tax_total": "1.35", "shipping_tax_total": "0.00", "meta_data": []}],
  "shipping_lines": [{"id": 317, "method_title": "Flat Rate", "method_id": "flat_rate", "total": "10.00",
                      "total_tax": "0.00", "taxes": [], "meta_data": []}],
  "fee_lines": [],
  "coupon_lines": [],
  "refunds": []
}"""


def headers(topic: str, body: bytes, *, delivery_id: str = "2b1f0d6a4f6f4c0c8d9b7f1e3a5c9e21",
            secret: str = SECRET) -> dict[str, str]:
    resource, _, evt = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/8.8.2 Hookshot (WordPress/6.5.2)",
        "X-WC-Webhook-Source": "https://shop.example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": evt,
        "X-WC-Webhook-Signature": sign(secret, body),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }


def order(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(DOCS_ORDER_JSON)
    payload.update(changes)
    return payload


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


PING_HEADERS = {"Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "WooCommerce/8.8.2 Hookshot (WordPress/6.5.2)"}


@pytest.fixture
def connector() -> WooCommerceConnector:
    return WooCommerceConnector(SECRET)


# ---------------------------------------------------------------------------------- signature


def test_sign_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"id": 1}'
    assert sign(SECRET, body) == base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def test_valid_signature_is_accepted(connector: WooCommerceConnector) -> None:
    assert connector.verify(headers("order.created", DOCS_ORDER_JSON), DOCS_ORDER_JSON)


def test_wrong_secret_tampered_body_and_hex_are_rejected(connector: WooCommerceConnector) -> None:
    body = DOCS_ORDER_JSON
    assert not connector.verify(headers("order.created", body, secret="another"), body)
    tampered = body.replace(b'"29.35"', b'"2.935"', 1)
    assert tampered != body
    assert not connector.verify(headers("order.created", body), tampered)
    h = headers("order.created", body)
    h["X-WC-Webhook-Signature"] = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert not connector.verify(h, body)


def test_missing_signature_on_a_delivery_is_rejected(connector: WooCommerceConnector) -> None:
    h = headers("order.created", DOCS_ORDER_JSON)
    del h["X-WC-Webhook-Signature"]
    assert not connector.verify(h, DOCS_ORDER_JSON)
    h["X-WC-Webhook-Signature"] = ""
    assert not connector.verify(h, DOCS_ORDER_JSON)


def test_empty_secret_rejects_every_delivery() -> None:
    unconfigured = WooCommerceConnector("")
    body = DOCS_ORDER_JSON
    assert not unconfigured.verify(headers("order.created", body, secret=""), body)
    assert not unconfigured.verify(headers("order.created", body), body)


def test_header_names_are_case_insensitive(connector: WooCommerceConnector) -> None:
    body = DOCS_ORDER_JSON
    for h in ({k.lower(): v for k, v in headers("order.created", body).items()},
              {k.upper(): v for k, v in headers("order.created", body).items()}):
        assert connector.verify(h, body)
        assert connector.delivery_id(h) == "2b1f0d6a4f6f4c0c8d9b7f1e3a5c9e21"
        (out,) = connector.translate(h, body, RECEIVED)
        assert isinstance(out.record, OrderPlaced)


def test_delivery_id(connector: WooCommerceConnector) -> None:
    assert connector.delivery_id(headers("order.created", b"{}", delivery_id="d-7")) == "d-7"
    assert connector.delivery_id({"X-WC-Webhook-Topic": "order.created"}) is None
    assert connector.delivery_id({"X-WC-Webhook-Delivery-ID": ""}) is None


# ---------------------------------------------------------------------------------- the ping


def test_creation_ping_is_accepted_and_publishes_nothing(connector: WooCommerceConnector) -> None:
    body = b"webhook_id=12"
    assert is_ping(PING_HEADERS, body)
    assert connector.verify(PING_HEADERS, body)
    assert connector.delivery_id(PING_HEADERS) is None  # never claimed in the dedupe store
    assert connector.translate(PING_HEADERS, body, RECEIVED) == []


@pytest.mark.parametrize(("extra", "body"), [
    ({}, DOCS_ORDER_JSON),                                    # an order without signature
    ({}, b"webhook_id=12&status=completed"),                  # more than a ping
    ({}, b"webhook_id=abc"),
    ({}, b"webhook_id="),
    ({}, b""),
    ({"X-WC-Webhook-Topic": "order.created"}, b"webhook_id=12"),  # names a topic: must be signed
])
def test_unsigned_requests_other_than_the_ping_are_rejected(connector: WooCommerceConnector,
                                                            extra: dict[str, str], body: bytes) -> None:
    h = dict(PING_HEADERS, **extra)
    assert not connector.verify(h, body)


def test_unsigned_non_ping_never_translates(connector: WooCommerceConnector) -> None:
    # Even a caller that skipped verify() cannot get an unsigned order published.
    h = headers("order.created", DOCS_ORDER_JSON)
    del h["X-WC-Webhook-Signature"]
    with pytest.raises(PayloadError, match="unsigned"):
        connector.translate(h, DOCS_ORDER_JSON, RECEIVED)


def test_a_signed_ping_body_is_checked_like_any_delivery(connector: WooCommerceConnector) -> None:
    body = b"webhook_id=12"
    h = dict(PING_HEADERS, **{"X-WC-Webhook-Signature": sign("wrong", body)})
    assert not connector.verify(h, body)


# -------------------------------------------------------------------------------- translation


def test_order_created_from_the_docs_example(connector: WooCommerceConnector) -> None:
    outgoing = connector.translate(headers("order.created", DOCS_ORDER_JSON), DOCS_ORDER_JSON, RECEIVED)
    assert len(outgoing) == 1
    out = outgoing[0]
    assert out.topic == "shop.orders" and out.key == "727"
    rec = out.record
    assert type(rec) is OrderPlaced
    assert rec.order_id == "727" and rec.order_number == "727"
    assert rec.placed_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)  # date_created_gmt read as UTC
    assert rec.currency == "USD"
    assert rec.total.amount == Decimal("29.35") and type(rec.total.amount) is Decimal
    assert rec.total_tax is not None and rec.total_tax.amount == Decimal("1.35")
    assert rec.shipping is not None and rec.shipping.amount == Decimal("10.00")
    assert rec.subtotal is not None and rec.subtotal.amount == Decimal("18.00")
    assert [(ln.line_id, ln.sku, ln.quantity, ln.unit_price.amount, ln.title) for ln in rec.lines] == [
        ("315", "woocommerce-product-93", 2, Decimal("3"), "Woo Single #1"),  # sku "", no variation
        ("316", "Bar3", 1, Decimal("12"), "Ship Your Idea &ndash; Color: Black, Size: M Test"),
    ]
    assert {ln.unit_price.currency for ln in rec.lines} == {"USD"}
    assert rec.customer is not None
    assert rec.customer.customer_id is None and rec.customer.email == "john.doe@example.com"  # a guest
    assert rec.billing_address is not None and rec.billing_address.name == "John Doe"
    assert rec.shipping_address is not None
    assert (rec.shipping_address.line1, rec.shipping_address.city, rec.shipping_address.postal_code,
            rec.shipping_address.region, rec.shipping_address.country_code) == (
        "969 Market", "San Francisco", "94103", "CA", "US")
    assert rec.shipping_address.line2 is None  # "" is no value
    assert rec.source_financial_status == "processing" and rec.source_fulfillment_status is None
    meta = rec.meta
    assert meta.event_type == "OrderPlaced" and meta.source == "woocommerce"
    assert meta.occurred_at == rec.placed_at and meta.recorded_at == RECEIVED
    assert meta.source_event_id == "2b1f0d6a4f6f4c0c8d9b7f1e3a5c9e21"
    assert meta.correlation_id == "woocommerce:order:727"


def test_money_stays_exact_decimal(connector: WooCommerceConnector) -> None:
    payload = order(total="66.10", shipping_total="4.90")
    payload["line_items"] = [
        {"id": 1, "name": "T", "product_id": 5, "variation_id": 0, "quantity": 3, "subtotal": "59.70",
         "total": "59.70", "sku": "TSHIRT", "price": 19.9},
        {"id": 2, "name": "M", "product_id": 6, "variation_id": 0, "quantity": 1, "subtotal": "0.10",
         "total": "0.10", "sku": "MUG", "price": 0.1},
        {"id": 3, "name": "P", "product_id": 7, "variation_id": 0, "quantity": 7, "subtotal": "1.40",
         "total": "1.40", "sku": "PEN", "price": 0.2},
    ]
    body = body_of(payload)
    (out,) = connector.translate(headers("order.created", body), body, RECEIVED)
    rec = out.record
    prices = [ln.unit_price.amount for ln in rec.lines]
    assert prices == [Decimal("19.9"), Decimal("0.1"), Decimal("0.2")]
    assert all(type(p) is Decimal for p in prices)
    assert str(prices[0]) == "19.9"  # JSON number read as Decimal, never through a float
    assert rec.subtotal.amount == Decimal("61.20")
    assert sum((ln.unit_price.amount * ln.quantity for ln in rec.lines), Decimal("0")) == rec.subtotal.amount
    assert rec.total.amount == Decimal("66.10")


def test_unit_price_with_many_decimals_uses_the_line_subtotal(connector: WooCommerceConnector) -> None:
    payload = order()
    payload["line_items"] = [
        # 10.00 / 4: WooCommerce sends 2.5 — fine as is
        {"id": 1, "product_id": 5, "quantity": 4, "subtotal": "10.00", "sku": "A", "price": 2.5},
        # 20.00 / 3 = 6.666...: not exact at 4 places -> rounded half-even
        {"id": 2, "product_id": 6, "quantity": 3, "subtotal": "20.00", "sku": "B", "price": 6.666666666666667},
        # 1.0002 / 2 = 0.5001 exactly, price sent with float noise
        {"id": 3, "product_id": 7, "quantity": 2, "subtotal": "1.0002", "sku": "C", "price": 0.50010000000001},
    ]
    body = body_of(payload)
    (out,) = connector.translate(headers("order.created", body), body, RECEIVED)
    assert [ln.unit_price.amount for ln in out.record.lines] == [Decimal("2.5"), Decimal("6.6667"),
                                                                 Decimal("0.5001")]


def test_skuless_lines_get_stable_keys(connector: WooCommerceConnector) -> None:
    payload = order()
    payload["line_items"] = [
        {"id": 1, "product_id": 5, "variation_id": 77, "quantity": 1, "sku": "", "price": "1.00"},
        {"id": 2, "product_id": 6, "variation_id": 0, "quantity": 1, "sku": None, "price": "1.00"},
        {"id": 3, "product_id": 0, "quantity": 1, "sku": "  ", "price": "1.00"},
        {"id": 4, "product_id": 8, "quantity": 1, "sku": " SKU-4 ", "price": "1.00"},
    ]
    body = body_of(payload)
    (out,) = connector.translate(headers("order.created", body), body, RECEIVED)
    assert [ln.sku for ln in out.record.lines] == ["woocommerce-variation-77", "woocommerce-product-6",
                                                  "woocommerce-line-3", "SKU-4"]


def test_order_updated(connector: WooCommerceConnector) -> None:
    body = body_of(order(status="completed", date_modified_gmt="2017-03-23T08:00:00",
                         date_completed_gmt="2017-03-23T08:00:00"))
    (out,) = connector.translate(headers("order.updated", body), body, RECEIVED)
    rec = out.record
    assert type(rec) is OrderUpdated
    assert out.topic == "shop.orders" and out.key == "727"
    assert rec.updated_at == datetime(2017, 3, 23, 8, 0, tzinfo=UTC)
    assert rec.meta.event_type == "OrderUpdated" and rec.meta.occurred_at == rec.updated_at
    assert rec.source_financial_status == "completed" and rec.source_fulfillment_status == "completed"


def test_order_updated_to_cancelled_is_order_cancelled(connector: WooCommerceConnector) -> None:
    body = body_of(order(status="cancelled", date_modified_gmt="2017-03-22T20:00:00"))
    (out,) = connector.translate(headers("order.updated", body), body, RECEIVED)
    rec = out.record
    assert type(rec) is OrderCancelled
    assert out.topic == "shop.orders" and out.key == "727"
    assert rec.cancelled_at == datetime(2017, 3, 22, 20, 0, tzinfo=UTC)
    assert rec.lines == [] and rec.source_financial_status is None
    assert rec.meta.event_type == "OrderCancelled"


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_is_carried_and_mapped(connector: WooCommerceConnector, status: str) -> None:
    mapping = load_mapping("woocommerce")
    for topic in ("order.created", "order.updated"):
        body = body_of(order(status=status))
        (out,) = connector.translate(headers(topic, body), body, RECEIVED)
        rec = out.record
        if topic == "order.updated" and status == "cancelled":
            assert type(rec) is OrderCancelled
            continue
        assert rec.source_financial_status == status
        assert mapping.payment_entry(rec.source_financial_status) is not None
        fulfillment = rec.source_fulfillment_status
        assert fulfillment is None or mapping.fulfillment_entry(fulfillment) is not None


def test_mapping_file_loads_and_means_what_the_docs_say() -> None:
    mapping = load_mapping("woocommerce")
    assert mapping.source == "woocommerce"
    payment = {s: e.canonical for s in STATUSES if (e := mapping.payment_entry(s)) is not None}
    assert payment == {"pending": "pending", "on-hold": "pending", "failed": "failed", "processing": "paid",
                       "completed": "paid", "refunded": "refunded", "cancelled": "voided"}
    entry = mapping.fulfillment_entry("completed")
    assert entry is not None and entry.canonical == "shipped"
    assert mapping.fulfillment_entry(None) is None  # no information: the dimension keeps its value


def test_event_ids_are_deterministic_per_change(connector: WooCommerceConnector) -> None:
    def event_id(topic: str, payload: dict[str, Any], delivery: str = "d1") -> str:
        body = body_of(payload)
        (out,) = connector.translate(headers(topic, body, delivery_id=delivery), body, RECEIVED)
        return str(out.record.meta.event_id)  # type: ignore[attr-defined]

    base = order()
    assert event_id("order.created", base) == event_id("order.created", base, delivery="d2")  # a redelivery
    assert event_id("order.updated", base) != event_id("order.created", base)
    later = order(date_modified_gmt="2017-03-22T19:30:00")
    assert event_id("order.updated", later) != event_id("order.updated", base)
    assert event_id("order.created", order(id=728)) != event_id("order.created", base)


@pytest.mark.parametrize("topic", ["order.deleted", "order.restored", "coupon.created",
                                   "customer.created", "action.woocommerce_order_status_changed"])
def test_unknown_topic_is_acknowledged_with_nothing_to_publish(connector: WooCommerceConnector,
                                                               topic: str) -> None:
    body = b'{"id": 1}'
    assert connector.translate(headers(topic, body), body, RECEIVED) == []


def test_missing_topic_header_on_a_signed_request_is_a_payload_error(connector: WooCommerceConnector) -> None:
    h = headers("order.created", DOCS_ORDER_JSON)
    del h["X-WC-Webhook-Topic"]
    with pytest.raises(PayloadError, match="X-WC-Webhook-Topic"):
        connector.translate(h, DOCS_ORDER_JSON, RECEIVED)


def _mutated(change: Any) -> bytes:
    payload = copy.deepcopy(order())
    change(payload)
    return body_of(payload)


def _set_line(field: str, value: Any) -> Any:
    def change(p: dict[str, Any]) -> None:
        p["line_items"][0][field] = value
    return change


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "body is not JSON"),
    (b"\xff\xfe\x00garbage", "body is not JSON"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b"webhook_id=12", "body is not JSON"),  # a signed form body on an order topic
    (_mutated(lambda p: p.pop("total")), "total: Field required"),
    (_mutated(lambda p: p.update(total="12,50")), "not a decimal amount"),
    (_mutated(lambda p: p.update(total="NaN")), "not a finite amount"),
    (_mutated(lambda p: p.update(total="")), "total"),
    (_mutated(_set_line("quantity", -1)), "line_items.0.quantity"),
    (_mutated(_set_line("price", "abc")), "line_items.0.price"),
    (_mutated(_set_line("price", None)), "line_items.0.price"),
    (_mutated(lambda p: p.update(currency="EURO")), "currency"),
    (_mutated(lambda p: p.pop("line_items")), "line_items: Field required"),
    (_mutated(lambda p: p.pop("id")), "id: Field required"),
    (_mutated(lambda p: p.update(status="")), "status"),
    (_mutated(lambda p: p.pop("date_created_gmt")), "date_created_gmt: Field required"),
    (_mutated(lambda p: p.update(date_created_gmt="yesterday")), "date_created_gmt: not an ISO-8601 timestamp"),
    (_mutated(lambda p: p.update(total="123456789012345.12")), "cannot be represented"),
])
def test_bad_payload_is_a_payload_error_with_a_readable_reason(connector: WooCommerceConnector, body: bytes,
                                                               reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        connector.translate(headers("order.created", body), body, RECEIVED)
    message = str(info.value)
    assert reason in message
    assert "Traceback" not in message and len(message) < 600
