"""`shopstream bench reservations`: order reservations per second through the orders worker(s).

Per run: a fresh embedded Tansu broker (unless KAFKA_BOOTSTRAP_SERVERS names one) and embedded schema
registry, the topology under a fresh topic prefix, `--workers` `shopstream worker orders` subprocesses in
one consumer group (4 partitions: 4, 2 or 1 partitions per worker for 1, 2 or 4 workers); after a
warm-up of 50 orders it produces N OrderPlaced events with two lines each (values encoded before the
clock starts) and measures the time from the first produce until the last of the 2*N
ReservationChanged records is read back from `inventory.reservations`, and the workers' own CPU
seconds over the same span (per order: its cost, which moves far less with other users' load than
the wall time; the rest of the wall time is the broker and the round trips). Every run gets a fresh stack:
the embedded broker keeps everything in memory and slows down as it fills (the same batch took 2-4x
longer on a third run against the same broker). Prints every run and the median.

`--single-record-batches` makes the worker and the bench's producer send one record per batch
(SHOPSTREAM_SINGLE_RECORD_BATCHES=true), the embedded broker's old workaround: every output is then
its own request, which costs ~7x the wall time (the worker's CPU is not the limit).

`--without-reservations` runs the same worker with the reservation step stubbed out and counts
`orders.state` instead: the baseline of what the reservations cost. `--with-baseline` runs both,
interleaved (reservations, then the stubbed worker, per run), and prints the ratio of the medians.

    shopstream bench reservations --orders 5000 --runs 3
    shopstream bench reservations --workers 2
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from shopstream.bench.common import (
    BenchError,
    broker_and_registry,
    fresh_settings,
    median,
    process_cpu_seconds,
    produce_all,
    work_dir,
)
from shopstream.children import spawn, stop
from shopstream.config import Settings
from shopstream.dev.ports import free_port
from shopstream.kafka import make_producer
from shopstream.schemas.models import EventMeta, Money, OrderLine, OrderPlaced
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import names

PARTITIONS = 4  # of the order co-partition group in the base topology
STUBBED = ("import shopstream.processors.orders.app as app; from shopstream.config import load_settings; "
           "app.reservation_changes = lambda *args: []; app.run(load_settings(), web_port={port})")


class Reader(threading.Thread):
    """Reads `inventory.reservations` (or `orders.state`) from the start; counts records per run tag."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
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
        raise BenchError(f"{tag}: {self.counts.get(tag, 0)} of {count} records after {timeout_s} s")


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


def start_worker(settings: Settings, log: Path, stubbed: bool, port: int) -> subprocess.Popen[bytes]:
    """An orders worker on the run's stack (admin on `port`), with the settings' single-record-batches choice."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "SCHEMA_REGISTRY_URL": settings.schema_registry_url, "SHOPSTREAM_TOPIC_PREFIX": settings.topic_prefix,
           "KAFKA_SESSION_TIMEOUT_S": "6", "SHOPSTREAM_LOG_LEVEL": "WARNING",
           "SHOPSTREAM_STATE_DIR": str(log.parent),
           "SHOPSTREAM_SINGLE_RECORD_BATCHES": str(settings.single_record_batches).lower()}
    cmd = ([sys.executable, "-c", STUBBED.format(port=port)] if stubbed
           else [sys.executable, "-m", "shopstream.cli", "worker", "orders", "--port", str(port)])
    with open(log, "ab") as out:
        return spawn(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_split(ports: list[int], topic: str, timeout_s: float) -> None:
    """Until every worker's `/readyz` names its share of `topic`'s partitions (so no rebalance comes mid-run)."""
    deadline = time.monotonic() + timeout_s
    held: list[set[str]] = []
    while time.monotonic() < deadline:
        held = [{p for p in assigned(port) if p.startswith(f"{topic}[")} for port in ports]
        if all(held) and len(set().union(*held)) == sum(map(len, held)) == PARTITIONS:  # disjoint, complete
            return
        time.sleep(0.2)
    raise BenchError(f"the workers did not split {topic}'s {PARTITIONS} partitions within {timeout_s:.0f} s: {held}")


def assigned(port: int) -> set[str]:
    """The `topic[partition]`s a worker's `/readyz` names (empty while it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:  # 503 while unassigned or restoring: the body still says what it holds
        body = exc.read()
    except OSError:
        return set()
    return set(json.loads(body)["checks"]["partitions"])


@dataclass(frozen=True)
class Variant:
    """What a run counts: ReservationChanged records (2 per order), or orders.state with reservations stubbed."""

    stubbed: bool

    @property
    def topic(self) -> str:
        return names.ORDERS_STATE if self.stubbed else names.INVENTORY_RESERVATIONS

    @property
    def per_order(self) -> int:
        return 1 if self.stubbed else 2

    @property
    def label(self) -> str:
        return "baseline (reservations stubbed) " if self.stubbed else ""


def one_run(base: Settings, work: Path, variant: Variant, orders_n: int, skus: int,
            run: int, single_record_batches: bool = False, workers: int = 1) -> tuple[float, float, float]:
    """A fresh stack (broker unless given, registry, topic prefix, workers), a warm-up, then the timed batch.

    Returns (seconds from the first produce to the last record read, seconds to produce the batch,
    the workers' CPU seconds from the first produce to the last record read).
    """
    work = work / f"run-{run}-{variant.topic}"  # the worker's own state dir (Faust data) per run
    work.mkdir()
    with broker_and_registry(work, base.kafka_bootstrap_servers) as (bootstrap, registry_url):
        settings = fresh_settings(bootstrap, registry_url, single_record_batches=single_record_batches)
        serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        topic = settings.topic(names.SHOP_ORDERS)
        reader = Reader(bootstrap, settings.topic(variant.topic))
        reader.start()
        logs = [work / f"worker-{i}.log" for i in range(workers)]
        ports = [free_port() for _ in logs]
        procs = [start_worker(settings, log, variant.stubbed, port) for log, port in zip(logs, ports, strict=True)]
        try:
            wait_split(ports, topic, 180)
            producer = make_producer(settings)
            # the warm-up spreads over every partition, so it is read back only once each worker has its share
            produce_all(producer, topic, orders(serde, topic, "warm", 50, 50), timeout_s=60)
            reader.wait("warm", 50 * variant.per_order, 180)
            tag = f"r{run}"
            batch = orders(serde, topic, tag, orders_n, skus)
            cpu_before = sum(process_cpu_seconds(w.pid) for w in procs)
            start = time.monotonic()
            produce_all(producer, topic, batch, timeout_s=60)
            produced = time.monotonic() - start
            del producer  # freed before the broker stops, or librdkafka logs the disconnect at exit
            done = reader.wait(tag, orders_n * variant.per_order, 900)
            return done - start, produced, sum(process_cpu_seconds(w.pid) for w in procs) - cpu_before
        except BenchError as exc:
            tails = "\n".join(f"{log.name} (exit code {w.poll()}):\n{log.read_text(errors='replace')[-2000:]}"
                              for log, w in zip(logs, procs, strict=True) if log.exists())
            raise BenchError(f"{exc}; log tails:\n{tails}") from None
        finally:
            reader.stopped.set()
            reader.join(timeout=5)
            for w in procs:
                stop(w, 20)


def run_reservations_bench(base: Settings, orders_n: int, runs: int, skus: int, without_reservations: bool = False,
                           with_baseline: bool = False, single_record_batches: bool = False,
                           workers: int = 1) -> int:
    """Run the reservations benchmark and print its figures; returns the exit code.

    `base` names the broker (KAFKA_BOOTSTRAP_SERVERS; empty: a fresh embedded Tansu per run).
    """
    variants = ([Variant(stubbed=False), Variant(stubbed=True)] if with_baseline
                else [Variant(stubbed=without_reservations)])
    what = " and ".join(f"counting {v.topic}" + (" (baseline: reservations stubbed)" if v.stubbed else "")
                        for v in variants)
    batches = "single-record batches" if single_record_batches else "batched produce (as shopstream dev)"
    print(f"{orders_n} orders x 2 lines per run, {skus} SKUs, {what}; {batches}; {workers} worker(s), "
          f"{4 / workers:g} partition(s) each; a fresh stack per run", flush=True)
    results: list[list[float]] = []
    cpus: list[list[float]] = []
    with work_dir("bench-reservations-") as work:
        for n in range(1, runs + 1):
            timed, cpu = [], []
            for variant in variants:
                seconds, produced, worker_cpu = one_run(base, work, variant, orders_n, skus, n, single_record_batches,
                                                            workers)
                timed.append(seconds)
                cpu.append(worker_cpu)
                print(f"{variant.label}run {n}: {seconds:.2f} s  {orders_n / seconds:,.0f} orders/s  "
                      f"{orders_n * variant.per_order / seconds:,.0f} {variant.topic} records/s  "
                      f"(produce {produced:.2f} s; worker CPU {worker_cpu:.2f} s, "
                      f"{worker_cpu / orders_n * 1000:.2f} ms/order)", flush=True)
            results.append(timed)
            cpus.append(cpu)
    for i, variant in enumerate(variants):
        m = median(results, itemgetter(i))
        c = median(cpus, itemgetter(i))
        print(f"{variant.label}median of {runs} runs: {m:.2f} s  {orders_n / m:,.0f} orders/s  "
              f"{orders_n * variant.per_order / m:,.0f} {variant.topic} records/s  "
              f"worker CPU {c:.2f} s ({c / orders_n * 1000:.2f} ms/order, {orders_n / c:,.0f} orders per CPU second)")
    if with_baseline:
        ratio = median(results, lambda r: r[0]) / median(results, lambda r: r[1])
        print(f"with reservations / baseline (same runs, interleaved): {ratio:.2f}x the time")
    return 0
