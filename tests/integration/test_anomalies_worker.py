"""`shopstream worker anomalies` on the real broker: SIGKILL it mid-stream, restart it, and the alerts it
published equal what an oracle computes.

The input: six days of orders of SKU A (4 an hour, 1 of them cancelled), then an hour in which 30 of 40
orders of A are cancelled, then normal hours again; OrderPlaced and OrderCancelled on `shop.orders`
(4 partitions, keyed by order id), source times in the past (so the wall clock closes nothing: event
time alone decides). The worker is killed once it has visibly started, while the second half of the
history is still being produced. Two oracles: the pure engine over the facts log the worker wrote
(what stage 2 must have computed, crash or not), and the pure engine over the original events in time
order (what the history means). Both must equal the alert changes on `alerts.anomalies` (duplicates of
a re-run batch allowed: the records are identical). And the story itself: exactly one
`cancellation_rate` alert for sku:A opened in the spike hour, with the baseline and the orders as
evidence, then resolved; the KPI view in Redis shows the cancellation rate.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from shopstream.config import Settings
from shopstream.processors.anomalies.engine import Engine
from shopstream.processors.anomalies.facts import from_event
from shopstream.processors.anomalies.records import decode_fact
from shopstream.processors.anomalies.rules import load_rules
from shopstream.schemas.models import (
    AnomalyAlert,
    EventMeta,
    Money,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    ShipmentDispatched,
    ShipmentLine,
)
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology, names
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.workers import api_client, running_sink, start_worker

pytestmark = pytest.mark.broker
T0 = datetime(2026, 11, 2, tzinfo=UTC)
DAYS = 6
SPIKE = T0 + timedelta(days=DAYS)
_NS = uuid.UUID("8d7c1f0e-2b8a-4d38-9a39-0c1a2b3c4d5e")


def _meta(kind: str, key: str, at: datetime) -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid5(_NS, f"{kind}:{key}")), event_type=kind, occurred_at=at,
                     recorded_at=at, source="shopify", correlation_id=f"order:{key}")


Event = OrderPlaced | OrderCancelled | ShipmentDispatched
LEAD = timedelta(hours=2)  # every order that is not cancelled ships two hours after it was placed


def _hour(start: datetime, orders: int, cancelled: int, tag: str) -> list[Event]:
    out: list[Event] = []
    step = timedelta(seconds=(3600 - 180) // orders)
    for i in range(orders):
        at = start + i * step
        order_id = f"{tag}-{i}"
        line = OrderLine(line_id="1", sku="A", quantity=1, unit_price=Money(amount=Decimal(10), currency="EUR"))
        out.append(OrderPlaced(meta=_meta("OrderPlaced", order_id, at), order_id=order_id, placed_at=at,
                               currency="EUR", total=Money(amount=Decimal(10), currency="EUR"), lines=[line]))
        if i < cancelled:
            later = at + timedelta(minutes=1)
            out.append(OrderCancelled(meta=_meta("OrderCancelled", order_id, later), order_id=order_id,
                                      cancelled_at=later, reason="customer", lines=[]))
        else:
            out.append(ShipmentDispatched(meta=_meta("ShipmentDispatched", order_id, at + LEAD), order_id=order_id,
                                          shipment_id=f"s-{order_id}", carrier="dhl", dispatched_at=at + LEAD,
                                          lines=[ShipmentLine(sku="A", quantity=1)]))
    return out


def history() -> list[Event]:
    """The whole input in time order."""
    events: list[Event] = []
    for h in range(DAYS * 24):
        events += _hour(T0 + timedelta(hours=h), 4, 1, f"n{h}")
    events += _hour(SPIKE, 40, 30, "spike")
    for h in range(1, 9):  # enough that every partition's clock passes the resolution
        events += _hour(SPIKE + timedelta(hours=h), 4, 1, f"after{h}")
    return sorted(events, key=lambda e: from_event(e).at_ms)  # type: ignore[union-attr]


def _produce(settings: Settings, serde: AvroSerde, events: list[Event]) -> None:
    producer = make_producer(settings)
    for event in events:
        name = names.FULFILLMENT_SHIPMENTS if isinstance(event, ShipmentDispatched) else names.SHOP_ORDERS
        topic = settings.topic(name)
        producer.produce(topic, key=event.order_id.encode(), value=serde.encode(topic, event))
        producer.poll(0)
    assert producer.flush(30) == 0


def _published(settings: Settings, serde: AvroSerde) -> list[AnomalyAlert]:
    records = read_all(settings.kafka_bootstrap_servers, settings.topic(names.ALERTS_ANOMALIES), idle_s=0.5)
    return [serde.decode(m.value()) for m in records]


def _changes(alerts: list[AnomalyAlert]) -> set[tuple[str, str, str, int]]:
    return {(a.evidence["detector"], a.subject, a.evidence["status"], int(a.detected_at.timestamp() * 1000))
            for a in alerts}


def _oracle(facts: list, order_sources: int | None) -> set[tuple[str, str, str, int]]:
    engine = Engine(load_rules(), order_sources=order_sources)
    return {(c.detector, c.subject, c.status, c.at_ms) for f in facts for c in engine.apply(f) if not c.shadow}


def _kpi_totals(events: list[Event]) -> tuple[int, int, int]:
    """(orders, cancellations, orders with a lead time) the 7d KPI report must count: every shipped order."""
    placed = sum(isinstance(e, OrderPlaced) for e in events)
    cancels = sum(isinstance(e, OrderCancelled) for e in events)
    return placed, cancels, placed - cancels


def _report_totals(report: dict[str, Any]) -> tuple[int, int, int]:
    return report["orders"], report["cancellations"], report["fulfilment_lead_time_s"]["count"]


def _crash_and_recover(settings: Settings, tmp_path: Path) -> tuple[list[Event], list[AnomalyAlert], bytes | None]:
    """Half the history, the worker, SIGKILL once it visibly works, the rest, a new worker until the oracle's
    alerts are out; (events, published alerts, the stored 7d KPI report)."""
    topology = load_topology()
    apply_topology(topology, settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    events = history()
    half = len(events) // 2
    _produce(settings, serde, events[:half])

    log = tmp_path / "worker.log"
    worker = start_worker("anomalies", settings, log)
    facts_topic = settings.topic(names.ANOMALIES_FACTS)
    try:
        deadline = time.monotonic() + 120
        while len(read_all(settings.kafka_bootstrap_servers, facts_topic, partitions=1, idle_s=0.2)) < half // 4:
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "worker produced no facts:\n" + log.read_text()[-3000:]
            time.sleep(0.5)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        _produce(settings, serde, events[half:])  # the rest arrives while it is down

        worker = start_worker("anomalies", settings, log)
        wanted = _oracle([f for e in events if (f := from_event(e)) is not None], None)
        assert ("cancellation-rate-sku-hour", "sku:A", "resolved", int((SPIKE + timedelta(hours=3)).timestamp()
                                                                     * 1000)) in wanted
        deadline = time.monotonic() + 240
        published: set[tuple[str, str, str, int]] = set()
        while time.monotonic() < deadline:
            published = _changes(_published(settings, serde))
            if published >= wanted:
                break
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(2)
        time.sleep(2)  # nothing more may come
        alerts = _published(settings, serde)
        totals = _kpi_totals(events)
        client = redis.Redis.from_url(settings.redis_url)
        kpis: bytes | None = None
        # The KPI view is written at most every few seconds, and the worker reads the orders and the
        # shipments topics at their own pace: wait for every count, not for the orders alone (the
        # shipments' lead times can still be coming in when the order count is complete).
        while time.monotonic() < deadline:
            stored = client.hget(f"{settings.redis_key_prefix}kpis", "7d")
            kpis = stored if isinstance(stored, bytes) else None
            if kpis is not None and _report_totals(orjson.loads(kpis)) == totals:
                break
            time.sleep(1)
        client.close()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()

    return events, alerts, kpis


async def test_sigkill_mid_stream_then_restart_matches_the_oracle(settings: Settings, tmp_path: Path) -> None:
    events, alerts, kpis = _crash_and_recover(settings, tmp_path)
    wanted = _oracle([f for e in events if (f := from_event(e)) is not None], None)
    facts_topic = settings.topic(names.ANOMALIES_FACTS)
    order_sources = load_topology().topic(names.SHOP_ORDERS).partitions
    facts = [decode_fact(m.value()) for m in read_all(settings.kafka_bootstrap_servers, facts_topic, partitions=1)]
    assert _changes(alerts) == _oracle(facts, order_sources)
    assert _changes(alerts) == wanted
    spike = [a for a in alerts if a.kind == "cancellation_rate" and a.subject == "sku:A"]
    assert {a.evidence["alert_id"] for a in spike} == {spike[0].evidence["alert_id"]}
    opened = next(a for a in spike if a.evidence["status"] == "open")
    assert opened.evidence["baseline"] == "0.25" and opened.evidence["observed"] == "0.75"
    assert set(opened.evidence["orders"].split(",")) <= {f"spike-{i}" for i in range(30)}
    assert any(a.evidence["status"] == "resolved" for a in spike)
    placed = [e for e in events if isinstance(e, OrderPlaced)]
    cancels = [e for e in events if isinstance(e, OrderCancelled)]
    assert kpis is not None
    report = orjson.loads(kpis)
    assert (report["orders"], report["cancellations"]) == (len(placed), len(cancels))
    assert report["cancellation_rate"] == round(len(cancels) / len(placed), 6)
    lead = int(LEAD.total_seconds())
    assert report["fulfilment_lead_time_s"] == {"p50": lead, "p90": lead, "count": len(placed) - len(cancels)}

    # The faces: the view sink folds the alert changes into one document, the API lists it and the KPIs.
    with running_sink(settings, batch_size=100):
        async with api_client(settings, role="viewer") as api:
            found: list[dict[str, object]] = []
            for _ in range(100):
                resp = await api.get("/v1/alerts", params={"kind": "cancellation_rate", "subject": "sku:A"})
                found = (await resp.json())["items"]
                if found and found[0]["status"] == "resolved":
                    break
                await asyncio.sleep(0.3)
            assert len(found) == 1 and found[0]["status"] == "resolved", found
            assert found[0]["evidence"]["baseline"] == "0.25"  # type: ignore[index]
            assert (await (await api.get("/v1/alerts", params={"status": "open"})).json())["count"] == 0
            body = await (await api.get("/v1/kpis", params={"window": "7d"})).json()
            assert body["cancellation_rate"] == report["cancellation_rate"]
            assert body["fulfilment_lead_time_s"]["p50"] == lead
