"""Stripe and WooCommerce webhooks through the connectors service in-process, on the real broker,
registry and Redis: signed deliveries are published framed and keyed by order id; a bad signature
publishes nothing; Stripe dedupes on the event id from the body; the WooCommerce ping is acknowledged.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import pytest
import redis
from aiokafka.partitioner import DefaultPartitioner
from pydantic import SecretStr

from shopstream.config import Settings
from shopstream.connectors import stripe, woocommerce
from shopstream.schemas.models import OrderPlaced, PaymentCaptured, ReviewItem
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from tests.webhook_client import client_for, partitions_of, read_topic

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

STRIPE_SECRET = "whsec_integration"
WOO_SECRET = "wc-integration-secret"


@pytest.fixture
def pay_settings(settings: Settings) -> Settings:
    """The test's settings with Stripe and WooCommerce secrets, and every topic created under its prefix."""
    s = settings.model_copy(update={"stripe_secret": SecretStr(STRIPE_SECRET),
                                    "woocommerce_secret": SecretStr(WOO_SECRET)})
    report = apply(load_topology(), s.kafka_client_config(), prefix=s.topic_prefix, timeout_s=30)
    assert report.failed == {}
    return s


def stripe_event(event_id: str, order_id: str | None, *, event_type: str = "payment_intent.succeeded",
                 amount: int = 5430, currency: str = "eur") -> bytes:
    return json.dumps({
        "id": event_id, "object": "event", "api_version": "2024-04-10", "created": int(time.time()) - 5,
        "type": event_type, "livemode": False, "pending_webhooks": 1,
        "data": {"object": {
            "id": "pi_3PIntegration0001", "object": "payment_intent", "amount": amount, "amount_received": amount,
            "amount_capturable": 0, "currency": currency, "status": "succeeded",
            "metadata": {"order_id": order_id} if order_id else {}, "payment_method_types": ["card"],
        }},
    }).encode()


def stripe_headers(body: bytes, secret: str = STRIPE_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": stripe.signature_header(secret, body, int(time.time()))}


async def test_signed_stripe_event_is_published_once_keyed_by_order_id(pay_settings: Settings,
                                                                       redis_url: str) -> None:
    s = pay_settings
    event_id = f"evt_{uuid.uuid4().hex}"
    body = stripe_event(event_id, "990011", amount=125000, currency="jpy")
    async with client_for(s) as client:
        # Bad signature first: 401, nothing published, nothing claimed.
        resp = await client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, "whsec_wrong"))
        assert resp.status == 401
        dedupe_key = f"{s.redis_key_prefix}webhook:stripe:{event_id}"
        assert redis.Redis.from_url(redis_url).get(dedupe_key) is None

        resp = await client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
        assert answer["status"] == "accepted" and len(answer["events"]) == 1

        # Stripe retries the same event (new signature header, same evt id): a duplicate.
        again = await client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
        assert again.status == 200
        assert (await again.json()) == {"status": "duplicate", "delivery_id": event_id}
    assert redis.Redis.from_url(redis_url).get(dedupe_key) == b"done"

    n = partitions_of("payments")
    records = read_topic(s, "payments", partitions=n, want=1)
    assert len(records) == 1
    msg = records[0]
    assert msg.key() == b"990011"
    assert msg.partition() == DefaultPartitioner()(b"990011", list(range(n)), list(range(n)))
    value = msg.value()
    assert isinstance(value, bytes) and value[0] == 0 and len(value) > 5  # Confluent framing
    decoded = AvroSerde(make_registry_client(s.schema_registry_url)).decode(value)
    assert type(decoded) is PaymentCaptured
    assert decoded.order_id == "990011" and decoded.provider == "stripe"
    assert decoded.amount.amount == Decimal("125000") and decoded.amount.currency == "JPY"  # zero-decimal
    assert decoded.meta.event_id == answer["events"][0]
    assert decoded.meta.source_event_id == event_id


async def test_stale_stripe_signature_is_401(pay_settings: Settings) -> None:
    body = stripe_event(f"evt_{uuid.uuid4().hex}", "990012")
    stale = {"Stripe-Signature": stripe.signature_header(STRIPE_SECRET, body, int(time.time()) - 301)}
    async with client_for(pay_settings) as client:
        resp = await client.post("/webhooks/stripe", data=body, headers=stale)
        assert resp.status == 401
    assert read_topic(pay_settings, "payments", partitions=partitions_of("payments"), want=0, settle_s=0.5) == []


async def test_stripe_event_without_order_goes_to_review_and_unknown_types_are_ignored(
        pay_settings: Settings) -> None:
    s = pay_settings
    body = stripe_event(f"evt_{uuid.uuid4().hex}", None)
    unknown = stripe_event(f"evt_{uuid.uuid4().hex}", "990013", event_type="customer.created")
    async with client_for(s) as client:
        resp = await client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
        assert resp.status == 200, await resp.text()
        resp = await client.post("/webhooks/stripe", data=unknown, headers=stripe_headers(unknown))
        assert resp.status == 200
        assert (await resp.json())["status"] == "ignored"

    (review,) = read_topic(s, "review.queue", partitions=partitions_of("review.queue"), want=1)
    assert review.key() == b"pi_3PIntegration0001"
    item = AvroSerde(make_registry_client(s.schema_registry_url)).decode(review.value())
    assert type(item) is ReviewItem and item.kind == "unmatched_payment" and item.event_type == "PaymentCaptured"
    assert read_topic(s, "payments", partitions=partitions_of("payments"), want=0, settle_s=0.5) == []


def stripe_dispute(event_id: str, payment_intent: str) -> bytes:
    """charge.dispute.created as Stripe sends it: the dispute names the payment, not the order."""
    return json.dumps({
        "id": event_id, "object": "event", "api_version": "2024-04-10", "created": int(time.time()) - 5,
        "type": "charge.dispute.created", "livemode": False, "pending_webhooks": 1,
        "data": {"object": {
            "id": f"dp_{uuid.uuid4().hex[:20]}", "object": "dispute", "amount": 5430, "currency": "eur",
            "charge": f"ch_{uuid.uuid4().hex[:20]}", "payment_intent": payment_intent, "created": int(time.time()) - 60,
            "reason": "fraudulent", "status": "needs_response", "metadata": {},
            "evidence_details": {"due_by": int(time.time()) + 7 * 86400, "has_evidence": False},
        }},
    }).encode()


async def test_a_dispute_without_order_metadata_reaches_the_order_of_its_payment(pay_settings: Settings) -> None:
    s = pay_settings
    payment = f"pi_{uuid.uuid4().hex[:20]}"
    capture = json.loads(stripe_event(f"evt_{uuid.uuid4().hex}", "990021"))
    capture["data"]["object"]["id"] = payment
    capture_body = json.dumps(capture).encode()
    dispute = stripe_dispute(f"evt_{uuid.uuid4().hex}", payment)
    stranger = stripe_dispute(f"evt_{uuid.uuid4().hex}", f"pi_{uuid.uuid4().hex[:20]}")  # payment never seen
    async with client_for(s) as client:
        for body in (capture_body, dispute, stranger):
            resp = await client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
            assert resp.status == 200, await resp.text()

    serde = AvroSerde(make_registry_client(s.schema_registry_url))
    records = read_topic(s, "payments", partitions=partitions_of("payments"), want=2)
    decoded = sorted((type(serde.decode(m.value())).__name__, m.key()) for m in records)
    assert decoded == [("ChargebackOpened", b"990021"), ("PaymentCaptured", b"990021")]
    (review,) = read_topic(s, "review.queue", partitions=partitions_of("review.queue"), want=1)
    item = serde.decode(review.value())
    assert type(item) is ReviewItem and item.kind == "unmatched_payment" and item.event_type == "ChargebackOpened"


def woo_order(order_id: int) -> bytes:
    return json.dumps({
        "id": order_id, "number": str(order_id), "status": "processing", "currency": "EUR",
        "date_created_gmt": "2024-05-01T09:30:00", "date_modified_gmt": "2024-05-01T09:30:05",
        "total": "44.70", "total_tax": "0.00", "shipping_total": "4.90", "customer_id": 17,
        "billing": {"first_name": "Jane", "last_name": "Doe", "email": "jane@example.com", "country": "DE"},
        "shipping": {"first_name": "Jane", "last_name": "Doe", "address_1": "Hauptstr. 1", "city": "Berlin",
                     "postcode": "10115", "country": "DE"},
        "line_items": [{"id": 1, "name": "T-Shirt", "product_id": 5, "variation_id": 0, "quantity": 2,
                        "subtotal": "39.80", "total": "39.80", "sku": "TSHIRT-BLK-M", "price": 19.9}],
    }).encode()


def woo_headers(body: bytes, delivery_id: str, secret: str = WOO_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-WC-Webhook-Topic": "order.created",
            "X-WC-Webhook-Resource": "order", "X-WC-Webhook-Event": "created",
            "X-WC-Webhook-Signature": woocommerce.sign(secret, body), "X-WC-Webhook-ID": "3",
            "X-WC-Webhook-Delivery-ID": delivery_id, "X-WC-Webhook-Source": "https://shop.example.com/"}


async def test_woocommerce_order_created_and_ping(pay_settings: Settings) -> None:
    s = pay_settings
    body = woo_order(770011)
    delivery = uuid.uuid4().hex
    async with client_for(s) as client:
        # The creation ping: unsigned form body, 200, nothing published.
        resp = await client.post("/webhooks/woocommerce", data=b"webhook_id=3",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert resp.status == 200
        assert (await resp.json())["status"] == "ignored"
        # A wrong signature: 401.
        resp = await client.post("/webhooks/woocommerce", data=body, headers=woo_headers(body, delivery, "wrong"))
        assert resp.status == 401
        resp = await client.post("/webhooks/woocommerce", data=body, headers=woo_headers(body, delivery))
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
        assert answer["status"] == "accepted"
        again = await client.post("/webhooks/woocommerce", data=body, headers=woo_headers(body, delivery))
        assert (await again.json())["status"] == "duplicate"

    n = partitions_of("shop.orders")
    (msg,) = read_topic(s, "shop.orders", partitions=n, want=1)
    assert msg.key() == b"770011"
    assert msg.partition() == DefaultPartitioner()(b"770011", list(range(n)), list(range(n)))
    decoded = AvroSerde(make_registry_client(s.schema_registry_url)).decode(msg.value())
    assert type(decoded) is OrderPlaced
    assert decoded.order_id == "770011" and decoded.meta.source == "woocommerce"
    assert decoded.total.amount == Decimal("44.70")
    assert [(ln.sku, ln.quantity, ln.unit_price.amount) for ln in decoded.lines] == [
        ("TSHIRT-BLK-M", 2, Decimal("19.9"))]
    assert decoded.source_financial_status == "processing"
    assert decoded.meta.event_id == answer["events"][0]
