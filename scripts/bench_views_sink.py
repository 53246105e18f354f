"""Records per second of the view sink on AtpLevel records (measured, never asserted).

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

    .venv/bin/python scripts/bench_views_sink.py --records 100000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from shopstream.config import Settings, load_settings
from shopstream.embedded import start_tansu
from shopstream.kafka import make_producer
from shopstream.metrics import RECORDS_IN
from shopstream.registry.service import start_in_thread
from shopstream.registry.store import SchemaStore
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.views.sink import ATP_TOPIC, PROCESSOR, run_sink

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def written(topic: str) -> float:
    return sum(RECORDS_IN.labels(PROCESSOR, topic, outcome)._value.get() for outcome in ("ok", "duplicate"))


def produce(settings: Settings, records: int) -> None:
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    topic = settings.topic(ATP_TOPIC)
    producer = make_producer(settings)
    failed: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    for i in range(records):
        sku = f"SKU-{i:07d}"
        on_hand = i % 50 + 10
        datum = {
            "meta": {"event_id": str(uuid.uuid4()), "event_type": "AtpLevel", "occurred_at": T0_MS,
                     "recorded_at": T0_MS, "source": "shopstream.inventory", "source_event_id": None,
                     "correlation_id": None, "causation_id": None},
            "sku": sku, "on_hand": on_hand, "reserved": i % 3, "safety_stock": 0, "incoming": 0,
            "available": on_hand - i % 3, "version": 1, "updated_at": T0_MS,
            "locations": [{"location": "main", "on_hand": on_hand, "reserved": i % 3, "safety_stock": 0,
                           "incoming": 0, "as_of": T0_MS}],
        }
        value = serde.encode_datum(topic, "AtpLevel", datum)
        while True:
            try:
                producer.produce(topic, key=sku.encode(), value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if i % 5000 == 4999:  # bound the queue: records waiting > message.timeout.ms (30 s) would fail
            producer.flush(120)
    if producer.flush(120) != 0 or failed:
        raise RuntimeError(f"the broker did not confirm every record: {len(failed)} failed, e.g. {failed[:3]}")


def one_run(base: Settings, records: int, batch_size: int) -> dict[str, float]:
    token = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={"topic_prefix": f"bench{token}.", "redis_key_prefix": f"bench:{token}:"})
    apply_topology_for(settings)
    produce(settings, records)
    topic = settings.topic(ATP_TOPIC)
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
            raise RuntimeError(f"only {done:.0f} of {records} written after 600 s")
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
        raise RuntimeError(f"{stored} SKUs in Redis, expected {records}")
    assert first is not None
    return {"steady": records / (now - first), "total": records / (now - started), "cpu_s": cpu,
            "join_s": first - started}


def _chunks(items: list[bytes], size: int) -> list[list[bytes]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def apply_topology_for(settings: Settings) -> None:
    from shopstream.topology import load_topology

    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--single-record-batches", action="store_true",
                        help="produce one record per broker batch (the dev stack's Tansu workaround)")
    args = parser.parse_args()

    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    tmp = Path(tempfile.mkdtemp(prefix="bench-views-"))
    if not bootstrap:
        broker = start_tansu(log_path=tmp / "tansu.log")
        bootstrap = broker.bootstrap
    registry = start_in_thread(SchemaStore(tmp / "registry.json"))
    try:
        base = load_settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry.url,
                             kafka_session_timeout_s=6, single_record_batches=args.single_record_batches)
        results = []
        for run in range(1, args.runs + 1):
            r = one_run(base, args.records, args.batch_size)
            results.append(r)
            print(f"run {run}: steady {r['steady']:,.0f} records/s, total {r['total']:,.0f} records/s "
                  f"(group join {r['join_s']:.1f} s), cpu {r['cpu_s']:.1f} s "
                  f"= {r['cpu_s'] / args.records * 1e6:.0f} us/record", flush=True)
        print(f"median of {args.runs}: steady {statistics.median(r['steady'] for r in results):,.0f} records/s, "
              f"total {statistics.median(r['total'] for r in results):,.0f} records/s, "
              f"{args.records:,} AtpLevel records, batch {args.batch_size}")
    finally:
        registry.stop()
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
