"""`shopstream bench`: measured, never asserted. Prints events/s and latency percentiles per run and the median.

webhook-latency: starts `shopstream dev` (embedded broker and registry unless the environment names
real ones), posts signed Shopify `orders/create` webhooks at a steady pace, and for each order measures
the time from the webhook's 200 (Kafka confirmed) until `GET /v1/orders/{id}` answers 200.
The baseline printed beside it is the webhook round trip itself, measured in the same run.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from shopstream.config import Settings
from shopstream.demo import get_json, post_shopify, shopify_order
from shopstream.runtime import spawn_dev

BENCH_SECRET = "bench-secret"


@dataclass
class RunResult:
    latencies_ms: list[float]
    webhook_ms: list[float]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _one_run(connectors: str, api: str, orders: int, pace_per_s: float) -> RunResult:
    pending: dict[str, float] = {}
    done: dict[str, float] = {}
    lock = threading.Lock()
    finished_posting = threading.Event()
    webhook_ms: list[float] = []

    def poll() -> None:
        while True:
            with lock:
                todo = list(pending.items())
            if not todo and finished_posting.is_set():
                return
            for order_id, accepted in todo:
                if get_json(f"{api}/v1/orders/{order_id}")[0] == 200:
                    with lock:
                        done[order_id] = (time.perf_counter() - accepted) * 1000
                        pending.pop(order_id, None)
            time.sleep(0.002)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    base_id = int(uuid.uuid4().int % 10**12) * 1000
    started = time.perf_counter()
    for i in range(orders):
        t0 = time.perf_counter()
        status, body = post_shopify(connectors, BENCH_SECRET, "orders/create", shopify_order(base_id + i))
        if status != 200:
            raise RuntimeError(f"webhook answered {status}: {body}")
        now = time.perf_counter()
        webhook_ms.append((now - t0) * 1000)
        with lock:
            pending[str(base_id + i)] = now
        time.sleep(max(0.0, 1 / pace_per_s - (time.perf_counter() - t0)))
    finished_posting.set()
    poller.join(timeout=120)
    elapsed = time.perf_counter() - started
    if pending:
        raise RuntimeError(f"{len(pending)} orders never became readable")
    return RunResult(latencies_ms=list(done.values()), webhook_ms=webhook_ms, seconds=elapsed)


def run_bench(scenario: str, settings: Settings, orders: int = 300, runs: int = 3, pace_per_s: float = 100.0) -> int:
    """Run a benchmark scenario and print its figures; returns the exit code."""
    if scenario != "webhook-latency":
        raise ValueError(f"unknown scenario {scenario}")
    with tempfile.TemporaryDirectory(prefix="shopstream-bench-") as tmp:
        token = uuid.uuid4().hex[:8]
        dev = spawn_dev(Path(tmp), SHOPSTREAM_TOPIC_PREFIX=f"bench{token}.", SHOPSTREAM_SHOPIFY_SECRET=BENCH_SECRET,
                        SHOPSTREAM_REDIS_PREFIX=f"bench:{token}:", SHOPSTREAM_LOG_LEVEL="WARNING")
        try:
            dev.wait_ready()
            print("warming up (consumer groups join, schemas register) …", flush=True)
            _one_run(dev.connectors_url, dev.api_url, 20, pace_per_s)
            results = []
            for n in range(1, runs + 1):
                r = _one_run(dev.connectors_url, dev.api_url, orders, pace_per_s)
                results.append(r)
                print(f"run {n}: {len(r.latencies_ms)} orders, {r.rate:.0f} orders/s offered, "
                      f"accepted→readable p50 {percentile(r.latencies_ms, 50):.1f} ms, "
                      f"p99 {percentile(r.latencies_ms, 99):.1f} ms, max {max(r.latencies_ms):.1f} ms; "
                      f"webhook round trip p50 {percentile(r.webhook_ms, 50):.1f} ms", flush=True)
        finally:
            dev.stop()
    p50 = statistics.median(percentile(r.latencies_ms, 50) for r in results)
    p99 = statistics.median(percentile(r.latencies_ms, 99) for r in results)
    hook = statistics.median(percentile(r.webhook_ms, 50) for r in results)
    print(f"median of {runs} runs: accepted→readable p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
          f"baseline webhook round trip p50 {hook:.1f} ms (ratio {p50 / hook:.1f}x)")
    return 0
