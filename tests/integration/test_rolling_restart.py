"""Two replicas per processor, a rolling restart while traffic flows, and nothing lost (issue 14, scale-out).

One stack runs two `shopstream worker orders` and two `shopstream worker inventory` processes, as
Kubernetes replicas would (same consumer group per processor, real processes on the real broker).
What it proves:
- the partitions split: each replica holds whole partition numbers of all its inputs (co-partitioned,
  so a key's state and its records stay together), the two are disjoint and together hold all of them
  (each replica's `/readyz` names what it holds);
- a rolling restart loses nothing: replica A of each processor is stopped with SIGTERM (exit 0), its
  partner takes all partitions, A is started again and holds its share again; then the same for B.
  A feed streams all the while (tests/orders_feed.py's order lifecycle, tests/stock_feed.py's three
  ERP exports and reservations; every restart window sees records produced in it), and at the end
  every order's latest `orders.state` and every SKU's latest `inventory.atp` equal the oracles
  computed from the feed (the pure cores over each key's events): a record skipped across a revoke,
  or a state that did not move with its partition (changelog → restore), shows as a difference. A
  record read twice (the uncommitted tail a new owner re-reads) is absorbed by the cores' dedup
  (event ids, per-order reservations), as in production.
The orders workers also emit reservations for the order feed's SKUs (TSHIRT-BLK-M, MUG-WHT): traffic for
the inventory workers, outside the stock oracle, which covers the `C-` SKUs of the exports. Those two
are stocked first (ORDER_SKUS_STOCK each): unstocked, every reservation past zero would alert a review
item for every open order of the SKU (`inventory.app.oversold`), a cascade growing with the square of
the orders that would dominate the run instead of the restarts.
"""

from __future__ import annotations

import queue
import random
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.connectors.ingest import ingest_erp_stock
from shopstream.dev.ports import free_port
from shopstream.processors.inventory.app import InventoryProcessor
from shopstream.processors.inventory.config import load_inventory_config
from shopstream.processors.inventory.figures import levels
from shopstream.processors.orders.app import OrdersProcessor
from shopstream.schemas.models import OrderState, ReservationChanged
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import latest_order_states
from tests.kafka_write import make_producer
from tests.orders_feed import diagnose, differences, essence, lifecycle_events, produce_events
from tests.orders_feed import oracle as order_oracle
from tests.stock_feed import AS_OFS, export, figures, latest_levels, matches, mismatch, reservations
from tests.stock_feed import oracle as stock_oracle
from tests.workers import assigned_partitions, start_worker, stop, wait_for

pytestmark = pytest.mark.broker

ORDERS = 800
ORDER_SKUS_STOCK = b"sku,on_hand,safety_stock\nTSHIRT-BLK-M,100000,0\nMUG-WHT,100000,0\n"
#: The feed in six segments: before the restarts, one per restart window (A down, A back, B down,
#: B back), after; each segment in CHUNKS chunks, produced PACE_S apart by one feeder thread.
SEGMENTS, CHUNKS, PACE_S = 6, 6, 0.4


@dataclass
class Replica:
    """One worker process of a processor, with its own admin port and log."""

    processor: str
    name: str
    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / "worker.log"

    def start(self, settings: Settings) -> None:
        self.folder.mkdir(exist_ok=True)
        self.proc = start_worker(self.processor, settings, self.log, port=self.port)

    def stop(self) -> int:
        assert self.proc is not None
        code = stop(self.proc)
        self.proc = None
        return code

    def holds(self) -> set[str]:
        """Its assigned topic-partitions (empty while it does not answer); fails if the process died."""
        assert self.proc is None or self.proc.poll() is None, f"{self.name} died:\n{self._tail()}"
        return assigned_partitions(self.port) or set()

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


class Feeder:
    """Produces queued chunks (callables) one by one, PACE_S apart, in a thread; records when each went out."""

    def __init__(self) -> None:
        self.chunks: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self.sent: list[float] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (chunk := self.chunks.get()) is not None:
            try:
                chunk()
            except BaseException as exc:  # surfaced by `finish`
                self.errors.append(exc)
                return
            self.sent.append(time.monotonic())
            time.sleep(PACE_S)

    def add(self, chunks: list[Callable[[], None]]) -> None:
        for chunk in chunks:
            self.chunks.put(chunk)

    def sent_between(self, start: float, end: float) -> int:
        return sum(start <= t <= end for t in self.sent)

    def finish(self) -> None:
        """Wait until everything queued went out; fail with the feeder's error."""
        self.chunks.put(None)
        self.thread.join(120)
        assert not self.errors, self.errors
        assert not self.thread.is_alive(), "the feeder did not finish"


def _split(a: set[str], b: set[str], universe: set[str], topics: list[str]) -> bool:
    """Both hold partitions, disjoint, all of them together, and each whole partition numbers of every input."""
    if not a or not b or a & b or a | b != universe:
        return False
    for held in (a, b):
        numbers = {tp.rsplit("[", 1)[1].rstrip("]") for tp in held}
        if held != {f"{t}[{n}]" for t in topics for n in numbers}:
            return False
    return True


def _positions(settings: Settings, group: str, topics: list[str]) -> str:
    """Per input partition: the group's committed offset / the high watermark (forensics on a failure)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": settings.topic(group),
                         "enable.auto.commit": False})
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(4)]
        committed = consumer.committed(tps, timeout=10)
        return "; ".join(f"{tp.topic}[{tp.partition}] {tp.offset}/{consumer.get_watermark_offsets(tp, timeout=5)[1]}"
                         for tp in committed)
    finally:
        consumer.close()


def _segments(items: list, count: int) -> list[list]:
    size = -(-len(items) // count)
    return [items[i * size:(i + 1) * size] for i in range(count)]


def test_rolling_restart_of_two_replicas_per_processor_matches_the_oracles(settings: Settings,
                                                                            tmp_path: Path) -> None:
    topology = load_topology()
    apply_topology(topology, settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    orders = lifecycle_events(ORDERS)
    expected_orders = order_oracle(orders)
    stock = reservations(random.Random(11))
    expected_stock = stock_oracle(stock, AS_OFS)

    inputs = {"orders": OrdersProcessor.inputs, "inventory": InventoryProcessor.inputs}
    topics = {name: [settings.topic(t) for t in names] for name, names in inputs.items()}
    universe = {name: {f"{t}[{p}]" for t in topics[name] for p in range(topology.copartition_partitions(names))}
                for name, names in inputs.items()}
    replicas = {name: (Replica(name, f"{name}-a", tmp_path / f"{name}-a"),
                       Replica(name, f"{name}-b", tmp_path / f"{name}-b")) for name in inputs}
    logs = [r.log for pair in replicas.values() for r in pair]

    def split() -> bool:
        return all(_split(a.holds(), b.holds(), universe[name], topics[name]) for name, (a, b) in replicas.items())

    def taken_over(index: int) -> Callable[[], bool]:  # the partner of the stopped replica holds every partition
        return lambda: all(pair[1 - index].holds() == universe[name] for name, pair in replicas.items())

    producer = make_producer(settings)
    reservations_topic = settings.topic("inventory.reservations")

    def send_orders(events: list) -> Callable[[], None]:
        return lambda: produce_events(settings, serde, events, producer)

    def send_reservations(events: list[ReservationChanged]) -> Callable[[], None]:
        def send() -> None:
            for ev in events:
                producer.produce(reservations_topic, key=ev.sku.encode(), value=serde.encode(reservations_topic, ev))
            assert producer.flush(30) == 0
        return send

    def send_export(run: int) -> Callable[[], None]:
        def send() -> None:
            report = ingest_erp_stock(settings, export(run), file_name=f"export-{run}.csv", as_of=AS_OFS[run])
            assert report.published == len(expected_stock)
        return send

    # Per segment: its chunks of orders and reservations interleaved; the exports lead segments 0, 2 and 4.
    segments: list[list[Callable[[], None]]] = []
    for s, (order_part, stock_part) in enumerate(zip(_segments(orders, SEGMENTS), _segments(stock, SEGMENTS),
                                                     strict=True)):
        chunks = [send_export(s // 2)] if s % 2 == 0 else []
        for o, r in zip(_segments(order_part, CHUNKS), _segments(stock_part, CHUNKS), strict=True):
            chunks += [send_orders(o), send_reservations(r)]
        segments.append(chunks)

    assert ingest_erp_stock(settings, ORDER_SKUS_STOCK, file_name="order-skus.csv", as_of=AS_OFS[0]).published == 2
    started = time.monotonic()
    for pair in replicas.values():
        for replica in pair:
            replica.start(settings)
    feeder: Feeder | None = None
    try:
        wait_for(split, 90, logs, "both replicas of each processor to hold their share")
        print(f"split after {time.monotonic() - started:.1f} s: "
              + "; ".join(f"{r.name} {sorted(r.holds())}" for pair in replicas.values() for r in pair))
        feeder = Feeder()
        feeder.add(segments[0])
        # Segment 0's export is every SKU's first load: ~1,500 AtpLevels and as many changelog records per
        # inventory replica, confirmed as one batch. A SIGTERM stops after the current batch, and one landing
        # at the start of that batch kept the replica past the 20 s stop in 2 of 2 fresh-clone CI runs with
        # a crash loop running beside them (a SIGKILL then: safe, not clean). The restarts begin once that
        # load is in; orders, reservations and the next two exports still stream through every window.
        wait_for(lambda: sum(sku.startswith("C-") for sku in latest_levels(settings, serde)) == len(expected_stock),
                 120, logs, "the first export's ATP levels")
        windows: list[tuple[str, float, float]] = []
        for index in (0, 1):
            down = time.monotonic()
            feeder.add(segments[1 + 2 * index])
            codes = {pair[index].name: pair[index].stop() for pair in replicas.values()}
            assert set(codes.values()) == {0}, f"a SIGTERM'd replica did not exit cleanly: {codes}"
            wait_for(taken_over(index), 60, logs, f"the partners of replica {'ab'[index]} to take every partition")
            back = time.monotonic()
            windows.append((f"{'ab'[index]} down", down, back))
            feeder.add(segments[2 + 2 * index])
            for pair in replicas.values():
                pair[index].start(settings)
            wait_for(split, 90, logs, f"replica {'ab'[index]} to hold its share again")
            windows.append((f"{'ab'[index]} back", back, time.monotonic()))
        rolled = time.monotonic()
        feeder.add(segments[5])
        feeder.finish()
        print("restart windows (s, chunks produced in it): " + ", ".join(
            f"{what} {end - start:.1f} s {feeder.sent_between(start, end)}" for what, start, end in windows))
        for what, start, end in windows:
            assert feeder.sent_between(start, end) > 0, f"no traffic while {what}"

        latest_orders: dict[str, OrderState] = {}

        def orders_settled() -> bool:
            nonlocal latest_orders
            latest_orders = latest_order_states(settings.kafka_bootstrap_servers, settings.topic("orders.state"),
                                                serde)
            return not differences(latest_orders, expected_orders)

        def stock_settled() -> bool:
            return matches(latest_levels(settings, serde), expected_stock)

        deadline = time.monotonic() + 120
        while not orders_settled() and time.monotonic() < deadline:
            assert split(), "a replica died or lost its partitions after the restarts"
            time.sleep(1)
        wrong = differences(latest_orders, expected_orders)
        if wrong:
            diagnose(settings, wrong[:3])
        assert not wrong, (f"{len(wrong)} of {len(expected_orders)} orders differ from the oracle, e.g. "
                           f"{wrong[0]}: {essence(latest_orders[wrong[0]]) if wrong[0] in latest_orders else None}"
                           f" != {essence(expected_orders[wrong[0]])}")
        while not stock_settled() and time.monotonic() < deadline:
            time.sleep(1)
        latest_stock = latest_levels(settings, serde)
        if not matches(latest_stock, expected_stock):
            changelog = settings.topic("inventory-atp-changelog")
            print("inventory positions:", _positions(settings, "inventory", [*topics["inventory"], changelog]))
        assert matches(latest_stock, expected_stock), mismatch(latest_stock, expected_stock,
                                                               replicas["inventory"][0].log)
        config = load_inventory_config()
        for sku, state in expected_stock.items():
            assert figures(latest_stock[sku]) == figures(levels(state, config.policy(sku).online_locations)), sku
        print(f"rolled in {rolled - started:.1f} s, settled after {time.monotonic() - started:.1f} s")
    finally:
        if feeder is not None and feeder.thread.is_alive():
            feeder.chunks.put(None)
        for pair in replicas.values():
            for replica in pair:
                if replica.proc is not None:
                    replica.stop()
