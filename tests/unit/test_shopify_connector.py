"""The Shopify connector, pure: signature check, delivery id, and translation of order webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shopstream.connectors.base import PayloadError
from shopstream.connectors.shopify import ShopifyConnector, sign
from shopstream.dev.shopify_samples import cancelled, shopify_order
from shopstream.schemas.models import OrderCancelled, OrderPlaced, OrderUpdated

SECRET = "shpss_test_secret"
RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# Shaped like the example body Shopify's docs show for the orders/create webhook (trimmed to a
# representative subset, kept as the raw JSON text the shop sends).
DOCS_ORDER_JSON = b"""{
  "id": 820982911946154508,
  "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
  "app_id": null,
  "browser_ip": null,
  "buyer_accepts_marketing": true,
  "cancel_reason": "customer",
  "cancelled_at": "2021-12-31T19:00:00-05:00",
  "cart_token": null,
  "checkout_id": null,
  "closed_at": null,
  "confirmed": false,
  "contact_email": "jon@example.com",
  "created_at": "2021-12-31T19:00:00-05:00",
  "currency": "USD",
  "current_subtotal_price": "398.00",
  "current_total_price": "403.00",
  "customer_locale": "en",
  "email": "jon@example.com",
  "financial_status": "voided",
  "fulfillment_status": "pending",
  "landing_site": null,
  "name": "#9999",
  "note": null,
  "number": 234,
  "order_number": 1234,
  "payment_gateway_names": ["visa", "bogus"],
  "phone": null,
  "presentment_currency": "USD",
  "processed_at": "2021-12-31T19:00:00-05:00",
  "subtotal_price": "388.00",
  "tags": "tag1, tag2",
  "taxes_included": false,
  "test": true,
  "total_discounts": "20.00",
  "total_line_items_price": "398.00",
  "total_price": "403.00",
  "total_shipping_price_set": {
    "shop_money": {"amount": "10.00", "currency_code": "USD"},
    "presentment_money": {"amount": "10.00", "currency_code": "USD"}
  },
  "total_tax": "0.00",
  "total_weight": 0,
  "updated_at": "2021-12-31T19:00:00-05:00",
  "user_id": null,
  "billing_address": {
    "first_name": "Steve", "address1": "123 Shipping Street", "phone": "555-555-SHIP", "city": "Shippington",
    "zip": "40003", "province": "Kentucky", "country": "United States", "last_name": "Shipper",
    "address2": null, "company": "Shipping Company", "latitude": null, "longitude": null,
    "name": "Steve Shipper", "country_code": "US", "province_code": "KY"
  },
  "customer": {
    "id": 115310627314723954, "email": "john@example.com", "accepts_marketing": false,
    "created_at": null, "updated_at": null, "first_name": "John", "last_name": "Smith",
    "state": "disabled", "note": null, "verified_email": true, "tax_exempt": false,
    "currency": "USD", "orders_count": 0
  },
  "discount_applications": [],
  "fulfillments": [],
  "line_items": [
    {
      "id": 866550311766439020, "admin_graphql_api_id": "gid://shopify/LineItem/866550311766439020",
      "fulfillable_quantity": 1, "fulfillment_service": "manual", "fulfillment_status": null,
      "gift_card": false, "grams": 567, "name": "IPod Nano - 8GB", "price": "199.00",
      "price_set": {"shop_money": {"amount": "199.00", "currency_code": "USD"}},
      "product_exists": true, "product_id": 632910392, "quantity": 1, "requires_shipping": true,
      "sku": "IPOD2008PINK", "taxable": true, "title": "IPod Nano - 8GB", "total_discount": "0.00",
      "variant_id": 808950810, "variant_title": null, "vendor": null, "tax_lines": [],
      "discount_allocations": []
    },
    {
      "id": 141249953214522974, "admin_graphql_api_id": "gid://shopify/LineItem/141249953214522974",
      "fulfillable_quantity": 1, "fulfillment_service": "manual", "fulfillment_status": null,
      "gift_card": false, "grams": 567, "name": "IPod Nano - 8GB", "price": "199.00",
      "product_exists": true, "product_id": 632910392, "quantity": 1, "requires_shipping": true,
      "sku": null, "taxable": true, "title": "IPod Nano - 8GB", "total_discount": "0.00",
      "variant_id": 808950810, "variant_title": null, "vendor": null, "tax_lines": []
    },
    {
      "id": 141249953214522975, "fulfillable_quantity": 1, "gift_card": true, "grams": 0,
      "name": "Gift card", "price": "0.00", "quantity": 1, "requires_shipping": false,
      "sku": "", "taxable": false, "title": "Gift card", "total_discount": "0.00",
      "variant_id": null, "tax_lines": []
    }
  ],
  "shipping_address": {
    "first_name": "Steve", "address1": "123 Shipping Street", "phone": "555-555-SHIP", "city": "Shippington",
    "zip": "40003", "province": "Kentucky", "country": "United States", "last_name": "Shipper",
    "address2": null, "company": "Shipping Company", "latitude": null, "longitude": null,
    "name": "Steve Shipper", "country_code": "US", "province_code": "KY"
  },
  "shipping_lines": [
    {"id": 271878346596884015, "code": null, "price": "10.00", "source": "shopify", "title": "Generic Shipping"}
  ]
}"""


def headers(topic: str, body: bytes, *, webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            event_id: str | None = "evt-1", secret: str = SECRET) -> dict[str, str]:
    h = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Shop-Domain": "example.myshopify.com",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-API-Version": "2024-04",
    }
    if event_id is not None:
        h["X-Shopify-Event-Id"] = event_id
    return h


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


@pytest.fixture
def connector() -> ShopifyConnector:
    return ShopifyConnector(SECRET)


# ---------------------------------------------------------------------------------- signature


def test_sign_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"id": 1}'
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert sign(SECRET, body) == expected


def test_correct_signature_is_accepted(connector: ShopifyConnector) -> None:
    assert connector.verify(headers("orders/create", DOCS_ORDER_JSON), DOCS_ORDER_JSON)


def test_wrong_signature_is_rejected(connector: ShopifyConnector) -> None:
    body = DOCS_ORDER_JSON
    assert not connector.verify(headers("orders/create", body, secret="another-secret"), body)
    # Right secret, but the body was changed after signing (one byte).
    tampered = body.replace(b'"403.00"', b'"4.03"', 1)
    assert tampered != body
    assert not connector.verify(headers("orders/create", body), tampered)
    # Garbage and hex-instead-of-base64 are rejected too.
    h = headers("orders/create", body)
    h["X-Shopify-Hmac-Sha256"] = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert not connector.verify(h, body)


def test_missing_or_empty_signature_is_rejected(connector: ShopifyConnector) -> None:
    h = headers("orders/create", DOCS_ORDER_JSON)
    del h["X-Shopify-Hmac-Sha256"]
    assert not connector.verify(h, DOCS_ORDER_JSON)
    h["X-Shopify-Hmac-Sha256"] = ""
    assert not connector.verify(h, DOCS_ORDER_JSON)


def test_empty_secret_rejects_everything() -> None:
    """An unconfigured secret must not turn into 'HMAC with an empty key', which anyone can compute."""
    unconfigured = ShopifyConnector("")
    body = DOCS_ORDER_JSON
    assert not unconfigured.verify(headers("orders/create", body, secret=""), body)
    assert not unconfigured.verify(headers("orders/create", body), body)


def test_header_names_are_case_insensitive(connector: ShopifyConnector) -> None:
    body = body_of(shopify_order(1001))
    lower = {k.lower(): v for k, v in headers("orders/create", body).items()}
    upper = {k.upper(): v for k, v in headers("orders/create", body).items()}
    for h in (lower, upper):
        assert connector.verify(h, body)
        assert connector.delivery_id(h) == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
        (out,) = connector.translate(h, body, RECEIVED)
        assert isinstance(out.record, OrderPlaced)
        assert out.record.meta.source_event_id == "evt-1"


def test_delivery_id(connector: ShopifyConnector) -> None:
    assert connector.delivery_id(headers("orders/create", b"{}", webhook_id="wh-7")) == "wh-7"
    assert connector.delivery_id({"X-Shopify-Topic": "orders/create"}) is None
    assert connector.delivery_id({"X-Shopify-Webhook-Id": ""}) is None


# -------------------------------------------------------------------------------- translation


def test_orders_create_from_the_docs_example(connector: ShopifyConnector) -> None:
    h = headers("orders/create", DOCS_ORDER_JSON)
    outgoing = connector.translate(h, DOCS_ORDER_JSON, RECEIVED)
    assert len(outgoing) == 1
    out = outgoing[0]
    assert out.topic == "shop.orders"
    assert out.key == "820982911946154508"
    rec = out.record
    assert type(rec) is OrderPlaced
    assert rec.order_id == "820982911946154508"
    assert rec.order_number == "#9999"
    # -05:00 becomes UTC.
    assert rec.placed_at == datetime(2022, 1, 1, 0, 0, tzinfo=UTC)
    assert rec.currency == "USD"
    assert rec.total.amount == Decimal("403.00") and rec.total.currency == "USD"
    assert rec.subtotal is not None and rec.subtotal.amount == Decimal("388.00")
    assert rec.total_tax is not None and rec.total_tax.amount == Decimal("0.00")
    assert rec.shipping is not None and rec.shipping.amount == Decimal("10.00")
    assert [(ln.line_id, ln.sku, ln.quantity, ln.unit_price.amount) for ln in rec.lines] == [
        ("866550311766439020", "IPOD2008PINK", 1, Decimal("199.00")),
        ("141249953214522974", "shopify-variant-808950810", 1, Decimal("199.00")),   # sku null
        ("141249953214522975", "shopify-line-141249953214522975", 1, Decimal("0.00")),  # sku "", no variant
    ]
    assert rec.customer is not None
    assert rec.customer.customer_id == "115310627314723954"
    assert rec.customer.email == "john@example.com" and rec.customer.orders_count == 0
    assert rec.shipping_address is not None
    assert rec.shipping_address.line1 == "123 Shipping Street"
    assert rec.shipping_address.postal_code == "40003" and rec.shipping_address.country_code == "US"
    assert rec.shipping_address.region == "KY"
    assert rec.source_financial_status == "voided" and rec.source_fulfillment_status == "pending"
    assert rec.client_ip is None and rec.payment_gateway == "visa"  # facts for the review rules
    meta = rec.meta
    assert meta.event_type == "OrderPlaced" and meta.source == "shopify"
    assert meta.occurred_at == rec.placed_at
    assert meta.recorded_at == RECEIVED
    assert meta.source_event_id == "evt-1"
    assert meta.correlation_id == "shopify:order:820982911946154508"
    assert meta.causation_id is None


def test_money_stays_exact_decimal(connector: ShopifyConnector) -> None:
    payload = shopify_order(4242, lines=[("TSHIRT-BLK-M", 3, "19.90"), ("MUG", 1, "0.10"), ("PEN", 7, "0.20")])
    body = body_of(payload)
    (out,) = connector.translate(headers("orders/create", body), body, RECEIVED)
    rec = out.record
    assert isinstance(rec, OrderPlaced)
    prices = [ln.unit_price.amount for ln in rec.lines]
    assert prices == [Decimal("19.90"), Decimal("0.10"), Decimal("0.20")]
    assert all(type(p) is Decimal for p in prices)
    assert str(prices[0]) == "19.90"  # not 19.899999999999998578914528479799628257751464843750
    # 3*19.90 + 0.10 + 7*0.20 + 4.90 shipping = 66.10 exactly (with floats it is 66.10000000000001)
    assert rec.total.amount == Decimal("66.10") and type(rec.total.amount) is Decimal
    assert rec.subtotal is not None and rec.subtotal.amount == Decimal("61.20")
    assert sum((ln.unit_price.amount * ln.quantity for ln in rec.lines), Decimal("0")) == rec.subtotal.amount
    assert rec.currency == "EUR" and {ln.unit_price.currency for ln in rec.lines} == {"EUR"}


def test_money_given_as_json_numbers_is_not_rounded_through_float(connector: ShopifyConnector) -> None:
    payload = shopify_order(4243)
    raw = body_of(payload).replace(f'"total_price": "{payload["total_price"]}"'.encode(), b'"total_price": 54.20')
    assert b'"total_price": 54.20' in raw
    (out,) = connector.translate(headers("orders/create", raw), raw, RECEIVED)
    assert out.record.total.amount == Decimal("54.2")  # type: ignore[attr-defined]


def test_orders_updated(connector: ShopifyConnector) -> None:
    payload = shopify_order(1002, financial_status="pending",
                            created_at=datetime(2024, 4, 30, 10, 0, tzinfo=UTC))
    payload["updated_at"] = "2024-04-30T12:30:00+02:00"
    body = body_of(payload)
    (out,) = connector.translate(headers("orders/updated", body), body, RECEIVED)
    rec = out.record
    assert type(rec) is OrderUpdated
    assert out.topic == "shop.orders" and out.key == "1002"
    assert rec.updated_at == datetime(2024, 4, 30, 10, 30, tzinfo=UTC)
    assert rec.meta.event_type == "OrderUpdated" and rec.meta.occurred_at == rec.updated_at
    assert rec.source_financial_status == "pending"
    assert [ln.sku for ln in rec.lines] == ["TSHIRT-BLK-M", "MUG-WHT"]


def test_orders_cancelled(connector: ShopifyConnector) -> None:
    placed = shopify_order(1003, created_at=datetime(2024, 4, 30, 10, 0, tzinfo=UTC))
    body = body_of(cancelled(placed, reason="fraud"))
    (out,) = connector.translate(headers("orders/cancelled", body), body, RECEIVED)
    rec = out.record
    assert type(rec) is OrderCancelled
    assert out.key == "1003" and rec.order_id == "1003"
    assert rec.cancelled_at == datetime(2024, 4, 30, 10, 5, tzinfo=UTC)
    assert rec.reason == "fraud"
    assert rec.source_financial_status == "refunded"
    assert rec.lines == []  # the whole order
    assert rec.meta.event_type == "OrderCancelled" and rec.meta.occurred_at == rec.cancelled_at


def test_orders_cancelled_without_cancelled_at_is_a_payload_error(connector: ShopifyConnector) -> None:
    body = body_of(shopify_order(1004))
    with pytest.raises(PayloadError, match="cancelled_at"):
        connector.translate(headers("orders/cancelled", body), body, RECEIVED)


def test_three_topics_give_three_distinct_event_ids_for_one_order(connector: ShopifyConnector) -> None:
    placed = shopify_order(1005, created_at=datetime(2024, 4, 30, 10, 0, tzinfo=UTC))
    ids = set()
    for topic, payload in (("orders/create", placed), ("orders/updated", placed),
                           ("orders/cancelled", cancelled(placed))):
        body = body_of(payload)
        (out,) = connector.translate(headers(topic, body), body, RECEIVED)
        ids.add(out.record.meta.event_id)  # type: ignore[attr-defined]
    assert len(ids) == 3


def test_event_id_is_deterministic_per_delivery(connector: ShopifyConnector) -> None:
    body = DOCS_ORDER_JSON
    h = headers("orders/create", body)
    (first,) = connector.translate(h, body, RECEIVED)
    (again,) = connector.translate(h, body, datetime(2024, 5, 2, 8, 0, tzinfo=UTC))  # a retry, a day later
    assert first.record.meta.event_id == again.record.meta.event_id  # type: ignore[attr-defined]
    # A retry carries the same webhook id but may even carry another event id header: still the same event.
    (third,) = connector.translate(headers("orders/create", body, event_id="evt-2"), body, RECEIVED)
    assert third.record.meta.event_id == first.record.meta.event_id  # type: ignore[attr-defined]


def test_event_id_changes_with_updated_at(connector: ShopifyConnector) -> None:
    payload = shopify_order(1006, created_at=datetime(2024, 4, 30, 10, 0, tzinfo=UTC))
    ids = []
    for updated_at in ("2024-04-30T11:00:00+00:00", "2024-04-30T11:00:00+00:00", "2024-04-30T11:00:01+00:00"):
        body = body_of({**payload, "updated_at": updated_at})
        (out,) = connector.translate(headers("orders/updated", body), body, RECEIVED)
        ids.append(out.record.meta.event_id)  # type: ignore[attr-defined]
    assert ids[0] == ids[1]
    assert ids[2] != ids[0]


def test_event_id_differs_between_orders(connector: ShopifyConnector) -> None:
    when = datetime(2024, 4, 30, 10, 0, tzinfo=UTC)
    a, b = body_of(shopify_order(2001, created_at=when)), body_of(shopify_order(2002, created_at=when))
    (oa,) = connector.translate(headers("orders/create", a), a, RECEIVED)
    (ob,) = connector.translate(headers("orders/create", b), b, RECEIVED)
    assert oa.record.meta.event_id != ob.record.meta.event_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("topic", ["collections/update", "orders/paid", "customers/create", "app/uninstalled"])
def test_unknown_topic_is_acknowledged_with_nothing_to_publish(connector: ShopifyConnector, topic: str) -> None:
    # Even a body that is not an order: topics we do not use are not parsed.
    assert connector.translate(headers(topic, b'{"id": 1}'), b'{"id": 1}', RECEIVED) == []


def test_missing_topic_header_is_a_payload_error(connector: ShopifyConnector) -> None:
    h = headers("orders/create", DOCS_ORDER_JSON)
    del h["X-Shopify-Topic"]
    with pytest.raises(PayloadError, match="X-Shopify-Topic"):
        connector.translate(h, DOCS_ORDER_JSON, RECEIVED)


def _mutated(change: Any) -> bytes:
    payload = json.loads(DOCS_ORDER_JSON)
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
    (b'"an order"', "not a JSON object"),
    (_mutated(lambda p: p.pop("total_price")), "total_price: Field required"),
    (_mutated(lambda p: p.update(total_price="12,50")), "not a decimal amount"),
    (_mutated(lambda p: p.update(total_price="NaN")), "not a finite amount"),
    (_mutated(_set_line("quantity", -1)), "line_items.0.quantity"),
    (_mutated(_set_line("price", "abc")), "line_items.0.price"),
    (_mutated(lambda p: p.update(currency="EURO")), "currency"),
    (_mutated(lambda p: p.update(currency="€")), "currency"),
    (_mutated(lambda p: p.pop("line_items")), "line_items: Field required"),
    (_mutated(lambda p: p.pop("id")), "id: Field required"),
    (_mutated(lambda p: p.update(created_at="yesterday")), "created_at: not an ISO-8601 timestamp"),
    (_mutated(lambda p: p.update(created_at="2024-04-30T10:00:00")), "created_at: timestamp without a UTC offset"),
    (_mutated(lambda p: p.update(total_shipping_price_set={"shop_money": {"amount": "x"}})),
     "total_shipping_price_set"),
    (_mutated(_set_line("price", "1.23456")), "cannot be represented"),  # more than 4 decimal places
])
def test_bad_payload_is_a_payload_error_with_a_readable_reason(connector: ShopifyConnector, body: bytes,
                                                               reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        connector.translate(headers("orders/create", body), body, RECEIVED)
    message = str(info.value)
    assert reason in message
    assert "Traceback" not in message and len(message) < 600


def test_payload_error_is_a_value_error() -> None:
    # The front maps PayloadError to 422; being a ValueError keeps generic handlers sensible too.
    assert issubclass(PayloadError, ValueError)


def test_the_browser_ip_is_the_orders_client_ip(connector: ShopifyConnector) -> None:
    body = DOCS_ORDER_JSON.replace(b'"browser_ip": null', b'"browser_ip": "203.0.113.7"')
    (out,) = connector.translate(headers("orders/create", body), body, RECEIVED)
    assert isinstance(out.record, OrderPlaced) and out.record.client_ip == "203.0.113.7"
