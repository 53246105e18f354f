"""Throughput of the shop stock sync worker (measured, never asserted).

Per run: a fresh embedded Tansu broker and registry (unless KAFKA_BOOTSTRAP_SERVERS names a broker),
the topology under a fresh prefix, N AtpLevel records pre-loaded on `inventory.atp` (4 partitions,
encoded before the clock starts), then the real `ShopSync` loop in this process reads them, decodes,
coalesces, produces SyncShopStock commands, waits for the broker's confirmation and commits. Two
scenarios:

- `distinct`: N different SKUs, one change each — an ERP snapshot: every record becomes a command;
- `burst`:    N changes over N/100 SKUs (100 changes each) — coalescing: ~N/100 commands.

Printed per run: records/s from the first record read to the last record read (consume + decode +
coalesce, and the commands sent meanwhile), the time from the first record read to the last command
confirmed (this includes the final window), and the decode cost per record of the worker's
fastavro-to-tuple path against the pydantic model path (`AvroSerde.decode`). Median over runs.

    .venv/bin/python scripts/bench_shop_sync.py --records 100000 --runs 3
    .venv/bin/python scripts/bench_shop_sync.py --single-record-batches   # as `shopstream dev` produces

The preload producer pipelines with large batches (unless `--preload-single`); with single-record
batches a large preload outlives librdkafka's 30 s message timeout and silently loses records.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import struct
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import fastavro

from shopstream import schemas
from shopstream.config import Settings, load_settings
from shopstream.embedded import start_tansu
from shopstream.kafka import make_producer
from shopstream.processors.inventory.shop_sync_worker import AtpDecoder, ShopSync
from shopstream.registry.service import start_in_thread
from shopstream.registry.store import SchemaStore
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology

T0_MS = 1_793_577_600_000


def atp_value(header: bytes, sku: str, available: int, version: int) -> bytes:
    """A framed AtpLevel as the inventory worker writes it (one location)."""
    record = {
        "meta": {"event_id": str(uuid.uuid4()), "event_type": "AtpLevel", "occurred_at": T0_MS,
                 "recorded_at": T0_MS, "source": "shopstream.inventory", "source_event_id": None,
                 "correlation_id": None, "causation_id": str(uuid.uuid4())},
        "sku": sku, "on_hand": available + 2, "reserved": 2, "safety_stock": 0, "incoming": 0,
        "available": available, "version": version, "updated_at": T0_MS,
        "locations": [{"location": "default", "on_hand": available + 2, "reserved": 2, "safety_stock": 0,
                       "incoming": 0, "as_of": T0_MS}]}
    buf = io.BytesIO()
    buf.write(header)
    fastavro.schemaless_writer(buf, schemas.parsed_schema("AtpLevel"), record)
    return buf.getvalue()


def changes(scenario: str, n: int) -> list[tuple[str, int, int]]:
    if scenario == "distinct":
        return [(f"SKU-{i:07d}", (i * 7) % 50, 1) for i in range(n)]
    skus = max(1, n // 100)
    return [(f"HOT-{i % skus:05d}", (i * 13) % 40 - 3, i // skus + 1) for i in range(n)]


def decode_rates(serde: AvroSerde, registry_url: str, values: list[bytes]) -> dict[str, float]:
    decoder = AtpDecoder(make_registry_client(registry_url))
    out = {}
    for label, fn in (("pydantic", serde.decode), ("fastavro", decoder.decode)):
        fn(values[0])
        started = time.perf_counter()
        for v in values:
            fn(v)
        out[label] = len(values) / (time.perf_counter() - started)
    return out


def run_loop(settings: Settings, n: int, breakdown: bool) -> dict[str, Any]:
    sync = ShopSync.create(settings, batch_size=5000)
    spent: Counter[str] = Counter()
    if breakdown:
        for name in ("poll_batch", "offer_all", "send_due", "commit"):
            original = getattr(sync, name)

            def timed(*args: Any, _f: Any = original, _n: str = name) -> Any:
                started = time.perf_counter()
                try:
                    return _f(*args)
                finally:
                    spent[_n] += time.perf_counter() - started
            setattr(sync, name, timed)
    read = sent = 0
    first = last_read = None
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            result = sync.step()
            if result.read:
                first = first or time.perf_counter()
                last_read = time.perf_counter()
            read += result.read
            sent += result.sent
            if read >= n and sync.coalescer.pending_count() == 0:
                break
        done = time.perf_counter()
    finally:
        sync.close()
    if not (first and last_read) or read < n:
        raise SystemExit(f"read only {read} of {n} records")
    return {"read_rate": n / (last_read - first), "total_s": done - first, "commands": sent,
            "breakdown": {k: round(v, 2) for k, v in spent.items()}}


def one_run(args: argparse.Namespace, scenario: str, work: Path) -> dict[str, Any]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None if external else start_tansu(log_path=work / "tansu.log")
    registry = start_in_thread(SchemaStore(work / f"registry-{uuid.uuid4().hex[:6]}.json"))
    try:
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        settings = load_settings(kafka_bootstrap_servers=external or (broker.bootstrap if broker else ""),
                                 schema_registry_url=registry.url, topic_prefix=prefix, kafka_session_timeout_s=6,
                                 single_record_batches=args.single_record_batches,
                                 shop_sync_window_ms=args.window_ms)
        apply(load_topology(), settings.kafka_client_config(), prefix=prefix)
        serde = AvroSerde(make_registry_client(registry.url))
        topic = settings.topic("inventory.atp")
        header = struct.pack(">bI", 0, serde.schema_id(topic, "io.shopstream.events.AtpLevel"))
        values = [(sku.encode(), atp_value(header, sku, a, v)) for sku, a, v in changes(scenario, args.records)]
        producer = make_producer(settings, **({"batch.num.messages": 1, "message.timeout.ms": 600_000}
                                              if args.preload_single else
                                              {"linger.ms": 50, "batch.num.messages": 10000}))
        for key, value in values:
            while True:
                try:
                    producer.produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.05)
        if producer.flush(900):
            raise SystemExit("preload not confirmed")
        rates = decode_rates(serde, registry.url, [v for _, v in values[:20_000]])
        return {**run_loop(settings, args.records, args.breakdown), **rates}
    finally:
        registry.stop()
        if broker is not None:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window-ms", type=int, default=2000)
    parser.add_argument("--scenario", choices=["distinct", "burst", "both"], default="both")
    parser.add_argument("--single-record-batches", action="store_true",
                        help="the worker produces one record per batch (SHOPSTREAM_SINGLE_RECORD_BATCHES)")
    parser.add_argument("--preload-single", action="store_true", help="preload inventory.atp one record per batch")
    parser.add_argument("--breakdown", action="store_true", help="time spent per loop phase")
    args = parser.parse_args()
    scenarios = ["distinct", "burst"] if args.scenario == "both" else [args.scenario]
    with tempfile.TemporaryDirectory(prefix="bench-shop-sync-") as tmp:
        for scenario in scenarios:
            runs = []
            for i in range(args.runs):
                r = one_run(args, scenario, Path(tmp))
                runs.append(r)
                print(f"{scenario} run {i + 1}: {r['read_rate']:>9,.0f} records/s read->coalesced, "
                      f"{r['total_s']:.2f} s first read -> last command confirmed ({r['commands']} commands), "
                      f"decode {r['fastavro']:,.0f}/s fastavro vs {r['pydantic']:,.0f}/s pydantic"
                      + (f", {r['breakdown']}" if args.breakdown else ""), flush=True)
            print(f"{scenario} median of {args.runs}: {statistics.median(r['read_rate'] for r in runs):,.0f} "
                  f"records/s, {statistics.median(r['total_s'] for r in runs):.2f} s to the last command; "
                  f"decode fastavro {statistics.median(r['fastavro'] for r in runs):,.0f}/s, pydantic "
                  f"{statistics.median(r['pydantic'] for r in runs):,.0f}/s", flush=True)


if __name__ == "__main__":
    main()
