"""A stock feed for the inventory worker's integration tests, and the oracle of every SKU's ATP.

Three ERP exports of `SKUS` SKUs go through the real ingest (StockSnapshotBatch records); the third
repeats the second's figures an hour later (every row unchanged: only publishing them, the default,
lets its count settle the shipments dispatched since the second). Reservations for `ORDERS` orders
(reserve, sometimes adjust, then some released or shipped) stream onto `inventory.reservations`. The
oracle is the pure core over each SKU's events; versions are not compared (the worker interleaves the
two topics as records arrive, and the number of intermediate changes depends on that), the final
figures are (a snapshot's effect depends only on the newest as_of per location, a reservation's only
on its own order's events).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shopstream.config import Settings
from shopstream.processors.inventory.atp import apply_reservation, apply_snapshot
from shopstream.processors.inventory.config import load_inventory_config
from shopstream.processors.inventory.figures import Levels, levels
from shopstream.processors.inventory.sku_state import SkuState, new_state
from shopstream.schemas.models import AtpLevel, EventMeta, ReservationChanged
from shopstream.serde import AvroSerde
from tests.kafka_read import read_all

SKUS = 3000
ORDERS = 600
T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
#: The three exports' as_of: the second counts the shipments of the first 30 min, the third all of them.
AS_OFS = [T0, T0 + timedelta(minutes=30), T0 + timedelta(minutes=60)]


def export(run: int) -> bytes:
    """The ERP's CSV export number `run` (0, 1, 2) of all SKUs."""
    run = min(run, 1)  # the third export repeats the second's figures
    return ("sku,on_hand,safety_stock\n" + "".join(
        f"C-{i:05d},{(i * 7 + run * 3) % 40},{i % 3}\n" for i in range(SKUS))).encode()


def reservations(rng: random.Random) -> list[ReservationChanged]:
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
                    sku=f"C-{sku:05d}", order_id=order_id, action=action, quantity=quantity))
    return out


def oracle(reservations: list[ReservationChanged], as_ofs: list[datetime]) -> dict[str, SkuState]:
    """Every SKU's state after all exports (`as_ofs[run]` each) and all reservations, by the pure core."""
    config = load_inventory_config()
    states: dict[str, SkuState] = {}
    for run, as_of in enumerate(as_ofs):
        for line in export(run).decode().splitlines()[1:]:
            sku, on_hand, safety = line.split(",")
            state = states.get(sku) or new_state(sku)
            states[sku] = apply_snapshot(state, config.policy(sku), location="default", on_hand=int(on_hand),
                                         safety_stock=int(safety), incoming=None, as_of=as_of).state
    for ev in reservations:
        state = states.get(ev.sku) or new_state(ev.sku)
        states[ev.sku] = apply_reservation(state, config.policy(ev.sku), order_id=ev.order_id, action=ev.action,
                                           quantity=ev.quantity, at=ev.meta.occurred_at).state
    return states


def latest_levels(settings: Settings, serde: AvroSerde) -> dict[str, AtpLevel]:
    """The highest-version AtpLevel per SKU on `inventory.atp`."""
    latest: dict[str, AtpLevel] = {}
    for msg in read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.atp"), idle_s=1.0):
        level = serde.decode(msg.value())
        assert isinstance(level, AtpLevel)
        if level.sku not in latest or level.version >= latest[level.sku].version:
            latest[level.sku] = level
    return latest


def figures(level: AtpLevel | Levels) -> tuple[int | None, ...]:
    """An ATP level's figures (what the oracle decides; versions and causes are not)."""
    return (level.on_hand, level.reserved, level.safety_stock, level.incoming, level.available)


def matches(latest: dict[str, AtpLevel], expected: dict[str, SkuState]) -> bool:
    """Every expected SKU has a level, with the oracle's available figure."""
    config = load_inventory_config()
    return all(sku in latest and latest[sku].available == levels(state, config.policy(sku).online_locations).available
               for sku, state in expected.items())


def mismatch(latest: dict[str, AtpLevel], expected: dict[str, SkuState], log: Path) -> str:
    """The SKUs whose available figure differs from the oracle's, and the worker log's tail."""
    config = load_inventory_config()
    want = {sku: levels(state, config.policy(sku).online_locations).available for sku, state in expected.items()}
    wrong = [(sku, latest[sku].available if sku in latest else None, available)
             for sku, available in want.items() if sku not in latest or latest[sku].available != available]
    return f"{len(wrong)} SKUs differ, e.g. (sku, got, want) {wrong[:10]}\n" + log.read_text(errors="replace")[-3000:]
