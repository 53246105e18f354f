"""`shopstream worker anomalies`: the anomaly engine on the runner, in two stages in one process.

Stage 1, `anomalies-facts` (stateless): consumes the input topics that exist in the topology
(`INPUTS`), reduces each event to a `Fact` (`facts.from_event`; events no detector reads are
dropped) and sends it to `anomalies.facts`, one partition, key `anomaly-engine`. Global rates need
every event in one state and a replay needs one order of events: the facts log is that order.

Stage 2, `anomalies` (stateful): consumes `anomalies.facts`; its state is the engine's state dict,
changelogged on `anomalies-engine-changelog` one small record per key (`changelog.py`: per event id,
order, SKU, hour of a SKU's movements, window cell, baseline, open alert, KPI hour, and a small core).
A batch writes the keys the engine recorded as changed by its facts (`Engine.take_changes`) and
tombstones those it deleted (pruning), so every record stays small whatever the SKU count and traffic
and a batch of N facts writes O(N) records, not the whole state. Every alert change is sent to
`alerts.anomalies` (key: subject) as an AnomalyAlert, a critical alert's opening also to `review.queue`
as a work item; shadow-mode alerts are only counted. After each stored batch the KPI reports go to the
KPI view in Redis (`{prefix}kpis`, at most every `KPI_EVERY_S`; a Redis fault is logged, never fatal:
the next batch writes them again) and to the `shopstream_kpi_*` gauges.

Crash safety is the runner's: outputs and the changelog are confirmed before offsets are committed,
so after SIGKILL stage 2 restores the state of its last stored batch and re-reads the facts after it;
its alert records take ids and times from event time, so what it re-emits is identical (the alerts
view merges duplicates). Stage 1 re-sends facts of uncommitted input; the engine ignores event ids it
has seen. The engine is rebuilt from the store on every assignment (`restored`) and mutated in place
while a batch is handled: the runner halts the process rather than store a batch whose outputs failed,
so a half-applied batch never survives into the changelog.

The clock: windows close on event time. When the newest event is recent (`LIVE_WITHIN_MS`: live
traffic, not a replayed history) the tick also closes windows the wall clock has passed, so an hour
without a single order still closes, with 0 orders: the order-rate drop a dead checkout causes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from shopstream.config import Settings
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import Topology, load_topology_for, names

from . import metrics
from .changelog import MISSING, assemble, encode_key, encode_value, value_of
from .engine import Engine, Key
from .facts import ATP_PROJECTION, Fact, atp_fact, from_event
from .records import alert_record, decode_fact, encode_fact, work_item
from .rules import AnomalyRules, load_rules

log = logging.getLogger(__name__)

PROCESSOR = "anomalies"
FACTS_STAGE = "anomalies-facts"
TABLE = "engine"
FACT_KEY = b"anomaly-engine"
#: every topic a detector or KPI reads, in the order they are subscribed (those missing are skipped)
INPUTS = (names.SHOP_ORDERS, names.PAYMENTS, names.FULFILLMENT_SHIPMENTS, names.RETURNS, names.INVENTORY_STOCK,
          names.INVENTORY_ATP, names.CATALOG_PRODUCTS, names.SUPPORT_TICKETS)
KPI_EVERY_S = 5.0
LIVE_WITHIN_MS = 6 * 3_600_000
WINDOWS = ("1h", "24h", "7d")


class FactsStage(ProcessorBase):
    """Stage 1: canonical events -> facts on the one-partition `anomalies.facts`."""

    name = FACTS_STAGE

    def __init__(self, settings: Settings, topology: Topology | None = None) -> None:
        topology = topology or load_topology_for(settings)
        declared = {t.name for t in topology.topics}
        self.inputs: tuple[str, ...] = tuple(t for t in INPUTS if t in declared)
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Decode; the fact, if any detector or KPI reads this event (raises: the runner classifies)."""
        if record.label == names.INVENTORY_ATP:
            fact: Fact | None = atp_fact(self.serde.decode_datum(record.value, "AtpLevel", reader=ATP_PROJECTION))
        else:
            fact = from_event(self.serde.decode(record.value))
        effects = Effects()
        if fact is not None:
            if record.label == names.SHOP_ORDERS:  # the engine's clock follows the slowest order partition
                fact = replace(fact, src=f"orders:{record.partition}")
            effects.outputs.append((names.ANOMALIES_FACTS, FACT_KEY, encode_fact(fact)))
        return effects


class EngineStage(ProcessorBase):
    """Stage 2: facts -> the engine -> alert changes, work items, KPIs; state in the changelog."""

    name = PROCESSOR
    inputs: tuple[str, ...] = (names.ANOMALIES_FACTS,)
    # The engine's keys depend on each other (a fact's dedupe evidence in `seen:<id>`/`orders:<id>`, its
    # counts in `core`, `kpi:<hour>` and window cells): a batch's records are restored all or none
    # (runner/store.py, atomic state).
    atomic_state = True

    def __init__(self, settings: Settings, topology: Topology | None = None,
                 rules: AnomalyRules | None = None, kpi_store: Any | None = None) -> None:
        topology = topology or load_topology_for(settings)
        self.changelog = topology.table_changelog(PROCESSOR, TABLE, self.inputs).name
        self.order_sources = topology.topic(names.SHOP_ORDERS).partitions
        self.tick_interval_s = KPI_EVERY_S  # the last batch's KPIs are published by the next tick at the latest
        self.rules = rules or load_rules(settings.anomaly_rules or None)
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        self.settings = settings
        self._alerts_topic = settings.topic(names.ALERTS_ANOMALIES)
        self._queue_topic = settings.topic(names.REVIEW_QUEUE)
        self.engines: dict[int, Engine] = {}
        self._kpi_store = kpi_store
        self._kpis_at = 0.0
        # the alert changes of a fact applied whose effects could not be built yet (a transient fault while
        # encoding): the runner retries `handle` with the same record, which must not lose them (the keys
        # it changed stay in the engine's `changed` until effects are built)
        self._pending: tuple[tuple[int, str], list[Any]] | None = None
        self._tick_pending: dict[int, list[Any]] = {}

    def _engine(self, partition: int) -> Engine:
        engine = self.engines.get(partition)
        if engine is None:
            engine = self.engines[partition] = Engine(self.rules, order_sources=self.order_sources)
        return engine

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Apply one fact; its alert changes and the keys it changed (raises: the runner classifies)."""
        fact = decode_fact(record.value)
        engine = self._engine(record.partition)
        pending = self._pending
        if pending is not None and pending[0] == (record.partition, fact.event_id):
            changes = pending[1]  # a retry after a transient fault: the engine already has it
        else:
            changes = engine.apply(fact)
            self._pending = ((record.partition, fact.event_id), changes)
        effects = self._effects(engine, changes)  # may raise a transient fault (registry): retried
        self._pending = None
        return effects

    def _effects(self, engine: Engine, changes: list[Any]) -> Effects:
        """The alert changes' records and the engine's changed keys as writes (the keys stay with the engine
        if building the records fails)."""
        keys = engine.take_changes()
        try:
            return self._build(engine, changes, keys)
        except BaseException:
            engine.changed |= keys
            raise

    def _build(self, engine: Engine, changes: list[Any], keys: set[Key]) -> Effects:
        effects = Effects()
        for change in changes:
            metrics.ALERT_CHANGES.labels(change.kind, change.status).inc()
            if change.shadow:
                continue
            key = change.subject.encode()
            effects.outputs.append((names.ALERTS_ANOMALIES, key,
                                    self.serde.encode(self._alerts_topic, alert_record(change, self.rules.version))))
            item = work_item(change, self.rules.version)
            if item is not None:
                effects.outputs.append((names.REVIEW_QUEUE, key, self.serde.encode(self._queue_topic, item)))
        # A key the state still holds is written as (engine, key): its value is cut from the live state when
        # the batch is confirmed (the batch's end state, once per key however many facts changed it). A key
        # it no longer holds is deleted now: a later fact of the batch that brings it back records it again.
        state = engine.state
        effects.writes.update({encode_key(key): None if value_of(state, key) is MISSING else (engine, key)
                               for key in keys})
        return effects

    def encode_state(self, value: Any) -> bytes:
        """One key of the engine state as JSON (cut at confirmation time: the batch's end state)."""
        engine, key = value
        return encode_value(engine.state, key)

    def decode_state(self, data: bytes) -> Any:
        """A stored record (plain JSON); `restored` assembles them."""
        return json.loads(data)

    def restored(self, partition: int, state: Mapping[bytes, Any]) -> None:
        """Rebuild the partition's engine from its restored records (an old layout is rewritten by the next
        batch or tick: `changelog.assemble`)."""
        assembled = assemble((key, value) for key, value in state.items() if not isinstance(value, tuple))
        engine = self.engines[partition] = Engine(self.rules, assembled.state, order_sources=self.order_sources)
        engine.changed |= assembled.rewrite
        log.info("anomalies: engine of partition %d restored (%d records%s)", partition, len(state),
                 f"; old layout, {len(assembled.rewrite)} records to rewrite" if assembled.rewrite else "")

    def dropped(self, partition: int) -> None:
        """The partition went elsewhere: forget its engine."""
        self.engines.pop(partition, None)

    def stored(self, partition: int, writes: Mapping[bytes, Any]) -> None:
        """After a confirmed batch: KPIs to Redis and the gauges (throttled)."""
        self._publish(force=False)

    def tick(self, now: float, states: Mapping[int, Mapping[bytes, Any]]) -> Iterator[tuple[int, Effects]]:
        """Close windows the wall clock has passed while traffic is live; publish the KPIs."""
        now_ms = int(now * 1000)
        for partition, engine in sorted(self.engines.items()):
            newest = engine.state.get("max_at")
            changes = self._tick_pending.pop(partition, [])
            if newest is not None and now_ms - newest <= LIVE_WITHIN_MS:  # live traffic, not a replayed history
                changes += engine.advance(now_ms)
            if changes or engine.changed:
                try:
                    effects = self._effects(engine, changes)
                except Exception:
                    self._tick_pending[partition] = changes  # sent with the next tick's
                    raise
                yield partition, effects
        self._publish(force=True)

    def _publish(self, *, force: bool) -> None:
        if not force and time.monotonic() - self._kpis_at < KPI_EVERY_S:
            return
        self._kpis_at = time.monotonic()
        for engine in self.engines.values():
            reports = {w: engine.kpis(w) for w in WINDOWS}
            metrics.export_reports(reports)
            metrics.LATE_EVENTS.set(engine.state.get("late", 0))
            metrics.export_open_alerts((e["kind"], e["severity"]) for e in engine.state["alerts"].values())
            if self._kpi_store is not None:
                try:
                    self._kpi_store.put(reports)
                except Exception as exc:  # the view is refreshed by the next batch; never stop the engine for it
                    log.warning("anomalies: KPI view not written: %s", exc)


def run(settings: Settings, web_port: int | None = None) -> None:
    """Run both stages until SIGTERM/SIGINT: the engine in this thread (admin port), the facts stage beside it."""
    import signal

    import redis

    from shopstream.views.alerts import KpiStore

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _s, _f: stop.set())
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    engine = EngineStage(settings, kpi_store=KpiStore(client, settings.redis_key_prefix))
    failed: list[BaseException] = []

    def facts() -> None:
        try:
            run_processor(settings, FactsStage(settings), web_port=0, stop=stop)
        except BaseException as exc:
            failed.append(exc)
            raise
        finally:
            stop.set()  # one stage alone is no worker: stop the other

    thread = threading.Thread(target=facts, name="anomalies-facts", daemon=True)
    thread.start()
    try:
        run_processor(settings, engine, web_port=web_port, stop=stop)
    finally:
        stop.set()
        thread.join(timeout=60)
        client.close()
    if failed:
        raise SystemExit(f"anomalies: the facts stage stopped: {failed[0]}")
