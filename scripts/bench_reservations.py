"""Order reservations per second through one orders worker (measured, never asserted).

Starts the embedded Tansu broker (unless KAFKA_BOOTSTRAP_SERVERS names one) and the embedded schema
registry, applies the topology under a fresh topic prefix, runs one `shopstream worker orders`
subprocess and, after a warm-up of 50 orders, produces N OrderPlaced events with two lines each
(values encoded before the clock starts) and measures the time from the first produce until the
last of the 2*N ReservationChanged records is read back from `inventory.reservations`. Every run
gets a fresh stack: the embedded broker keeps everything in memory and slows down as it fills (the
same batch took 2-4x longer on a third run against the same broker). Prints every run and the
median. `--without-reservations` runs the same worker with the reservation step stubbed out and
counts `orders.state` instead: the baseline of what the reservations cost.

    .venv/bin/python scripts/bench_reservations.py --orders 5000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from shopstream.config import Settings, load_settings
from shopstream.embedded import free_port, start_tansu
from shopstream.kafka import make_producer
from shopstream.registry.service import start_in_thread
from shopstream.registry.store import SchemaStore
from shopstream.schemas.models import EventMeta, Money, OrderLine, OrderPlaced
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology

STUBBED = ("import shopstream.processors.orders.app as app; from shopstream.config import load_settings; "
           "app.reservation_changes = lambda *args: []; app.run(load_settings(), web_port={port})")


class Reader(threading.Thread):
    """Reads `inventory.reservations` (or `orders.state`) from the start; counts records per run tag."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(4)])
        self.counts: dict[str, int] = {}
        self.last_read: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            for msg in self.consumer.consume(1000, 0.05):
                key = msg.key()
                if msg.error() or not isinstance(key, bytes):
                    continue
                tag = key.split(b"-", 1)[0].decode()  # keys are "<tag>-..."
                with self.lock:
                    self.counts[tag] = self.counts.get(tag, 0) + 1
                    self.last_read[tag] = time.monotonic()
        self.consumer.close()

    def wait(self, tag: str, count: int, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if self.counts.get(tag, 0) >= count:
                    return self.last_read[tag]
            time.sleep(0.01)
        raise TimeoutError(f"{tag}: {self.counts.get(tag, 0)} of {count} records after {timeout_s} s")


def orders(serde: AvroSerde, topic: str, tag: str, count: int, skus: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of `count` OrderPlaced events, two lines each, over `skus` SKUs keyed `<tag>-...`."""
    base = datetime(2026, 11, 6, 8, 0, tzinfo=UTC)
    price = Money(amount=Decimal("9.90"), currency="EUR")
    out = []
    for i in range(count):
        at = base + timedelta(milliseconds=i)
        lines = [OrderLine(line_id=f"{i}-{n}", sku=f"{tag}-SKU-{(2 * i + n) % skus:05d}", quantity=1 + n,
                           unit_price=price) for n in range(2)]
        event = OrderPlaced(meta=EventMeta(event_id=str(uuid.uuid4()), event_type="OrderPlaced", occurred_at=at,
                                           recorded_at=at, source="shopify"),
                            order_id=f"{tag}-{i}", placed_at=at, currency="EUR",
                            total=Money(amount=Decimal("29.70"), currency="EUR"), lines=lines)
        out.append((event.order_id.encode(), serde.encode(topic, event)))
    return out


def start_worker(settings: Settings, log: Path, stubbed: bool) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "SCHEMA_REGISTRY_URL": settings.schema_registry_url, "SHOPSTREAM_TOPIC_PREFIX": settings.topic_prefix,
           "KAFKA_SESSION_TIMEOUT_S": "6", "SHOPSTREAM_LOG_LEVEL": "WARNING",
           "SHOPSTREAM_STATE_DIR": str(log.parent), "SHOPSTREAM_SINGLE_RECORD_BATCHES": "true"}
    port = free_port()
    cmd = ([sys.executable, "-c", STUBBED.format(port=port)] if stubbed
           else [sys.executable, "-m", "shopstream.cli", "worker", "orders", "--port", str(port)])
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def one_run(args: argparse.Namespace, run: int) -> float:
    """A fresh stack (broker unless given, registry, topic prefix, worker), a warm-up, then the timed batch."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-reservations-"))
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not bootstrap:
        broker = start_tansu(log_path=tmp / "tansu.log")
        bootstrap = broker.bootstrap
    registry = start_in_thread(SchemaStore(tmp / "registry.json"))
    worker = None
    reader = None
    try:
        settings = load_settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry.url,
                                 topic_prefix=f"bench{uuid.uuid4().hex[:6]}.", single_record_batches=True,
                                 kafka_session_timeout_s=6)
        apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
        serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        topic = settings.topic("shop.orders")
        # Counted on orders.state for the baseline (no reservations), else on inventory.reservations.
        out_topic, per_order = (("orders.state", 1) if args.without_reservations else ("inventory.reservations", 2))
        reader = Reader(bootstrap, settings.topic(out_topic))
        reader.start()
        worker = start_worker(settings, tmp / "worker.log", args.without_reservations)
        producer = make_producer(settings)

        def produce(batch: list[tuple[bytes, bytes]]) -> None:
            for key, value in batch:
                while True:
                    try:
                        producer.produce(topic, key=key, value=value)
                        break
                    except BufferError:
                        producer.poll(0.01)
                producer.poll(0)
            assert producer.flush(60) == 0

        produce(orders(serde, topic, "warm", 50, 50))
        reader.wait("warm", 50 * per_order, 180)
        tag = f"r{run}"
        batch = orders(serde, topic, tag, args.orders, args.skus)
        start = time.monotonic()
        produce(batch)
        produced = time.monotonic() - start
        seconds = reader.wait(tag, args.orders * per_order, 900) - start
        print(f"run {run + 1}: {seconds:.2f} s  {args.orders / seconds:,.0f} orders/s  "
              f"{args.orders * per_order / seconds:,.0f} {out_topic} records/s  (produce {produced:.2f} s)",
              flush=True)
        return seconds
    finally:
        if reader is not None:
            reader.stopped.set()
            reader.join(timeout=5)
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        registry.stop()
        if broker is not None:
            broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skus", type=int, default=2000, help="distinct SKUs the orders spread over")
    parser.add_argument("--without-reservations", action="store_true",
                        help="baseline: the same worker with the reservation step stubbed out")
    args = parser.parse_args()
    what = ("baseline: reservations stubbed, counting orders.state" if args.without_reservations
            else "counting inventory.reservations")
    print(f"{args.orders} orders x 2 lines per run, {args.skus} SKUs, {what}; a fresh stack per run", flush=True)
    results = [one_run(args, run) for run in range(args.runs)]
    median = statistics.median(results)
    per_order = 1 if args.without_reservations else 2
    print(f"median of {args.runs}: {median:.2f} s  {args.orders / median:,.0f} orders/s  "
          f"{args.orders * per_order / median:,.0f} records/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
