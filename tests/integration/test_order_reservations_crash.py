"""SIGKILL the orders worker mid-stream: `inventory.reservations` still holds exactly the oracle's records.

Orders with line changes, partial and whole cancellations and redeliveries go to `shop.orders`; the
real `shopstream worker orders` is killed while it works through them and restarted. The oracle is
the pure lifecycle plus `reservation_changes` over each order's events in order. Afterwards every
record on `inventory.reservations` is one of the oracle's records, byte for byte the same after
decoding (a re-emission after the crash repeats ids and contents), every oracle record is there,
keyed by its SKU, and folding the topic through the ATP core (partition order, duplicates included)
leaves each order reserving exactly its final lines per SKU, nothing for a cancelled order.
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.processors.inventory.atp import Policy, apply_reservation
from shopstream.processors.inventory.figures import levels
from shopstream.processors.inventory.sku_state import SkuState, new_state
from shopstream.processors.orders.lifecycle import OrderEvent, apply
from shopstream.processors.orders.mapping import load_mapping
from shopstream.processors.orders.reservations import reservation_changes, sku_totals
from shopstream.schemas.models import (
    EventMeta,
    Money,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderState,
    OrderUpdated,
    ReservationChanged,
)
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import latest_order_states, read_all
from tests.kafka_write import make_producer
from tests.workers import start_worker, stop

pytestmark = [pytest.mark.broker, pytest.mark.timeout(600)]

ORDERS = 1200
SKUS = [f"CR-SKU-{n:02d}" for n in range(16)]
BASE = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)
POLICY = Policy(online_locations=frozenset({"default"}))


def _meta(event_type: str, at: datetime) -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid4()), event_type=event_type, occurred_at=at,
                     recorded_at=at + timedelta(seconds=1), source="shopify")


def _lines(rng: random.Random) -> list[OrderLine]:
    return [OrderLine(line_id=f"l{n}", sku=rng.choice(SKUS), quantity=rng.randint(1, 4),
                      unit_price=Money(amount=Decimal(3), currency="EUR"))
            for n in range(rng.randint(1, 3))]


def _total(lines: list[OrderLine]) -> Money:
    return Money(amount=Decimal(3 * sum(x.quantity for x in lines)), currency="EUR")


def _events(count: int) -> list[OrderEvent]:
    """Per order: a create, maybe line changes, a partial and/or whole cancel; some redelivered."""
    rng = random.Random(11)
    events: list[OrderEvent] = []
    for i in range(count):
        order_id, start = f"cr-{i}", BASE + timedelta(seconds=i)
        lines = _lines(rng)
        mine: list[OrderEvent] = [OrderPlaced(meta=_meta("OrderPlaced", start), order_id=order_id, placed_at=start,
                                              currency="EUR", total=_total(lines), lines=lines)]
        if rng.random() < 0.4:
            lines = _lines(rng)
            at = start + timedelta(minutes=3)
            mine.append(OrderUpdated(meta=_meta("OrderUpdated", at), order_id=order_id, updated_at=at,
                                     currency="EUR", total=_total(lines), lines=lines))
        if rng.random() < 0.2:
            at = start + timedelta(minutes=5)
            line = rng.choice(lines)
            mine.append(OrderCancelled(meta=_meta("OrderCancelled", at), order_id=order_id, cancelled_at=at,
                                       lines=[line.model_copy(update={"quantity": 1})]))
        if rng.random() < 0.2:
            at = start + timedelta(minutes=10)
            mine.append(OrderCancelled(meta=_meta("OrderCancelled", at), order_id=order_id, cancelled_at=at))
        for event in mine:
            events.append(event)
            if rng.random() < 0.1:  # at-least-once upstream
                events.append(event)
    return events


def _oracle(events: list[OrderEvent]) -> tuple[dict[str, OrderState], dict[str, ReservationChanged]]:
    """Final state per order and every reservation record by event id (what the worker must emit)."""
    mapping = load_mapping("shopify")
    states: dict[str, OrderState] = {}
    records: dict[str, ReservationChanged] = {}
    for event in events:
        before = states.get(event.order_id)
        outcome = apply(before, event, mapping)
        if outcome.duplicate or outcome.rejected or outcome.state is None:
            continue
        states[event.order_id] = outcome.state
        for r in reservation_changes(before, outcome.state, event.meta):
            records[r.meta.event_id] = r
    return states, records


def test_sigkill_mid_stream_reservations_match_the_oracle(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    bootstrap = settings.kafka_bootstrap_servers
    events = _events(ORDERS)
    expected_states, expected = _oracle(events)
    producer = make_producer(settings)
    topic = settings.topic("shop.orders")

    def produce(batch: list[OrderEvent]) -> None:
        for event in batch:
            producer.produce(topic, key=event.order_id.encode(), value=serde.encode(topic, event))
            producer.poll(0)
        assert producer.flush(30) == 0

    def states() -> dict[str, OrderState]:
        return latest_order_states(bootstrap, settings.topic("orders.state"), serde)

    half = len(events) // 2
    produce(events[:half])
    log = tmp_path / "orders.log"
    worker = start_worker("orders", settings, log)
    try:
        deadline = time.monotonic() + 120
        while len(states()) < ORDERS // 10:
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "worker produced nothing:\n" + log.read_text()[-3000:]
            time.sleep(0.5)
        produce(events[half:])
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert len(states()) < len(expected_states), "worker finished before the kill"

        worker = start_worker("orders", settings, log)
        deadline = time.monotonic() + 300
        while True:
            latest = states()
            if len(latest) == len(expected_states) and all(latest[k] == v for k, v in expected_states.items()):
                break
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{len(latest)} of {len(expected_states)} orders; log: {log}"
            time.sleep(2)
    finally:
        stop(worker)

    # The table is written after the outputs are confirmed, so once every state is out, so are they.
    got: list[ReservationChanged] = []
    by_partition: dict[int, list[ReservationChanged]] = defaultdict(list)
    for msg in read_all(bootstrap, settings.topic("inventory.reservations"), idle_s=1.0):
        record = serde.decode(msg.value())
        assert isinstance(record, ReservationChanged)
        assert msg.key() == record.sku.encode()
        partition = msg.partition()
        assert partition is not None
        got.append(record)
        by_partition[partition].append(record)
    unexpected = [r for r in got if expected.get(r.meta.event_id) != r]
    assert not unexpected, f"{len(unexpected)} records the oracle does not emit, e.g. {unexpected[0]}"
    assert {r.meta.event_id for r in got} == set(expected)
    assert {r.action for r in expected.values()} == {"reserve", "adjust", "release"}  # the scenario covers all

    # Fold the topic through the ATP core, in partition order with every duplicate.
    skus: dict[str, SkuState] = {}
    for records in by_partition.values():
        for r in records:
            state = skus.get(r.sku) or new_state(r.sku)
            skus[r.sku] = apply_reservation(state, POLICY, order_id=r.order_id, action=r.action, quantity=r.quantity,
                                            at=r.meta.occurred_at, location=r.location).state
    want: dict[str, dict[str, int]] = defaultdict(dict)  # sku -> order -> units
    for order_id, final in expected_states.items():
        if final.cancelled_at is None:
            for sku, units in sku_totals(final.lines).items():
                want[sku][order_id] = units
    for sku, state in skus.items():
        held = {oid: r.quantity for oid, r in state.reservations.items() if r.status == "open" and r.quantity}
        assert held == want.get(sku, {}), sku
        assert levels(state, POLICY.online_locations).reserved == sum(want.get(sku, {}).values())
    assert set(want) <= set(skus)
