"""`bench orders`' observers: when each order became visible, the groups' lag, and each process's cost.

- `StateWatch`: a consumer assigned (no group, nothing committed) to the ends of `orders.state` notes
  when each order of the run first appears there, and when its state first says `paid`. One consumer
  for the whole run, never a request per order.
- `ViewWatch`: the Redis order view the read API serves, one MGET per tick for the accepted orders not
  yet seen there (the API is not loaded).
- `Sampler`: every second, the consumer lag of the stack's groups (`shopstream.api.lag.count_lag`, the
  read API's gauge, with the partition ends from fetch responses: `LogEnds`, since ListOffsets costs
  Tansu more the fuller a partition is, and sampling through it slowed the stack run after run) and
  each stack process's resident memory; CPU seconds are read at start and end.
Times are `time.perf_counter()`, the clock the load's deliveries use.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from confluent_kafka import KafkaException, TopicPartition

from shopstream.api.lag import LogEnds, count_lag
from shopstream.bench.common import process_cpu_seconds
from shopstream.config import Settings
from shopstream.dev.pids import read_pids
from shopstream.kafka import make_consumer
from shopstream.serde import AvroSerde, SerdeError, make_registry_client
from shopstream.views.orders import order_key

# The watcher's own fetch wait: at the stack's 100 ms (KAFKA_FETCH_MAX_WAIT_MS) Tansu would hold each of
# our fetches that long and add up to 100 ms to every figure; 10 ms costs the broker ~100 fetches/s.
WATCH_FETCH_WAIT_MS = 10
VIEW_TICK_S = 0.01


@dataclass
class Sightings:
    """First time each order was seen at all, and first time seen paid."""

    seen: dict[str, float] = field(default_factory=dict)
    paid: dict[str, float] = field(default_factory=dict)


class StateWatch(threading.Thread):
    """Reads `orders.state` from its current ends until stopped; `sightings` fills as the run's orders appear."""

    def __init__(self, settings: Settings, ids: set[str], capture_ids: set[str]) -> None:
        super().__init__(daemon=True, name="bench-orders-state")
        self.sightings = Sightings()
        self.error = ""
        self._ids, self._capture_ids = ids, capture_ids
        self._stop_event = threading.Event()
        self._serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        self._consumer = make_consumer(settings, "bench-orders-watch", **{"fetch.wait.max.ms": WATCH_FETCH_WAIT_MS})
        topic = settings.topic("orders.state")
        meta = self._consumer.list_topics(topic, timeout=10).topics[topic]
        # Assigned before the first post, at the ends: only what the run causes is read (plus, on Tansu,
        # a few older records where its high watermark stops short; their keys are not ours).
        self._consumer.assign([TopicPartition(topic, p, self._consumer.get_watermark_offsets(
            TopicPartition(topic, p), timeout=10)[1]) for p in meta.partitions])

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                msgs = self._consumer.consume(500, 0.05)
                now = time.perf_counter()
                for msg in msgs:
                    if msg.error() is None:
                        self._note(msg.key(), msg.value(), now)
        except (KafkaException, SerdeError) as exc:
            self.error = str(exc)
        finally:
            self._consumer.close()

    def _note(self, key: bytes | None, value: bytes | None, now: float) -> None:
        order_id = key.decode() if key else ""
        if order_id not in self._ids or value is None:
            return
        self.sightings.seen.setdefault(order_id, now)
        if (order_id in self._capture_ids and order_id not in self.sightings.paid
                and self._serde.decode_datum(value, "OrderState")["payment_status"] == "paid"):
            self.sightings.paid[order_id] = now

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


class ViewWatch(threading.Thread):
    """Checks the Redis order view for the orders `accepted` names (create: present; capture: paid)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="bench-orders-view")
        self.sightings = Sightings()
        self.accepted: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()  # (order id, create|capture)
        self.error = ""
        self._prefix = settings.redis_key_prefix
        self._redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
        self._stop_event = threading.Event()

    def run(self) -> None:
        waiting: dict[str, str] = {}  # order id -> what it waits for (the capture after the create)
        try:
            while not self._stop_event.is_set():
                while not self.accepted.empty():
                    order_id, kind = self.accepted.get()
                    waiting[order_id] = "paid" if kind == "capture" else waiting.get(order_id, "seen")
                if waiting:
                    self._check(waiting)
                time.sleep(VIEW_TICK_S)
        except redis.RedisError as exc:
            self.error = str(exc)

    def _check(self, waiting: dict[str, str]) -> None:
        ids = list(waiting)
        docs = self._redis.mget([order_key(self._prefix, i) for i in ids])
        now = time.perf_counter()
        for order_id, doc in zip(ids, docs, strict=True):
            if doc is None:
                continue
            self.sightings.seen.setdefault(order_id, now)
            if waiting[order_id] == "seen":
                del waiting[order_id]
            elif json.loads(doc).get("payment_status") == "paid":
                self.sightings.paid.setdefault(order_id, now)
                del waiting[order_id]

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def stack_pids(state_dir: str) -> dict[str, int]:
    """name -> pid of the stack's processes (dev's `dev-pids.json`), the broker included when embedded."""
    doc = read_pids(Path(state_dir)) if state_dir else None
    if doc is None:
        return {}
    pids = {str(k): int(v) for k, v in doc.get("children", {}).items()}
    if doc.get("broker"):
        pids["broker"] = int(doc["broker"])
    return pids


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` now (VmRSS, MB); 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class LagSample:
    at: float
    lag: dict[str, int]  # group -> uncommitted records over its topics


class Sampler(threading.Thread):
    """Every `interval_s`: the lag per consumer group and each process's RSS (peak kept)."""

    def __init__(self, settings: Settings, pids: dict[str, int], interval_s: float = 1.0) -> None:
        super().__init__(daemon=True, name="bench-orders-sampler")
        self.samples: list[LagSample] = []
        self.peak_rss_mb: dict[str, float] = dict.fromkeys(pids, 0.0)
        self.errors: list[str] = []
        self._settings, self._pids, self._interval = settings, pids, interval_s
        self._cpu_start = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        self._ends = LogEnds(settings)
        self._stop_event = threading.Event()

    def sample(self) -> None:
        """One sample now (also called once at the end, so the last one is the run's end)."""
        for name, pid in self._pids.items():
            self.peak_rss_mb[name] = max(self.peak_rss_mb[name], rss_mb(pid))
        try:
            counts = count_lag(self._settings, ends=self._ends)
        except KafkaException as exc:
            self.errors.append(str(exc))
            return
        per_group: dict[str, int] = {}
        for (group, _topic), n in counts.items():
            per_group[group.removeprefix(self._settings.topic_prefix)] = per_group.get(
                group.removeprefix(self._settings.topic_prefix), 0) + n
        self.samples.append(LagSample(time.perf_counter(), per_group))

    def run(self) -> None:
        self.sample()
        while not self._stop_event.wait(self._interval):
            self.sample()

    def stop(self) -> dict[str, float]:
        """Stop sampling, take a last sample; returns each process's CPU seconds over the run."""
        self._stop_event.set()
        self.join(timeout=30)
        self.sample()
        self._ends.close()
        return {name: process_cpu_seconds(pid) - self._cpu_start[name] for name, pid in self._pids.items()}
