"""Hostile and broken input at the webhook front: never a 500, always one of accepted / rejected+parked /
unavailable (the front with in-memory fakes for Kafka, the registry and Redis; no I/O)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from shopstream.config import Settings
from shopstream.connectors import shopify, stripe, woocommerce
from shopstream.connectors.base import PayloadError, parse_time, refuse_future
from shopstream.connectors.carrier import CarrierConnector
from shopstream.connectors.dedupe import Claim
from shopstream.connectors.payload import MAX_DEPTH, decimal_amount, load_json_object
from shopstream.connectors.service import source_connectors
from shopstream.connectors.signing import (
    parse_timed_signature,
    shopstream_headers,
    shopstream_signature,
    signed_by,
    unix_seconds,
)
from shopstream.connectors.webhook import SOURCE_HEADER, WebhookFront
from shopstream.dev.shopify_samples import shopify_order
from shopstream.dlq import PREFIX, DeadLetterWriter
from shopstream.serde import RegistryRefused

SECRET = "s" * 40
NOW = time.time()


# ------------------------------------------------------------------------------------------- signatures

@pytest.mark.parametrize("text", ["²", "\uff11\uff12", "1" * 5000, "12345678901234", "", " ", "-1", "1e9", "0x10"])
def test_timestamps_are_short_ascii_digits_only(text: str) -> None:
    assert unix_seconds(text) is None


@pytest.mark.parametrize("header", ["t=²,v1=00", "t=" + "9" * 5000 + ",v1=00", "t=\uff11,v1=00", "t=1,t=2,v1=00",
                                    "v1=00", "t=1", "t=1,v1=é", "\udcff"])
def test_malformed_timed_signatures_are_refused_not_raised(header: str) -> None:
    assert parse_timed_signature(header) is None or not header.isascii()
    connector = stripe.StripeConnector(SECRET, now=lambda: NOW)
    assert not connector.verify({"Stripe-Signature": header}, b"{}")


def test_non_ascii_signatures_never_raise() -> None:
    assert not signed_by(SECRET, "é" * 44, b"{}", shopify.sign)
    assert not shopify.ShopifyConnector(SECRET).verify({"X-Shopify-Hmac-Sha256": "\udcff\udcfe"}, b"{}")


def test_every_secret_of_a_rotation_verifies() -> None:
    body = b'{"id": 1}'
    both = shopify.ShopifyConnector(["new-" + SECRET, "old-" + SECRET])
    assert both.verify({"X-Shopify-Hmac-Sha256": shopify.sign("old-" + SECRET, body)}, body)
    assert both.verify({"X-Shopify-Hmac-Sha256": shopify.sign("new-" + SECRET, body)}, body)
    assert not both.verify({"X-Shopify-Hmac-Sha256": shopify.sign("other", body)}, body)
    connectors = source_connectors(Settings(stripe_secret=SecretStr(f"new-{SECRET}, old-{SECRET}")))
    header = stripe.signature_header("old-" + SECRET, body, int(time.time()))
    assert connectors["stripe"].verify({"Stripe-Signature": header}, body)


def test_shopstream_signature_is_timed_with_a_tolerance() -> None:
    body = b'{"x": 1}'
    carrier = CarrierConnector(SECRET, now=lambda: 1_000_000, tolerance_s=300)
    assert carrier.verify({"X-Shopstream-Signature": shopstream_signature(SECRET, body, 1_000_000 - 299)}, body)
    assert not carrier.verify({"X-Shopstream-Signature": shopstream_signature(SECRET, body, 1_000_000 - 301)}, body)
    assert not carrier.verify({"X-Shopstream-Signature": shopstream_signature(SECRET, body, 1_000_000 + 301)}, body)
    assert carrier.verify(shopstream_headers(["other", SECRET], body, timestamp=1_000_000), body)


# ------------------------------------------------------------------------------------------------ bodies

def test_deep_nesting_and_huge_integers_are_payload_errors() -> None:
    with pytest.raises(PayloadError, match="nested deeper"):
        load_json_object(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(PayloadError, match="nested deeper"):
        load_json_object(b'{"a":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}")
    with pytest.raises(PayloadError, match="JSON we accept"):
        load_json_object(b'{"a": ' + b"7" * 5000 + b"}")
    assert load_json_object(b'{"a": [[1]]}') == {"a": [[1]]}


@pytest.mark.parametrize("value", ["1" * 30, "1e999999", "-" + "9" * 19, "x" * 100, 1e308])
def test_absurd_amounts_are_value_errors(value: Any) -> None:
    with pytest.raises(ValueError):
        decimal_amount(value, "price")


def test_woocommerce_price_of_30_digits_is_a_payload_error() -> None:
    order = json.loads(woocommerce_sample())
    order["line_items"][0]["price"] = "1" * 30 + ".12345"  # rounded to 4 places: InvalidOperation before
    order["line_items"][0]["subtotal"] = ""
    order["total"] = "1" * 30
    body = json.dumps(order).encode()
    connector = woocommerce.WooCommerceConnector(SECRET)
    headers = {"X-WC-Webhook-Signature": woocommerce.sign(SECRET, body), "X-WC-Webhook-Topic": "order.created"}
    with pytest.raises(PayloadError):
        connector.translate(headers, body, datetime.now(UTC))


def woocommerce_sample() -> bytes:
    from tests.unit.test_woocommerce_connector import DOCS_ORDER_JSON
    return DOCS_ORDER_JSON


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-05-01T" + "1" * 99])
def test_out_of_range_times_are_payload_errors(text: str) -> None:
    with pytest.raises(PayloadError):
        parse_time(text, "created_at")


def test_future_times_beyond_the_skew_are_refused() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    refuse_future(now + timedelta(minutes=9), now, 600, "occurred_at")
    with pytest.raises(PayloadError, match="ahead of our clock"):
        refuse_future(now + timedelta(minutes=11), now, 600, "occurred_at")


# ------------------------------------------------------------------------------------- the front, faked

class FakePublisher:
    """Kafka confirmed every write (or refuses all when `down`)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    async def publish(self, topic: str, key: bytes | None, value: bytes | None,
                      headers: Sequence[tuple[str, bytes]] | None = None) -> None:
        self.sent.append((topic, key, value, list(headers or [])))


class FakeSerde:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def encode(self, topic: str, record: BaseModel) -> bytes:
        if self.error:
            raise self.error
        return b"avro"


class FakeDedupe:
    def __init__(self) -> None:
        self.state: dict[str, str] = {}

    async def claim(self, source: str, delivery_id: str) -> Claim:
        current = self.state.get(delivery_id)
        if current is None:
            self.state[delivery_id] = "pending"
            return Claim.NEW
        return Claim.DONE if current == "done" else Claim.IN_FLIGHT

    async def complete(self, source: str, delivery_id: str) -> None:
        self.state[delivery_id] = "done"

    async def release(self, source: str, delivery_id: str) -> None:
        self.state.pop(delivery_id, None)


def make_front(serde: FakeSerde | None = None) -> tuple[WebhookFront, FakePublisher, FakeDedupe]:
    settings = Settings(shopify_secret=SecretStr(SECRET))
    publisher, dedupe = FakePublisher(), FakeDedupe()
    front = WebhookFront(settings, publisher, serde or FakeSerde(), dedupe,  # type: ignore[arg-type]
                         DeadLetterWriter(publisher, "connectors", {}))
    return front, publisher, dedupe


def signed_shopify(payload: Mapping[str, Any] | bytes, webhook_id: str = "w-1") -> tuple[dict[str, str], bytes]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return {"X-Shopify-Hmac-Sha256": shopify.sign(SECRET, body), "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": webhook_id, "X-Forwarded-For": "10.0.0.7", "X-Api-Key": "k"}, body


def parked(publisher: FakePublisher) -> list[dict[str, bytes]]:
    return [dict(h) for topic, _, _, h in publisher.sent if topic == "connectors.dlq"]


def run(front: WebhookFront, headers: Mapping[str, str], body: bytes) -> Any:
    return asyncio.run(front.accept(shopify.ShopifyConnector(SECRET), headers, body))


def test_a_refused_body_is_parked_with_allowlisted_headers_and_its_claim_released() -> None:
    front, publisher, dedupe = make_front()
    headers, body = signed_shopify(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    outcome = run(front, headers, body)
    assert outcome.status == 422 and "nested deeper" in str(outcome.body["error"])
    (context,) = parked(publisher)
    assert context[SOURCE_HEADER] == b"shopify" and context["http.x-shopify-webhook-id"] == b"w-1"
    assert "http.x-forwarded-for" not in context and "http.x-api-key" not in context
    assert dedupe.state == {}  # released: a corrected resend (or a redrive) is processed


def test_a_future_order_is_refused_and_a_good_one_accepted() -> None:
    front, _publisher, dedupe = make_front()
    future = shopify_order(1, created_at=datetime.now(UTC) + timedelta(days=365 * 40))
    assert run(front, *signed_shopify(future, "w-f")).status == 422
    ok = run(front, *signed_shopify(shopify_order(2, created_at=datetime.now(UTC)), "w-ok"))
    assert ok.status == 200 and dedupe.state == {"w-ok": "done"}


def test_a_connector_bug_is_parked_with_its_fingerprint_and_no_traceback() -> None:
    front, publisher, _ = make_front()

    class Buggy(shopify.ShopifyConnector):
        def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Any]:
            raise ZeroDivisionError("boom")

    headers, body = signed_shopify(shopify_order(3, created_at=datetime.now(UTC)))
    outcome = asyncio.run(front.accept(Buggy(SECRET), headers, body))
    assert outcome.status == 422 and "ref " in str(outcome.body["error"]) and "Traceback" not in str(outcome.body)
    (context,) = parked(publisher)
    assert context[PREFIX + "error.class"].endswith(b"ConnectorBug")


def test_a_registry_refusal_is_503_and_parks_nothing() -> None:
    front, publisher, dedupe = make_front(FakeSerde(RegistryRefused("HTTP 401")))
    outcome = run(front, *signed_shopify(shopify_order(4, created_at=datetime.now(UTC)), "w-r"))
    assert outcome.status == 503 and parked(publisher) == [] and dedupe.state == {}


def test_a_bad_delivery_id_is_400() -> None:
    front, publisher, _ = make_front()
    headers, body = signed_shopify(shopify_order(5, created_at=datetime.now(UTC)), "x" * 300)
    assert run(front, headers, body).status == 400
    assert len(parked(publisher)) == 1
