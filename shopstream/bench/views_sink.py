"""`shopstream bench views-sink`: records per second of the view sink on AtpLevel records (measured, never asserted).

Starts the embedded Tansu broker (unless KAFKA_BOOTSTRAP_SERVERS names one) and the embedded schema
registry, applies the topology under a fresh topic prefix, produces N AtpLevel records (one location
each, distinct SKUs, like a bulk ERP snapshot) onto `inventory.atp` *before* the clock starts, then
runs the view sink (`shopstream.views.sink.run_sink`, in this process, in a thread) against the
real Redis and measures until every record is counted as written (`shopstream_records_in_total`
outcome ok|duplicate, read in-process). Reports per run:

- steady: N / (last batch written - first batch written): the sink's own rate;
- total: N / (done - sink started), which includes the consumer-group join (~half of
  KAFKA_SESSION_TIMEOUT_S on Tansu);
- cpu: CPU seconds of this process over the run (the sink thread + librdkafka's threads).

Every run gets a fresh topic prefix and Redis key prefix (deleted afterwards); the broker keeps
everything in memory, so runs after the first see a fuller broker. The machine is shared: the
median of `--runs` is the figure to quote.

    shopstream bench views-sink --records 100000 --runs 3
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import redis

from shopstream.bench.common import (
    BenchError,
    atp_level_datum,
    broker_and_registry,
    fresh_settings,
    median,
    produce_all,
    repeat,
    work_dir,
)
from shopstream.config import Settings
from shopstream.kafka import make_producer
from shopstream.metrics import RECORDS_IN
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.views.sink import ATP_TOPIC, PROCESSOR, run_sink

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def written(topic: str) -> float:
    return sum(RECORDS_IN.labels(PROCESSOR, topic, outcome)._value.get() for outcome in ("ok", "duplicate"))


def atp_records(serde: AvroSerde, topic: str, records: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of `records` AtpLevels: distinct SKUs, one location each, like a bulk ERP snapshot."""
    for i in range(records):
        sku = f"SKU-{i:07d}"
        datum = atp_level_datum(sku, i % 50 + 10, i % 3, version=1, at_ms=T0_MS, location="main")
        yield sku.encode(), serde.encode_datum(topic, "AtpLevel", datum)


def one_run(bootstrap: str, registry_url: str, records: int, batch_size: int,
            single_record_batches: bool) -> dict[str, float]:
    settings = fresh_settings(bootstrap, registry_url, single_record_batches=single_record_batches)
    topic = settings.topic(ATP_TOPIC)
    serde = AvroSerde(make_registry_client(registry_url))
    produce_all(make_producer(settings), topic, atp_records(serde, topic, records), flush_every=5000)
    before = written(topic)
    stop = threading.Event()
    started = time.perf_counter()
    cpu0 = time.process_time()
    sink = threading.Thread(target=run_sink, args=(settings, stop),
                            kwargs={"metrics_port": 0, "batch_size": batch_size}, daemon=True)
    sink.start()
    first = None
    while True:
        done = written(topic) - before
        now = time.perf_counter()
        if first is None and done > 0:
            first = now
        if done >= records:
            break
        if now - started > 600:
            raise BenchError(f"only {done:.0f} of {records} written after 600 s")
        time.sleep(0.01)
    cpu = time.process_time() - cpu0
    stop.set()
    sink.join(timeout=30)
    client = redis.Redis.from_url(settings.redis_url)
    stored = sum(1 for _ in client.scan_iter(match=f"{settings.redis_key_prefix}atp:*", count=10_000))
    for keys in _chunks(list(client.scan_iter(match=f"{settings.redis_key_prefix}*", count=10_000)), 10_000):
        client.delete(*keys)
    client.close()
    if stored != records:
        raise BenchError(f"{stored} SKUs in Redis, expected {records}")
    assert first is not None
    return {"steady": records / (now - first), "total": records / (now - started), "cpu_s": cpu,
            "join_s": first - started}


def _chunks(items: list[bytes], size: int) -> list[list[bytes]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_views_sink_bench(base: Settings, records: int, runs: int, batch_size: int = 1000,
                         single_record_batches: bool = False) -> int:
    """Run the views-sink benchmark and print its figures; returns the exit code.

    `base` names the broker (KAFKA_BOOTSTRAP_SERVERS; empty: one embedded Tansu for all runs) and Redis.
    """
    with work_dir("bench-views-") as work, \
            broker_and_registry(work, base.kafka_bootstrap_servers) as (bootstrap, registry_url):
        results = repeat(
            runs, lambda _: one_run(bootstrap, registry_url, records, batch_size, single_record_batches),
            lambda n, r: f"run {n}: steady {r['steady']:,.0f} records/s, total {r['total']:,.0f} records/s "
                         f"(group join {r['join_s']:.1f} s), cpu {r['cpu_s']:.1f} s "
                         f"= {r['cpu_s'] / records * 1e6:.0f} us/record")
    print(f"median of {runs}: steady {median(results, lambda r: r['steady']):,.0f} records/s, "
          f"total {median(results, lambda r: r['total']):,.0f} records/s, "
          f"{records:,} AtpLevel records, batch {batch_size}")
    return 0
