"""SIGKILL the orders worker mid-stream, restart it, and every order ends exactly as the oracle computes.

The oracle is the pure lifecycle applied to each order's events in partition order; duplicates are
part of the input. The worker is the real `shopstream worker orders` process on the real broker.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.shopify import ShopifyConnector, sign
from shopstream.config import Settings
from shopstream.demo import cancelled, shopify_order
from shopstream.kafka import make_producer
from shopstream.processors.orders.lifecycle import apply
from shopstream.processors.orders.mapping import load_mapping
from shopstream.schemas.models import OrderState
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import latest_order_states, read_all
from tests.workers import start_worker

pytestmark = pytest.mark.broker

ORDERS = 2500


def _events(count: int) -> list:
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
    return events


def _oracle(events: list) -> dict[str, OrderState]:
    mapping = load_mapping("shopify")
    states: dict[str, OrderState] = {}
    for event in events:
        outcome = apply(states.get(event.order_id), event, mapping)
        if outcome.state is not None and not outcome.duplicate and not outcome.rejected:
            states[event.order_id] = outcome.state
    return states


def _latest_states(settings: Settings, serde: AvroSerde) -> dict[str, OrderState]:
    return latest_order_states(settings.kafka_bootstrap_servers, settings.topic("orders.state"), serde)


def _start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return start_worker("orders", settings, log)


def _produce(settings: Settings, serde: AvroSerde, events: list) -> None:
    producer = make_producer(settings)
    topic = settings.topic("shop.orders")
    for event in events:
        producer.produce(topic, key=event.order_id.encode(), value=serde.encode(topic, event))
        producer.poll(0)
    assert producer.flush(30) == 0


def test_sigkill_mid_stream_then_restart_matches_oracle(settings: Settings, tmp_path: Path) -> None:
    # Produce as every shopstream producer does against Tansu (config.py: single_record_batches).
    settings = settings.model_copy(update={"single_record_batches": True})
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    events = _events(ORDERS)
    expected = _oracle(events)
    half = len(events) // 2
    _produce(settings, serde, events[:half])

    log = tmp_path / "worker.log"
    worker = _start_worker(settings, log)
    try:
        # Kill it once it is visibly mid-stream: some states out, far from all.
        deadline = time.monotonic() + 120
        while len(_latest_states(settings, serde)) < ORDERS // 10:
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "worker produced nothing:\n" + log.read_text()[-3000:]
            time.sleep(0.5)
        _produce(settings, serde, events[half:])  # more arrive while it is down
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert len(_latest_states(settings, serde)) < len(expected), "worker finished before the kill"

        worker = _start_worker(settings, log)
        deadline = time.monotonic() + 240
        latest: dict[str, OrderState] = {}
        while time.monotonic() < deadline:
            latest = _latest_states(settings, serde)
            if len(latest) == len(expected) and all(latest[k] == v for k, v in expected.items()):
                break
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(2)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()

    missing = set(expected) - set(latest)
    assert not missing, f"{len(missing)} of {len(expected)} orders have no state; worker log: {log}"
    wrong = [k for k, v in expected.items() if latest[k] != v]
    if wrong:
        _diagnose(settings, wrong[:3])
    assert not wrong, f"{len(wrong)} orders differ from the oracle, e.g. {latest[wrong[0]]} != {expected[wrong[0]]}"


def _diagnose(settings: Settings, order_ids: list[str]) -> None:
    """Print what the changelog and input topics hold for orders that differ (kept for CI forensics)."""
    from confluent_kafka import Consumer, TopicPartition

    changelog = settings.topic("orders-orders-changelog")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "diag"})
    for name in (changelog, settings.topic("shop.orders"), settings.topic("orders.state"),
                 settings.topic("shop.orders.dlq")):
        marks = [consumer.get_watermark_offsets(TopicPartition(name, p), timeout=5) for p in range(4)]
        print(f"{name} watermarks {marks}")
        for msg in read_all(settings.kafka_bootstrap_servers, name, idle_s=0.5):
            if msg.key() and msg.key().decode(errors="replace").strip('"') in order_ids:
                print(f"  p{msg.partition()} @{msg.offset()} key={msg.key()!r} value={msg.value()[:160]!r}")
    consumer.close()
