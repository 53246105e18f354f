"""What every `shopstream bench` scenario shares: the stack it measures against, producing, and reporting.

Two ways to get a stack:
- `spawn_dev` (re-exported from `shopstream.dev.runtime`): the whole `shopstream dev` as a child process,
  for scenarios that measure the services end to end (webhook-latency, atp-snapshot);
- `broker_and_registry` + `fresh_settings`: the embedded Tansu broker (unless KAFKA_BOOTSTRAP_SERVERS
  names one) and the embedded schema registry in a thread, under a fresh topic prefix with the topology
  applied, for scenarios that run one component in-process or as a single worker (reservations,
  shop-sync, views-sink).

Reporting: each scenario prints one line per run and then `median of N runs: …`, with ratios against
the baseline measured in the same runs where the scenario has one. Figures are printed, never asserted.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Producer

from shopstream.config import Settings, load_settings
from shopstream.dev.broker import start_tansu
from shopstream.dev.process import DevProcess, spawn_dev
from shopstream.dev.registry.service import start_in_thread
from shopstream.dev.registry.store import SchemaStore
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology_for

__all__ = ["BenchError", "DevProcess", "atp_level_datum", "broker_and_registry", "fresh_settings", "median",
           "percentile", "process_cpu_seconds", "produce_all", "repeat", "spawn_dev", "work_dir"]

R = TypeVar("R")


class BenchError(RuntimeError):
    """A run could not be measured (records lost, a timeout, a wrong result): `shopstream bench` exits 1."""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far (Linux /proc); NaN when it is gone.

    On the shared 2-core machine wall times move with other people's load; a process's CPU time for
    the same work moves much less, so it measures a worker's own cost per record."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(results: Iterable[R], key: Callable[[R], float]) -> float:
    """The median of `key` over the runs' results."""
    return statistics.median(key(r) for r in results)


def repeat(runs: int, one_run: Callable[[int], R], line: Callable[[int, R], str]) -> list[R]:
    """Call `one_run(n)` for n = 1..runs and print `line(n, result)` after each; returns the results."""
    results = []
    for n in range(1, runs + 1):
        result = one_run(n)
        results.append(result)
        print(line(n, result), flush=True)
    return results


@contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder for broker logs and registry storage, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


@contextmanager
def broker_and_registry(work: Path, bootstrap: str = "") -> Iterator[tuple[str, str]]:
    """(bootstrap, registry URL): `bootstrap` if given, else a fresh embedded Tansu; a fresh embedded registry.

    Both embedded parts keep their state in memory or under `work` and are stopped on exit.
    """
    token = uuid.uuid4().hex[:6]
    broker = None if bootstrap else start_tansu(log_path=work / f"tansu-{token}.log")
    try:
        registry = start_in_thread(SchemaStore(work / f"registry-{token}.json"))
        try:
            yield (bootstrap or (broker.bootstrap if broker else "")), registry.url
        finally:
            registry.stop()
    finally:
        if broker is not None:
            broker.stop()


def fresh_settings(bootstrap: str, registry_url: str, **overrides: Any) -> Settings:
    """Settings on that broker and registry under a fresh topic and Redis key prefix, the topology applied.

    Consumer groups use a 6 s session timeout (joins take about half of it on Tansu).
    """
    token = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {"kafka_bootstrap_servers": bootstrap, "schema_registry_url": registry_url,
                              "topic_prefix": f"bench{token}.", "redis_key_prefix": f"bench:{token}:",
                              "kafka_session_timeout_s": 6, **overrides}
    settings = load_settings(**values)
    apply_topology(load_topology_for(settings), settings.kafka_client_config(), prefix=settings.topic_prefix)
    return settings


def produce_all(producer: Producer, topic: str, records: Iterable[tuple[bytes, bytes]], *,
                flush_every: int = 0, timeout_s: float = 120.0) -> None:
    """Produce (key, value) records, waiting when the local queue is full; raise unless the broker confirmed all.

    `flush_every` > 0 waits for confirmation every that many records: records that wait longer than
    `message.timeout.ms` (librdkafka default 30 s) in the queue would otherwise fail.
    """
    failed: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    for i, (key, value) in enumerate(records, 1):
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if flush_every and i % flush_every == 0:
            producer.flush(timeout_s)
    if producer.flush(timeout_s) != 0 or failed:
        raise BenchError(f"the broker did not confirm every record on {topic}: {len(failed)} failed, "
                         f"e.g. {failed[:3]}")


def atp_level_datum(sku: str, on_hand: int, reserved: int, *, version: int, at_ms: int, location: str,
                    causation_id: str | None = None) -> dict[str, Any]:
    """An AtpLevel as the inventory worker writes it, one location, no safety stock or incoming (Avro datum)."""
    return {
        "meta": {"event_id": str(uuid.uuid4()), "event_type": "AtpLevel", "occurred_at": at_ms,
                 "recorded_at": at_ms, "source": "shopstream.inventory", "source_event_id": None,
                 "correlation_id": None, "causation_id": causation_id},
        "sku": sku, "on_hand": on_hand, "reserved": reserved, "safety_stock": 0, "incoming": 0,
        "available": on_hand - reserved, "version": version, "updated_at": at_ms,
        "locations": [{"location": location, "on_hand": on_hand, "reserved": reserved, "safety_stock": 0,
                       "incoming": 0, "as_of": at_ms}],
    }
