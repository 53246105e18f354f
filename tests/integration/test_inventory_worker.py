"""The inventory worker on the real broker: its outputs equal the pure core's oracle.

StockSnapshots and ReservationChanged events for a few SKUs (spread over the partitions) go to
`inventory.stock` / `inventory.reservations` in phases (one topic per phase, see `_phases`); the
real `shopstream worker inventory` subprocess turns them into AtpLevels. After each phase the
latest AtpLevel per SKU must equal `levels()` of the pure core over the same events, with one
record per figure change (versions 1..n). Then a duplicate and a stale snapshot, followed by a newer
marker snapshot on the same SKU (same partition, so handled after them): the marker's AtpLevel is
the only new record, and the stale snapshot changed nothing. ReorderRequests (`commands.erp`),
Oversold alerts (`alerts.anomalies`) and review items (`review.queue`) are exactly those the core's
outcomes call for; nothing lands on the DLQs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shopstream.config import Settings
from shopstream.kafka import partition_for
from shopstream.processors.inventory.app import NEVER_COUNTED
from shopstream.processors.inventory.atp import Outcome, Policy, apply_reservation, apply_snapshot
from shopstream.processors.inventory.config import load_inventory_config
from shopstream.processors.inventory.figures import levels
from shopstream.processors.inventory.sku_state import SkuState, new_state
from shopstream.schemas.models import (
    AnomalyAlert,
    AtpLevel,
    EventMeta,
    ReorderRequest,
    ReservationChanged,
    ReviewItem,
    StockSnapshot,
    StockSnapshotBatch,
    StockSnapshotLine,
)
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.workers import start_worker, stop, wait_for

pytestmark = pytest.mark.broker

BASE = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
Event = StockSnapshot | ReservationChanged


def t(minute: int) -> datetime:
    return BASE + timedelta(minutes=minute)


def _meta(event_type: str, minute: int, source: str) -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid4()), event_type=event_type, occurred_at=t(minute),
                     recorded_at=t(minute), source=source)


def snapshot(sku: str, on_hand: int, minute: int, safety_stock: int | None = None,
             incoming: int | None = None) -> StockSnapshot:
    return StockSnapshot(meta=_meta("StockSnapshot", minute, "erp"), sku=sku, location="default", on_hand=on_hand,
                         safety_stock=safety_stock, incoming=incoming, as_of=t(minute))


def reservation(sku: str, order_id: str, action: Any, quantity: int, minute: int,
                location: str | None = None) -> ReservationChanged:
    return ReservationChanged(meta=_meta("ReservationChanged", minute, "shopstream.orders"), sku=sku,
                              order_id=order_id, action=action, quantity=quantity, location=location)


def outcomes(events: Sequence[Event], policy: Policy) -> list[Outcome]:
    """The pure core's outcomes over the events of one SKU."""
    state: SkuState | None = None
    out: list[Outcome] = []
    for ev in events:
        state = state or new_state(ev.sku)
        if isinstance(ev, StockSnapshot):
            result = apply_snapshot(state, policy, location=ev.location, on_hand=ev.on_hand,
                                    safety_stock=ev.safety_stock, incoming=ev.incoming, as_of=ev.as_of)
        else:
            result = apply_reservation(state, policy, order_id=ev.order_id, action=ev.action, quantity=ev.quantity,
                                       at=ev.meta.occurred_at, location=ev.location)
        state = result.state
        out.append(result)
    return out


def oracle(events: Sequence[Event], policy: Policy) -> tuple[SkuState, int]:
    """The pure core over the events of one SKU: final state and how many of them changed a figure."""
    results = outcomes(events, policy)
    return results[-1].state, sum(r.changed for r in results)


def assert_matches(level: AtpLevel, state: SkuState, policy: Policy) -> None:
    expected = levels(state, policy.online_locations, policy.include_incoming)
    assert (level.sku, level.on_hand, level.reserved, level.safety_stock, level.incoming, level.available,
            level.version, level.updated_at) == (
        expected.sku, expected.on_hand, expected.reserved, expected.safety_stock, expected.incoming,
        expected.available, expected.version, expected.updated_at)
    assert [(loc.location, loc.on_hand, loc.reserved, loc.safety_stock, loc.incoming, loc.as_of)
            for loc in level.locations] == [
        (loc.location, loc.on_hand, loc.reserved, loc.safety_stock, loc.incoming, loc.as_of or NEVER_COUNTED)
        for loc in expected.locations]
    # A location no snapshot counted yet (known from a reservation only) reports the epoch.
    assert all(loc.as_of == NEVER_COUNTED for loc, exp in zip(level.locations, expected.locations, strict=True)
               if exp.as_of is None)


def _levels_by_sku(settings: Settings, serde: AvroSerde) -> dict[str, list[AtpLevel]]:
    out: dict[str, list[AtpLevel]] = {}
    for msg in read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.atp"), idle_s=0.5):
        level = serde.decode(msg.value())
        assert isinstance(level, AtpLevel)
        assert msg.key() == level.sku.encode()
        out.setdefault(level.sku, []).append(level)
    return out


def _phases() -> list[dict[str, list[Event]]]:
    """Events per SKU in phases that alternate between the two input topics.

    Kafka orders records within a partition only, so a SKU's snapshot (inventory.stock) and its
    reservations (inventory.reservations) may be read in any interleaving: the final figures do not
    depend on it (the core's property), but versions and signals on the way do. The test therefore
    lets the worker finish one phase (one topic) before it produces the next."""
    skus = [f"SKU-{n}" for n in range(8)]
    phases: list[dict[str, list[Event]]] = [{}, {}, {}, {}]
    for n, sku in enumerate(skus):
        phases[0][sku] = [snapshot(sku, 10 + n, 0, safety_stock=1, incoming=5)]
        phases[1][sku] = [
            reservation(sku, f"o-{n}-a", "reserve", 2, 1),
            reservation(sku, f"o-{n}-b", "reserve", 1 + n % 3, 2),
            reservation(sku, f"o-{n}-a", "reserve", 2, 1),            # redelivery: nothing
            reservation(sku, f"o-{n}-b", "release", 0, 3),
        ]
        phases[2][sku] = [snapshot(sku, 20 + n, 4, safety_stock=1, incoming=5)]
        phases[3][sku] = [reservation(sku, f"o-{n}-a", "ship", 2, 5)] if n % 2 else []
    # A reservation at a location that does not sell online and was never counted: listed, not summed.
    phases[1]["SKU-2"].append(reservation("SKU-2", "o-outlet", "reserve", 1, 4, location="outlet"))
    # Low stock: crosses the reorder point (5 in the shipped file), is oversold, recovers, crosses again.
    low = "SKU-low"
    phases[0][low] = [snapshot(low, 4, 0, safety_stock=0)]
    phases[1][low] = [
        reservation(low, "o-x", "reserve", 3, 1),
        reservation(low, "o-y", "reserve", 3, 2),   # available -2: o-y oversold
        reservation(low, "o-z", "reserve", 1, 3),   # available -3: o-z and o-y make up the deficit
    ]
    phases[2][low] = [snapshot(low, 10, 4, safety_stock=0), snapshot(low, 20, 5, safety_stock=0)]  # back above
    phases[3][low] = [reservation(low, "o-w", "reserve", 10, 6)]  # available 3: crosses again
    return phases


def test_atp_levels_equal_the_core_and_duplicates_emit_nothing(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    config = load_inventory_config()  # the worker runs with the shipped policy file
    stock, reservations = settings.topic("inventory.stock"), settings.topic("inventory.reservations")
    producer = make_producer(settings)

    def produce(events: Sequence[Event]) -> None:
        for ev in events:
            topic = stock if isinstance(ev, StockSnapshot) else reservations
            producer.produce(topic, key=ev.sku.encode(), value=serde.encode(topic, ev))
        assert producer.flush(10) == 0

    def caught_up(expected: dict[str, tuple[SkuState, int]]) -> dict[str, list[AtpLevel]] | None:
        got = _levels_by_sku(settings, serde)
        done = all(sku in got and max(lv.version for lv in got[sku]) == state.version
                   for sku, (state, _) in expected.items())
        return got if done else None

    log = tmp_path / "worker.log"
    worker = start_worker("inventory", settings, log)
    try:
        history: dict[str, list[Event]] = {}
        for phase in _phases():
            for sku, events in phase.items():
                history.setdefault(sku, []).extend(events)
            # Interleave the SKUs, keeping each SKU's own order (its events share one partition).
            rounds = max(len(evs) for evs in phase.values())
            produce([phase[sku][i] for i in range(rounds) for sku in phase if i < len(phase[sku])])
            expected = {sku: oracle(evs, config.policy(sku)) for sku, evs in history.items()}
            got = wait_for(lambda e=expected: caught_up(e), 120, log)  # type: ignore[misc]
        skus = sorted(history)
        for sku in skus:
            state, changes = expected[sku]
            assert [lv.version for lv in got[sku]] == list(range(1, changes + 1)), sku
            assert_matches(got[sku][-1], state, config.policy(sku))
            assert len({lv.meta.event_id for lv in got[sku]}) == changes

        # A duplicate of the last snapshot, a stale one (older as_of, other figures), then a newer
        # snapshot as a marker, all on one SKU's inventory.stock partition (so handled in this order).
        sku = "SKU-3"
        last = [ev for ev in history[sku] if isinstance(ev, StockSnapshot)][-1]
        duplicate = last.model_copy(update={"meta": _meta("StockSnapshot", 4, "erp")})
        stale = snapshot(sku, 999, 2, safety_stock=0, incoming=0)
        marker = snapshot(sku, last.on_hand + 4, 30, safety_stock=1, incoming=5)
        produce([duplicate, stale, marker])
        history[sku] += [duplicate, stale, marker]
        policy = config.policy(sku)
        state, changes = oracle(history[sku], policy)
        before = len(got[sku])
        assert changes == before + 1  # only the marker changes a figure

        got = wait_for(lambda: caught_up({sku: (state, changes)}), 60, log)
        assert [lv.version for lv in got[sku]] == list(range(1, changes + 1))
        assert_matches(got[sku][-1], state, policy)
        assert got[sku][-1].on_hand - got[sku][-2].on_hand == 4
        assert all(lv.on_hand != 999 for lv in got[sku])  # the stale snapshot was never applied
        for other in skus:
            if other != sku:
                assert len(got[other]) == expected[other][1]
        _assert_derived_outputs(settings, serde, {s: outcomes(history[s], config.policy(s)) for s in skus}, log)
        assert read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.reservations.dlq"),
                        partitions=1, idle_s=0.2) == []

        # Poison: undecodable bytes and a snapshot not keyed by its SKU go to the DLQ, nothing else moves.
        wrong = snapshot("SKU-0", 77, 40)
        producer.produce(stock, key=b"SKU-0", value=b"\x00\x00not avro")
        producer.produce(stock, key=b"SKU-1", value=serde.encode(stock, wrong))
        assert producer.flush(10) == 0
        parked = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(read_all(
            settings.kafka_bootstrap_servers, settings.topic("inventory.stock.dlq"), partitions=1, idle_s=0.3)),
            30, log)
        stages = {m.key(): dict(m.headers() or [])["shopstream.dlq.stage"] for m in parked}
        assert stages == {b"SKU-0": b"deserialize", b"SKU-1": b"process"}
        after = _levels_by_sku(settings, serde)
        assert {s: len(lv) for s, lv in after.items()} == {s: len(lv) for s, lv in got.items()}
    finally:
        stop(worker)


def _assert_derived_outputs(settings: Settings, serde: AvroSerde, results: dict[str, list[Outcome]],
                            log: Path) -> None:
    """ReorderRequests, Oversold alerts and review items are exactly those the core's outcomes call for."""
    reorders = {(sku, r.levels.available, r.levels.incoming) for sku, rs in results.items()
                for r in rs if r.reorder_crossed}
    alerts = {(sku, r.levels.version, ",".join(r.oversold_orders)) for sku, rs in results.items()
              for r in rs if r.oversold_orders}
    reviews = {(order_id, sku, r.levels.version) for sku, rs in results.items() for r in rs
               for order_id in r.newly_oversold}
    assert reorders and alerts and reviews  # the scenario exercises all three

    def read(name: str) -> list[Any]:
        return [serde.decode(m.value()) for m in read_all(settings.kafka_bootstrap_servers, settings.topic(name),
                                                          idle_s=0.3)]

    def complete() -> tuple[list[Any], list[Any], list[Any]] | None:
        got = read("commands.erp"), read("alerts.anomalies"), read("review.queue")
        return got if tuple(map(len, got)) == (len(reorders), len(alerts), len(reviews)) else None

    erp, anomalies, queue = wait_for(complete, 30, log)
    assert all(isinstance(r, ReorderRequest) for r in erp)
    assert {(r.sku, r.available, r.incoming) for r in erp} == reorders
    for r in erp:
        assert r.reorder_point == 5 and r.suggested_quantity == max(0, 10 - r.available - (r.incoming or 0))
    assert all(isinstance(a, AnomalyAlert) and a.kind == "oversold" for a in anomalies)
    assert {(a.subject, int(a.evidence["version"]), a.evidence["orders"]) for a in anomalies} == alerts
    assert all(isinstance(i, ReviewItem) and i.kind == "oversold" for i in queue)
    assert {(i.order_id, i.details["sku"], int(i.details["atp_version"])) for i in queue} == reviews


def _batch(lines: Sequence[tuple[str, int]], minute: int, location: str = "default") -> StockSnapshotBatch:
    return StockSnapshotBatch(meta=_meta("StockSnapshotBatch", minute, "erp"), location=location, as_of=t(minute),
                              lines=[StockSnapshotLine(sku=sku, on_hand=on_hand, safety_stock=1)
                                     for sku, on_hand in lines])


def test_snapshot_batches_apply_like_one_snapshot_per_line(settings: Settings, tmp_path: Path) -> None:
    """Each line of a StockSnapshotBatch is a StockSnapshot of its SKU; a misplaced line parks the batch."""
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    config = load_inventory_config()
    stock, reservations = settings.topic("inventory.stock"), settings.topic("inventory.reservations")
    partitions = next(tp.partitions for tp in load_topology().topics if tp.name == "inventory.stock")
    by_partition: dict[int, list[str]] = {}
    for i in range(40):
        sku = f"BULK-{i}"
        by_partition.setdefault(partition_for(sku.encode(), partitions), []).append(sku)
    producer = make_producer(settings)
    history: dict[str, list[Event]] = {}

    def send_batch(partition: int, lines: list[tuple[str, int]], minute: int) -> None:
        batch = _batch(lines, minute)
        producer.produce(stock, key=lines[0][0].encode(), value=serde.encode(stock, batch), partition=partition)
        for sku, on_hand in lines:  # what the oracle sees: one snapshot per line
            history.setdefault(sku, []).append(StockSnapshot(
                meta=batch.meta, sku=sku, location=batch.location, on_hand=on_hand, safety_stock=1, incoming=None,
                as_of=batch.as_of))

    log = tmp_path / "worker.log"
    worker = start_worker("inventory", settings, log)
    try:
        for partition, skus in by_partition.items():
            send_batch(partition, [(sku, 10 + n) for n, sku in enumerate(skus)], 0)
        # A reservation in between, then a second snapshot: the repeat of a figure is a duplicate.
        first = by_partition[min(by_partition)][0]
        ev = reservation(first, "O-1", "reserve", 3, 1)
        producer.produce(reservations, key=first.encode(), value=serde.encode(reservations, ev))
        history[first].append(ev)
        for partition, skus in by_partition.items():
            send_batch(partition, [(sku, 10 + n if n % 2 else 20 + n) for n, sku in enumerate(skus)], 2)
        assert producer.flush(10) == 0
        expected = {sku: oracle(evs, config.policy(sku)) for sku, evs in history.items()}

        def caught_up() -> dict[str, list[AtpLevel]] | None:
            got = _levels_by_sku(settings, serde)
            done = all(sku in got and got[sku][-1].version == st.version for sku, (st, _) in expected.items())
            return got if done else None

        got = wait_for(caught_up, 120, log)
        for sku, (_, changes) in expected.items():
            assert [lv.version for lv in got[sku]] == list(range(1, changes + 1)), sku
            # The last AtpLevel shows the state of the last change (a repeated figure only moves as_of).
            last_change = [r for r in outcomes(history[sku], config.policy(sku)) if r.changed][-1]
            assert_matches(got[sku][-1], last_change.state, config.policy(sku))

        # A batch holding a SKU of another partition goes to the DLQ whole; nothing of it applies.
        p0, p1 = sorted(by_partition)[:2]
        send_batch(p0, [(by_partition[p0][0], 999), (by_partition[p1][0], 999)], 5)
        assert producer.flush(10) == 0
        parked = wait_for(lambda: read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.stock.dlq"),
                                            partitions=1, idle_s=0.3), 30, log)
        assert len(parked) == 1
        headers = dict(parked[0].headers() or [])
        assert headers["shopstream.dlq.stage"] == b"process"
        assert b"belongs to partition" in headers["shopstream.dlq.error.message"]
        assert all(lv.on_hand != 999 for lvs in _levels_by_sku(settings, serde).values() for lv in lvs)
    finally:
        stop(worker)


def test_a_sku_held_by_thousands_of_open_orders_is_written_in_small_records_and_restores(
        settings: Settings, tmp_path: Path) -> None:
    """7,500 open reservations of one SKU (a flash sale, nothing shipped): the SKU as one changelog record
    passed the broker's 1 MB limit at ~6,500 of these and halted the worker (exit 76). Each record stays
    small, and a restarted worker restores every reservation from the changelog."""
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    stock, reservations = settings.topic("inventory.stock"), settings.topic("inventory.reservations")
    producer = make_producer(settings)
    producer.produce(stock, key=b"HOT", value=serde.encode(stock, snapshot("HOT", 100_000, 0)))
    for n in range(7500):
        producer.produce(reservations, key=b"HOT",
                         value=serde.encode(reservations, reservation("HOT", f"O-{n}", "reserve", 1, 1)))
        if n % 1000 == 999:
            producer.poll(0)
    assert producer.flush(30) == 0

    def reserved(expected: int) -> Any:
        levels = _levels_by_sku(settings, serde).get("HOT", [])
        return levels and levels[-1].reserved == expected

    def run_until(expected: int, log: Path) -> None:
        worker = start_worker("inventory", settings, log)
        try:
            wait_for(lambda: reserved(expected), 120, log, what=f"{expected:,} units reserved on HOT")
        finally:
            assert stop(worker) == 0

    run_until(7500, tmp_path / "worker.log")
    sizes = [len(m.value() or b"") for m in read_all(settings.kafka_bootstrap_servers,
                                                       settings.topic("inventory-atp-changelog"), idle_s=0.5)]
    assert len(sizes) >= 7501 and max(sizes) < 2048  # the figures, and each reservation its own record

    producer.produce(reservations, key=b"HOT", value=serde.encode(reservations, reservation("HOT", "O-last", "reserve",
                                                                                         1, 2)))
    assert producer.flush(10) == 0
    run_until(7501, tmp_path / "worker2.log")  # the restored 7,500 and one more
