"""An order lifecycle feed for the orders worker's integration tests, and the oracle of its end states.

The input is the full lifecycle on its four topics: Shopify deliveries translated by the real
connector on `shop.orders` (creates, later updates, cancels, duplicates), captures of the order total
on `payments` and whole-order dispatches on `fulfillment.shipments` (both also duplicated), interleaved
so a payment or a dispatch often arrives before its order (and is parked). The oracle is the pure
canonical core applied to each order's events in production order; a worker sees the topics in some
other interleaving, which the core makes irrelevant for the canonical dimensions and amounts (a
property tested in tests/unit/test_order_canonical.py) — versions and intermediate states do depend
on it, so tests compare what an order *is* (`essence`), not how many steps it took.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shopstream.config import Settings
from shopstream.connectors.shopify import ShopifyConnector, sign
from shopstream.dev.shopify_samples import cancelled, shopify_order
from shopstream.processors.orders.canonical import apply
from shopstream.processors.orders.context import Context
from shopstream.processors.orders.mapping import load_mapping
from shopstream.processors.orders.record import OrderRecord
from shopstream.schemas.models import OrderState
from shopstream.serde import AvroSerde
from tests.kafka_read import read_all
from tests.kafka_write import CheckedProducer, make_producer
from tests.unit.order_events import captured, dispatched

TOPIC_OF = {"PaymentCaptured": "payments", "ShipmentDispatched": "fulfillment.shipments"}


def lifecycle_events(count: int) -> list:
    """Shopify deliveries translated by the real connector: creates, later updates, cancels, duplicates."""
    connector = ShopifyConnector("s")
    rng = random.Random(7)
    base = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    events = []
    for i in range(count):
        order = shopify_order(9_000_000 + i, financial_status=rng.choice(["pending", "paid", "authorized"]),
                              created_at=base + timedelta(seconds=i))
        deliveries = [("orders/create", order)]
        if rng.random() < 0.4:
            later = base + timedelta(seconds=i, minutes=3)
            deliveries.append(("orders/updated", {**order, "financial_status": "paid",
                                                  "updated_at": later.isoformat()}))
        if rng.random() < 0.2:
            deliveries.append(("orders/cancelled", cancelled(order, after=timedelta(minutes=10))))
        for topic, payload in deliveries:
            body = json.dumps(payload).encode()
            headers = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": sign("s", body),
                       "X-Shopify-Webhook-Id": f"{topic}:{order['id']}"}
            (out,) = connector.translate(headers, body, base + timedelta(seconds=i, minutes=20))
            events.append(out.record)
            if rng.random() < 0.1:  # at-least-once upstream: the same event delivered twice
                events.append(out.record)
        if len(deliveries) > 1 and deliveries[-1][0] == "orders/cancelled":
            continue  # a cancel races a dispatch in real life too: its outcome depends on arrival order
        others = []
        if rng.random() < 0.5:
            others.append(_for_order(captured(30, order["total_price"]), order))
        if rng.random() < 0.3:
            others.append(_for_order(dispatched(60), order))
        for other in others:
            # Anywhere in the stream, often before the order itself (then parked until it arrives).
            events.insert(rng.randrange(max(0, len(events) - 40), len(events) + 1), other)
            if rng.random() < 0.1:
                events.append(other)
    return events


def _for_order(event: Any, order: dict[str, Any]) -> Any:
    """A unit-test builder's event, re-addressed to a Shopify order (own event id, the order's currency)."""
    order_id = str(order["id"])
    meta = event.meta.model_copy(update={
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{order_id}:{event.meta.event_id}")),
        "correlation_id": f"order:{order_id}"})
    return event.model_copy(update={"order_id": order_id, "meta": meta})


def essence(state: OrderState) -> tuple[Any, ...]:
    """What an order is, independent of the path it took there (versions and event ids are not)."""
    return (state.status, state.payment_status, state.fulfillment_status, state.return_status, state.hold_reasons,
            state.captured, state.refunded, state.total, state.lines, state.placed_at, state.cancelled_at)


def oracle(events: list) -> dict[str, OrderState]:
    """Each order's end state: the pure canonical core over its events in production order."""
    mappings = {"shopify": load_mapping("shopify")}
    context = Context.from_files(mappings.__getitem__)
    records: dict[str, OrderRecord] = {}
    for event in events:
        records[event.order_id] = apply(records.get(event.order_id), event, context).record
    return {order_id: rec.state for order_id, rec in records.items() if rec.state is not None}


def produce_events(settings: Settings, serde: AvroSerde, events: list, producer: CheckedProducer | None = None) -> None:
    """Each event on its topic (`TOPIC_OF`, else `shop.orders`), keyed by order id; fails unless all are delivered."""
    producer = producer or make_producer(settings)
    for event in events:
        topic = settings.topic(TOPIC_OF.get(type(event).__name__, "shop.orders"))
        producer.produce(topic, key=event.order_id.encode(), value=serde.encode(topic, event))
        producer.poll(0)
    assert producer.flush(30) == 0


def differences(latest: dict[str, OrderState], expected: dict[str, OrderState]) -> list[str]:
    """Order ids whose latest state is missing or differs from the oracle's in `essence`."""
    return [k for k, v in expected.items() if k not in latest or essence(latest[k]) != essence(v)]


def diagnose(settings: Settings, order_ids: list[str]) -> None:
    """Print what the changelog and input topics hold for orders that differ (kept for CI forensics)."""
    from confluent_kafka import Consumer, TopicPartition

    changelog = settings.topic("orders-orders-changelog")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "diag"})
    for name in (changelog, settings.topic("shop.orders"), settings.topic("orders.state"),
                 settings.topic("shop.orders.dlq")):
        marks = [consumer.get_watermark_offsets(TopicPartition(name, p), timeout=5) for p in range(4)]
        print(f"{name} watermarks {marks}")
        for msg in read_all(settings.kafka_bootstrap_servers, name, idle_s=0.5):
            key, value = msg.key() or b"", msg.value() or b""
            if key.decode(errors="replace").strip('"') in order_ids:
                print(f"  p{msg.partition()} @{msg.offset()} key={key!r} value={value[:160]!r}")
    consumer.close()
