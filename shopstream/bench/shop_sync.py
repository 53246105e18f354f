"""`shopstream bench shop-sync`: throughput of the shop stock sync worker (measured, never asserted).

Per run: a fresh embedded Tansu broker and registry (unless KAFKA_BOOTSTRAP_SERVERS names a broker),
the topology under a fresh prefix, N AtpLevel records pre-loaded on `inventory.atp` (4 partitions,
encoded before the clock starts), then the real shop sync processor on the runner
(`ShopSyncProcessor`, in a thread) reads them, decodes, coalesces, produces SyncShopStock commands,
waits for the broker's confirmation and commits. Two scenarios:

- `distinct`: N different SKUs, one change each — an ERP snapshot: every record becomes a command;
- `burst`:    N changes over N/100 SKUs (100 changes each) — coalescing: ~N/100 commands.

Printed per run: records/s from the first record handled to the last one (consume + decode +
coalesce, and the commands sent meanwhile; the first record is not counted), the time from the first
record read to the last command confirmed (this includes the final window), and the decode cost
per record of the worker's fastavro-to-tuple path against the pydantic model path
(`AvroSerde.decode`, the baseline; the ratio is printed). Median over runs.

    shopstream bench shop-sync --records 100000 --runs 3
    shopstream bench shop-sync --single-record-batches   # as `shopstream dev` produces

The preload producer pipelines with large batches (unless `--preload-single`); with single-record
batches a large preload outlives librdkafka's 30 s message timeout and silently loses records.
"""

from __future__ import annotations

import gc
import io
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import fastavro

from shopstream import schemas
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
from shopstream.codecs.avro import frame
from shopstream.config import Settings
from shopstream.kafka import make_producer
from shopstream.processors.inventory.shop_sync_worker import COMMANDS_SENT, AtpDecoder, ShopSyncProcessor
from shopstream.runner import Runner
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import names

SCENARIOS = ("distinct", "burst", "both")

T0_MS = 1_793_577_600_000


def atp_value(header: bytes, sku: str, available: int, version: int) -> bytes:
    """A framed AtpLevel as the inventory worker writes it (one location)."""
    record = atp_level_datum(sku, available + 2, 2, version=version, at_ms=T0_MS, location="default",
                             causation_id=str(uuid.uuid4()))
    buf = io.BytesIO()
    buf.write(header)
    fastavro.schemaless_writer(buf, schemas.parsed_schema("AtpLevel"), record)
    return buf.getvalue()


def changes(scenario: str, n: int) -> list[tuple[str, int, int]]:
    if scenario == "distinct":
        return [(f"SKU-{i:07d}", (i * 7) % 50, 1) for i in range(n)]
    skus = max(1, n // 100)
    return [(f"HOT-{i % skus:05d}", (i * 13) % 40 - 3, i // skus + 1) for i in range(n)]


def decode_rates(serde: AvroSerde, values: list[bytes]) -> dict[str, float]:
    decoder = AtpDecoder(serde)
    out = {}
    for label, fn in (("pydantic", serde.decode), ("fastavro", decoder.decode)):
        fn(values[0])
        started = time.perf_counter()
        for v in values:
            fn(v)
        out[label] = len(values) / (time.perf_counter() - started)
    return out


def run_loop(settings: Settings, n: int, breakdown: bool) -> dict[str, Any]:
    """The processor on the runner in a thread until all `n` records were handled and no window is open."""
    processor = ShopSyncProcessor.create(settings)
    runner = Runner(settings, processor, batch_size=5000, stop=threading.Event())
    spent: defaultdict[str, float] = defaultdict(float)
    seen = {"read": 0, "first": 0.0, "last": 0.0}
    handle = processor.handle

    def counted(record: Any, state: Any) -> Any:
        now = time.perf_counter()
        if not seen["read"]:
            seen["first"] = now
        seen["read"] += 1
        seen["last"] = now
        return handle(record, state)

    processor.handle = counted  # type: ignore[method-assign]
    if breakdown:
        for owner, name in ((runner, "step"), (processor, "tick")):
            original = getattr(owner, name)

            def timed(*args: Any, _f: Any = original, _n: str = name) -> Any:
                started = time.perf_counter()
                try:
                    return _f(*args)
                finally:
                    spent[_n] += time.perf_counter() - started
            setattr(owner, name, timed)
    sent_before = COMMANDS_SENT._value.get()
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and not (seen["read"] >= n and processor.coalescer.pending_count() == 0
                                                   and runner.offsets.in_flight() == 0):
            time.sleep(0.05)
        done = time.perf_counter()
    finally:
        runner.stop.set()
        thread.join(60)
        del runner
        gc.collect()  # the worker's clients sit in reference cycles: free them before the broker stops
    read, first, last = int(seen["read"]), seen["first"], seen["last"]
    if read < n:
        raise BenchError(f"read only {read} of {n} records")
    read_rate = (n - 1) / (last - first) if last > first else float("nan")
    return {"read_rate": read_rate, "total_s": done - first, "commands": int(COMMANDS_SENT._value.get() - sent_before),
            "breakdown": {k: round(v, 2) for k, v in spent.items()}}


def one_run(base: Settings, work: Path, scenario: str, records: int, *, window_ms: int, single_record_batches: bool,
            preload_single: bool, breakdown: bool) -> dict[str, Any]:
    with broker_and_registry(work, base.kafka_bootstrap_servers) as (bootstrap, registry_url):
        settings = fresh_settings(bootstrap, registry_url, single_record_batches=single_record_batches,
                                  shop_sync_window_ms=window_ms)
        serde = AvroSerde(make_registry_client(registry_url))
        topic = settings.topic(names.INVENTORY_ATP)
        header = frame(serde.schema_id(topic, "io.shopstream.events.AtpLevel"))
        values = [(sku.encode(), atp_value(header, sku, a, v)) for sku, a, v in changes(scenario, records)]
        producer = make_producer(settings, **({"batch.num.messages": 1, "message.timeout.ms": 600_000}
                                              if preload_single else
                                              {"linger.ms": 50, "batch.num.messages": 10000}))
        produce_all(producer, topic, values, timeout_s=900)
        del producer  # freed before the broker stops, or librdkafka keeps reconnecting to it
        rates = decode_rates(serde, [v for _, v in values[:20_000]])
        return {**run_loop(settings, records, breakdown), **rates}


def _bench_scenario(base: Settings, work: Path, name: str, records: int, runs: int, **options: Any) -> None:
    """`runs` runs of one scenario, a line each, then the medians and the decode ratio against pydantic."""
    def line(n: int, r: dict[str, Any]) -> str:
        return (f"{name} run {n}: {r['read_rate']:>9,.0f} records/s read->coalesced, "
                f"{r['total_s']:.2f} s first read -> last command confirmed ({r['commands']} commands), "
                f"decode {r['fastavro']:,.0f}/s fastavro vs {r['pydantic']:,.0f}/s pydantic"
                + (f", {r['breakdown']}" if options["breakdown"] else ""))

    results = repeat(runs, lambda _: one_run(base, work, name, records, **options), line)
    fastavro_rate = median(results, lambda r: r["fastavro"])
    pydantic_rate = median(results, lambda r: r["pydantic"])
    print(f"{name} median of {runs}: {median(results, lambda r: r['read_rate']):,.0f} records/s, "
          f"{median(results, lambda r: r['total_s']):.2f} s to the last command; "
          f"decode fastavro {fastavro_rate:,.0f}/s, baseline pydantic {pydantic_rate:,.0f}/s "
          f"(ratio {fastavro_rate / pydantic_rate:.1f}x)", flush=True)


def run_shop_sync_bench(base: Settings, records: int, runs: int, *, window_ms: int = 2000, scenario: str = "both",
                        single_record_batches: bool = False, preload_single: bool = False,
                        breakdown: bool = False) -> int:
    """Run the shop-sync benchmark and print its figures; returns the exit code.

    `base` names the broker (KAFKA_BOOTSTRAP_SERVERS; empty: a fresh embedded Tansu per run).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}")
    with work_dir("bench-shop-sync-") as work:
        for name in ["distinct", "burst"] if scenario == "both" else [scenario]:
            _bench_scenario(base, work, name, records, runs, window_ms=window_ms,
                            single_record_batches=single_record_batches, preload_single=preload_single,
                            breakdown=breakdown)
    return 0
