"""SIGKILL the inventory worker while a large snapshot and a stream of orders are in flight, restart it,
and every SKU's ATP equals the oracle (issue 3).

The snapshot goes through the real ingest (StockSnapshotBatch records, 3,000 SKUs) and a second,
later snapshot follows it; reservations for 600 orders (reserve, adjust, some released, some shipped)
stream onto `inventory.reservations` at the same time. A third export repeats the second's figures
an hour later: every row is unchanged, and only publishing them (the default) lets its count settle
the shipments dispatched since the second, which the oracle expects. The worker is killed once it has emitted
part of the ATP records, restarted, and the latest AtpLevel of every SKU must carry the figures the
pure core computes over that SKU's events. Versions are not compared: the worker interleaves the two
topics as records arrive, and the number of intermediate changes depends on that interleaving; the
final figures do not (a snapshot's effect depends only on the newest as_of per location, a
reservation's only on its own order's events).
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.connectors.ingest import ingest_erp_stock
from shopstream.processors.inventory.atp import apply_reservation, apply_snapshot
from shopstream.processors.inventory.config import load_inventory_config
from shopstream.processors.inventory.figures import levels
from shopstream.processors.inventory.sku_state import SkuState, new_state
from shopstream.schemas.models import AtpLevel, EventMeta, ReservationChanged
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.workers import start_worker, stop

pytestmark = pytest.mark.broker

SKUS = 3000
ORDERS = 600
T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def _export(run: int) -> bytes:
    run = min(run, 1)  # the third export repeats the second's figures
    return ("sku,on_hand,safety_stock\n" + "".join(
        f"C-{i:05d},{(i * 7 + run * 3) % 40},{i % 3}\n" for i in range(SKUS))).encode()


def _reservations(rng: random.Random) -> list[ReservationChanged]:
    """Per order 1 to 3 SKUs: reserve, sometimes adjust, then release or ship; times increase per order."""
    out: list[ReservationChanged] = []
    for n in range(ORDERS):
        order_id = f"O-{n}"
        at = T0 + timedelta(minutes=1 + n % 50)
        for sku in rng.sample(range(SKUS), rng.randint(1, 3)):
            steps: list[tuple[str, int]] = [("reserve", rng.randint(1, 4))]
            if rng.random() < 0.3:
                steps.append(("adjust", rng.randint(0, 5)))
            end = rng.random()
            if end < 0.2:
                steps.append(("release", 0))
            elif end < 0.4:
                steps.append(("ship", steps[-1][1]))
            for i, (action, quantity) in enumerate(steps):
                when = at + timedelta(seconds=i)
                out.append(ReservationChanged(
                    meta=EventMeta(event_id=str(uuid.uuid4()), event_type="ReservationChanged", occurred_at=when,
                                   recorded_at=when, source="shopstream.orders"),
                    sku=f"C-{sku:05d}", order_id=order_id, action=action, quantity=quantity))  # type: ignore[arg-type]
    return out


def _oracle(reservations: list[ReservationChanged], as_ofs: list[datetime]) -> dict[str, SkuState]:
    config = load_inventory_config()
    states: dict[str, SkuState] = {}
    for run, as_of in enumerate(as_ofs):
        for line in _export(run).decode().splitlines()[1:]:
            sku, on_hand, safety = line.split(",")
            state = states.get(sku) or new_state(sku)
            states[sku] = apply_snapshot(state, config.policy(sku), location="default", on_hand=int(on_hand),
                                         safety_stock=int(safety), incoming=None, as_of=as_of).state
    for ev in reservations:
        state = states.get(ev.sku) or new_state(ev.sku)
        states[ev.sku] = apply_reservation(state, config.policy(ev.sku), order_id=ev.order_id, action=ev.action,
                                           quantity=ev.quantity, at=ev.meta.occurred_at).state
    return states


def _latest(settings: Settings, serde: AvroSerde) -> dict[str, AtpLevel]:
    latest: dict[str, AtpLevel] = {}
    for msg in read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.atp"), idle_s=1.0):
        level = serde.decode(msg.value())
        assert isinstance(level, AtpLevel)
        if level.sku not in latest or level.version >= latest[level.sku].version:
            latest[level.sku] = level
    return latest


def test_sigkill_during_snapshot_and_orders_then_restart_matches_oracle(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    rng = random.Random(7)
    reservations = _reservations(rng)
    # The second snapshot counts the shipments of the first 30 min, the third (same figures) all of them.
    as_ofs = [T0, T0 + timedelta(minutes=30), T0 + timedelta(minutes=60)]
    expected = _oracle(reservations, as_ofs)
    config = load_inventory_config()

    log = tmp_path / "worker.log"
    worker = start_worker("inventory", settings, log)
    topic = settings.topic("inventory.reservations")
    producer = make_producer(settings)
    try:
        report = ingest_erp_stock(settings, _export(0), file_name="first.csv", as_of=as_ofs[0])
        assert report.published == SKUS
        # Orders stream in while the worker works through the snapshot; the kill comes mid-way.
        half = len(reservations) // 2
        for ev in reservations[:half]:
            producer.produce(topic, key=ev.sku.encode(), value=serde.encode(topic, ev))
        assert producer.flush(10) == 0
        deadline = time.monotonic() + 120
        while len(read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.atp"), idle_s=0.3)) < SKUS // 3:
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.3)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        report = ingest_erp_stock(settings, _export(1), file_name="second.csv", as_of=as_ofs[1])
        assert report.published == SKUS
        for ev in reservations[half:]:
            producer.produce(topic, key=ev.sku.encode(), value=serde.encode(topic, ev))
        assert producer.flush(10) == 0
        worker = start_worker("inventory", settings, log)
        report = ingest_erp_stock(settings, _export(2), file_name="third.csv", as_of=as_ofs[2])
        assert (report.published, report.unchanged) == (SKUS, SKUS)

        def settled() -> dict[str, AtpLevel] | None:
            latest = _latest(settings, serde)
            done = len(latest) == len(expected) and all(
                latest[sku].available == levels(state, config.policy(sku).online_locations).available
                for sku, state in expected.items())
            return latest if done else None

        deadline = time.monotonic() + 240
        latest = settled()
        while latest is None:
            assert time.monotonic() < deadline, _mismatch(_latest(settings, serde), expected, log)
            time.sleep(2)
            latest = settled()
        for sku, state in expected.items():
            want = levels(state, config.policy(sku).online_locations)
            got = latest[sku]
            assert (got.on_hand, got.reserved, got.safety_stock, got.incoming, got.available) == (
                want.on_hand, want.reserved, want.safety_stock, want.incoming, want.available), sku
    finally:
        stop(worker)


def _mismatch(latest: dict[str, AtpLevel], expected: dict[str, SkuState], log: Path) -> str:
    config = load_inventory_config()
    want = {sku: levels(state, config.policy(sku).online_locations).available for sku, state in expected.items()}
    wrong = [(sku, latest[sku].available if sku in latest else None, available)
             for sku, available in want.items() if sku not in latest or latest[sku].available != available]
    return f"{len(wrong)} SKUs differ, e.g. (sku, got, want) {wrong[:10]}\n" + log.read_text(errors="replace")[-3000:]
