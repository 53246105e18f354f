"""`shopstream bench webhook-latency`: webhook accepted → order readable on the read API.

Starts `shopstream dev` (embedded broker and registry unless the environment names
real ones), posts signed Shopify `orders/create` webhooks at a steady pace, and for each order measures
the time from the webhook's 200 (Kafka confirmed) until `GET /v1/orders/{id}` answers 200.
The baseline printed beside it is the webhook round trip itself, measured in the same run.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from shopstream.bench.common import BenchError, median, percentile, repeat, spawn_dev, work_dir
from shopstream.dev.shopify_samples import get_json, post_shopify, shopify_order

BENCH_SECRET = "bench-secret"


@dataclass
class RunResult:
    latencies_ms: list[float]
    webhook_ms: list[float]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def _one_run(connectors: str, api: str, token: str, orders: int, pace_per_s: float) -> RunResult:
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
                if get_json(f"{api}/v1/orders/{order_id}", token)[0] == 200:
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
            raise BenchError(f"webhook answered {status}: {body}")
        now = time.perf_counter()
        webhook_ms.append((now - t0) * 1000)
        with lock:
            pending[str(base_id + i)] = now
        time.sleep(max(0.0, 1 / pace_per_s - (time.perf_counter() - t0)))
    finished_posting.set()
    poller.join(timeout=120)
    elapsed = time.perf_counter() - started
    if pending:
        raise BenchError(f"{len(pending)} orders never became readable")
    return RunResult(latencies_ms=list(done.values()), webhook_ms=webhook_ms, seconds=elapsed)


def run_webhook_bench(orders: int = 300, runs: int = 3, pace_per_s: float = 100.0) -> int:
    """Run the webhook-latency benchmark and print its figures; returns the exit code."""
    with work_dir("shopstream-bench-") as tmp:
        token = uuid.uuid4().hex[:8]
        dev = spawn_dev(tmp, SHOPSTREAM_TOPIC_PREFIX=f"bench{token}.", SHOPSTREAM_SHOPIFY_SECRET=BENCH_SECRET,
                        SHOPSTREAM_REDIS_PREFIX=f"bench:{token}:", SHOPSTREAM_LOG_LEVEL="WARNING")
        try:
            dev.wait_ready()
            print("warming up (consumer groups join, schemas register) …", flush=True)
            _one_run(dev.connectors_url, dev.api_url, dev.admin_token, 20, pace_per_s)
            results = repeat(runs, lambda _: _one_run(dev.connectors_url, dev.api_url, dev.admin_token, orders,
                                                               pace_per_s),
                             lambda n, r: f"run {n}: {len(r.latencies_ms)} orders, {r.rate:.0f} orders/s offered, "
                                          f"accepted→readable p50 {percentile(r.latencies_ms, 50):.1f} ms, "
                                          f"p99 {percentile(r.latencies_ms, 99):.1f} ms, "
                                          f"max {max(r.latencies_ms):.1f} ms; "
                                          f"webhook round trip p50 {percentile(r.webhook_ms, 50):.1f} ms")
        finally:
            dev.stop()
    p50 = median(results, lambda r: percentile(r.latencies_ms, 50))
    p99 = median(results, lambda r: percentile(r.latencies_ms, 99))
    hook = median(results, lambda r: percentile(r.webhook_ms, 50))
    print(f"median of {runs} runs: accepted→readable p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
          f"baseline webhook round trip p50 {hook:.1f} ms (ratio {p50 / hook:.1f}x)")
    return 0
