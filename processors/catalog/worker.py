"""Catalog processor (`shopstream worker catalog`): the pure catalog core on the runner (`shopstream.runner`).

Consumes `catalog.products` (ProductUpserted, ProductDeleted, PromotionScheduled, keyed by SKU) and
`review.decisions` (WorkItemDecided about products, keyed by SKU; everything else there — order verdicts
and decisions — is skipped). State: one plain dict per SKU (`processors/catalog/core.py`) in the runner's
store, JSON in the changelog `catalog-products-changelog`. Each record is decoded and applied by the core;
its outputs go out through the runner's confirming producer: `review.queue` (work items, queues `catalog`
and `pricing`), `review.decisions` (the catalog resolving its own item), `commands.shop` (UpdatePrice) and,
whenever the state changed, a `ProductQuality` on `catalog.quality` (the quality document, the price
state and the last 50 change-log entries) for the Redis view behind `GET /v1/products/{sku}/quality`.

The checks across products (unique slug, near-duplicate description, bundle components: `crossref.py`)
compare with `CatalogIndex`, the products of the partitions this worker owns (built on restore, updated as
each state changes, dropped with its partition): with one catalog worker that is every product; with
several, a duplicate held by another worker is not seen (run one catalog worker where that matters).

`review.decisions` is in the `order` co-partition group, `catalog.products` in `sku`: a decision about a SKU
(keyed by the SKU, murmur2 like every producer) lands on the partition number its product has only when
both topics have the same partition count, so the worker refuses to start otherwise (shipped: 4 and 4;
production overlay: 12 and 12).

The promotion timer runs on event time (`clock.py`): the partition's clock (its newest event time, kept in
the partition's state under `clock.CLOCK_KEY`) moves before each record is applied, and every promotion
it reached starts or ends first (`core.advance` at the clock); the runner's tick (`SHOPSTREAM_CATALOG_TICK_S`,
default 1 s) moves it to the wall clock only while the partition is live (`clock.is_live`), so a quiet
topic still starts its promotions on time and a replayed history gives the same commands in the same
order. Both visit only the SKUs with a scheduled or active promotion (a set per partition, rebuilt on
restore). KPIs on the worker's `/metrics`: `shopstream_catalog_products{channel, complete}` (SKUs this
worker owns; the share of complete products per channel is the ratio, summed over workers) and
`shopstream_catalog_time_to_complete_seconds` (first upsert's source time to all blocking checks passing).
Undecodable records and records of another type go to the input's DLQ; transient faults are
retried in place (the runner's one policy). Redelivery is harmless: the core remembers event ids and the
decided items, and its outputs' ids are derived (uuid5), so a re-emission is a duplicate downstream.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge, Histogram
from pydantic import BaseModel

from shopstream.config import Settings
from shopstream.metrics import RECORDS_IN
from shopstream.processors.catalog import clock, core
from shopstream.processors.catalog.crossref import CatalogIndex
from shopstream.processors.catalog.records import NAMESPACE, SOURCE
from shopstream.processors.catalog.rules import load_mastership, load_rules
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.schemas.models import (
    EventMeta,
    ProductDeleted,
    ProductQuality,
    ProductUpserted,
    PromotionScheduled,
    WorkItemDecided,
)
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import Topology, TopologyError, load_topology_for, names

log = logging.getLogger(__name__)

PROCESSOR, TABLE = "catalog", "products"
PRODUCT_RECORDS = (ProductUpserted, ProductDeleted, PromotionScheduled)
OUTPUTS = (names.REVIEW_QUEUE, names.REVIEW_DECISIONS, names.COMMANDS_SHOP, names.CATALOG_QUALITY)
CHANGES_IN_DOCUMENT = 50
# KPIs (issue 16): share of complete products per channel, time from first upsert to complete.
PRODUCTS = Gauge("shopstream_catalog_products", "SKUs this worker owns, by channel and completeness",
                 ["channel", "complete"])
TIME_TO_COMPLETE = Histogram("shopstream_catalog_time_to_complete_seconds",
                             "From a SKU's first upsert (source time) to all blocking checks passing",
                             buckets=(60, 600, 3600, 6 * 3600, 86_400, 7 * 86_400, 30 * 86_400))


def quality_record(state: dict[str, Any], now: datetime) -> ProductQuality:
    """The view record of a SKU's state."""
    doc = dict(state["quality"] or {"sku": state["sku"], "score": 0, "complete": False, "channels": {}})
    doc.update(deleted=state["deleted"], shop_price=state["shop_price"], pending_price=state["pending_price"],
               promotions=state["promotions"], first_seen_at=state["first_seen_at"],
               complete_at=state["complete_at"], changes=state["changes"][-CHANGES_IN_DOCUMENT:])
    doc.pop("version", None)
    meta = EventMeta(event_id=str(uuid.uuid5(NAMESPACE, f"ProductQuality:{state['sku']}:{state['version']}")),
                     event_type="ProductQuality", occurred_at=now, recorded_at=now, source=SOURCE)
    return ProductQuality(meta=meta, sku=state["sku"], version=state["version"], score=int(doc.get("score", 0)),
                          complete=bool(doc.get("complete")), document=json.dumps(doc, separators=(",", ":")))


class CatalogProcessor(ProcessorBase):
    """The catalog worker's processor on the runner: state = one dict per SKU."""

    name = PROCESSOR
    inputs: tuple[str, ...] = (names.CATALOG_PRODUCTS, names.REVIEW_DECISIONS)
    # The partition's event clock (`clock.CLOCK_KEY`) and each SKU's promotion state depend on each other:
    # a batch's records are restored all or none (runner/store.py, atomic state).
    atomic_state = True

    def __init__(self, settings: Settings, topology: Topology | None = None) -> None:
        self.settings = settings
        self.topology = topology or load_topology_for(settings)
        changelog = self.topology.table_changelog(PROCESSOR, TABLE, (names.CATALOG_PRODUCTS,))
        decisions = self.topology.topic(names.REVIEW_DECISIONS).partitions
        if decisions != changelog.partitions:
            raise TopologyError(f"{names.REVIEW_DECISIONS} has {decisions} partitions, {names.CATALOG_PRODUCTS} "
                                f"{changelog.partitions}: the catalog worker needs them equal (decisions keyed by SKU)")
        self.changelog, self.partitions = changelog.name, changelog.partitions
        self.tick_interval_s = settings.catalog_tick_s
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        rules = load_rules(settings.catalog_rules or None)
        self.catalog = CatalogIndex(rules)  # the SKUs of the owned partitions, for the cross-product checks
        self.context = core.Context(rules, load_mastership(settings.catalog_mastership or None), self.catalog)
        self._outputs = {name: settings.topic(name) for name in OUTPUTS}
        self._timed: dict[int, set[bytes]] = {}  # per partition: SKUs with a scheduled or active promotion
        self._complete: dict[int, dict[bytes, dict[str, bool]]] = {}  # per partition: SKU -> channel -> complete
        self._lag_ms: dict[int, int] = {}  # per partition: the last handled record's lag behind Kafka
        self._owned: dict[int, set[str]] = {}  # per partition: the SKUs in the index
        self._next_due: dict[int, datetime | None] = {}  # per partition: the earliest promotion start or end

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Decode, move the partition's event clock, apply to the SKU's state (raises: the runner classifies)."""
        event = self.serde.decode(record.value)
        now = datetime.now(UTC)
        if record.timestamp_ms is not None:
            self._lag_ms[record.partition] = int(now.timestamp() * 1000) - record.timestamp_ms
        if record.label == names.REVIEW_DECISIONS:
            if not isinstance(event, WorkItemDecided) or event.subject_type != "product":
                RECORDS_IN.labels(PROCESSOR, record.label, "skipped").inc()
                return Effects()
            key = event.subject_id.encode()
            effects = self._tick_to(record.partition, state, clock.event_time(event))
            current = effects.writes[key] if key in effects.writes else state.get(key)
            return self._applied(record.partition, key, core.decide(current, event, self.context, now), now, effects,
                                 state)
        if not isinstance(event, PRODUCT_RECORDS):
            raise TypeError(f"{type(event).__name__} does not belong on {record.label}")
        key = event.sku.encode()
        effects = self._tick_to(record.partition, state, clock.event_time(event))
        current = effects.writes[key] if key in effects.writes else state.get(key)
        if isinstance(event, ProductUpserted):
            outcome = core.apply_upsert(current, event, self.context, now)
        elif isinstance(event, ProductDeleted):
            outcome = core.apply_deleted(current, event, self.context, now)
        else:
            outcome = core.apply_promotion(current, event, self.context, now)
        if not outcome.changed:
            RECORDS_IN.labels(PROCESSOR, record.label, "duplicate").inc()
        return self._applied(record.partition, key, outcome, now, effects, state)

    def _applied(self, partition: int, key: bytes, outcome: core.Outcome, now: datetime, effects: Effects,
                 state: Mapping[bytes, Any]) -> Effects:
        """The record's outcome, then its promotion moved at once when the clock is already past its start
        or end (scheduled or approved late): the same point between records on a replay as live."""
        self._effects(partition, key, outcome, now, effects)
        mark = effects.writes[clock.CLOCK_KEY] if clock.CLOCK_KEY in effects.writes else state.get(clock.CLOCK_KEY)
        at, entry = clock.clock_at(mark), outcome.state
        if at is not None and entry is not None and core.due(entry, at):
            self._effects(partition, key, core.advance(entry, at), at, effects)
        return effects

    def _tick_to(self, partition: int, state: Mapping[bytes, Any], at: datetime) -> Effects:
        """Move the partition's clock to `at` (never back) and the promotions it reached (the timer)."""
        effects = Effects()
        moved = clock.advanced(state.get(clock.CLOCK_KEY), at)
        if moved is None:
            return effects
        effects.writes[clock.CLOCK_KEY] = moved
        next_due = self._next_due.get(partition)
        if next_due is None or at < next_due:
            return effects  # no promotion of the partition starts or ends before `at`: nothing to visit
        for key in sorted(self._timed.get(partition, ())):
            entry = state.get(key)
            if entry is not None and core.due(entry, at):
                self._effects(partition, key, core.advance(entry, at), at, effects)
        self._next_due[partition] = min(
            (when for key in self._timed.get(partition, ())
             if (when := _next_move(effects.writes[key] if key in effects.writes else state.get(key))) is not None),
            default=None)
        return effects

    def _effects(self, partition: int, key: bytes, outcome: core.Outcome, now: datetime,
                 effects: Effects | None = None) -> Effects:
        effects = effects if effects is not None else Effects()
        records: list[tuple[str, str, BaseModel]] = list(outcome.outputs)
        if outcome.state is not None:
            records.append((names.CATALOG_QUALITY, outcome.state["sku"], quality_record(outcome.state, now)))
            effects.writes[key] = outcome.state
            self._index(partition, outcome.state)  # the next record (of this batch too) compares with it
            if _timed(outcome.state):  # seen by the next record of this batch, before `stored`
                self._timed.setdefault(partition, set()).add(key)
                self._due_by(partition, _next_move(outcome.state))
        effects.outputs.extend((topic, sku.encode(), self.serde.encode(self._outputs[topic], rec))
                               for topic, sku, rec in records)
        return effects

    def tick(self, now: float, states: Mapping[int, Mapping[bytes, Any]]) -> Iterator[tuple[int, Effects]]:
        """The promotion timer on the wall clock, for the live partitions with a promotion due."""
        when = datetime.fromtimestamp(now, UTC)
        for partition, state in states.items():
            if not clock.is_live(self._lag_ms.get(partition)):
                continue  # catching up on old records: event time moves the clock
            next_due = self._next_due.get(partition)
            if next_due is None or when < next_due:
                continue  # nothing would move: no changelog write for the clock alone
            effects = self._tick_to(partition, state, when)
            if effects.outputs or effects.writes:
                yield partition, effects

    def restored(self, partition: int, state: Mapping[bytes, Any]) -> None:
        """Find the SKUs with promotions once; count the partition's complete products."""
        skus = {k: v for k, v in state.items() if k != clock.CLOCK_KEY}
        for entry in skus.values():
            self._index(partition, entry)
        self._timed[partition] = {k for k, v in skus.items() if _timed(v)}
        self._next_due[partition] = min((when for k in self._timed[partition]
                                         if (when := _next_move(skus[k])) is not None), default=None)
        self._complete[partition] = {k: _channels(v) for k, v in skus.items() if not v.get("deleted")}
        self._lag_ms.pop(partition, None)
        self._publish_kpis()

    def stored(self, partition: int, writes: Mapping[bytes, Any]) -> None:
        """Keep the partition's set of SKUs with promotions and its completeness counts current."""
        keys = self._timed.setdefault(partition, set())
        complete = self._complete.setdefault(partition, {})
        for key, entry in writes.items():
            if key == clock.CLOCK_KEY:
                continue
            (keys.add if entry is not None and _timed(entry) else keys.discard)(key)
            if entry is None or entry.get("deleted"):
                complete.pop(key, None)
                continue
            before, after = complete.get(key, {}), _channels(entry)
            if entry.get("complete_at") and not any(before.values()) and any(after.values()):
                start, end = entry.get("first_seen_at"), entry["complete_at"]
                if start:  # source time of the first upsert to the processing time it passed
                    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
                    TIME_TO_COMPLETE.observe(max(0.0, seconds))
            complete[key] = after
        self._publish_kpis()

    def dropped(self, partition: int) -> None:
        """The partition went to another worker."""
        self._timed.pop(partition, None)
        self._next_due.pop(partition, None)
        self._complete.pop(partition, None)
        self._lag_ms.pop(partition, None)
        for sku in self._owned.pop(partition, ()):
            self.catalog.remove(sku)
        self._publish_kpis()

    def _due_by(self, partition: int, when: datetime | None) -> None:
        current = self._next_due.get(partition)
        if when is not None and (current is None or when < current):
            self._next_due[partition] = when

    def _index(self, partition: int, entry: dict[str, Any]) -> None:
        self.catalog.put(entry["sku"], entry["product"], deleted=bool(entry.get("deleted")))
        self._owned.setdefault(partition, set()).add(entry["sku"])

    def _publish_kpis(self) -> None:
        counts: dict[tuple[str, bool], int] = {}
        for skus in self._complete.values():
            for channels in skus.values():
                for channel, complete in channels.items():
                    counts[(channel, complete)] = counts.get((channel, complete), 0) + 1
        for channel in self.context.rules.channels:
            for complete in (True, False):
                PRODUCTS.labels(channel, str(complete).lower()).set(counts.get((channel, complete), 0))

    def encode_state(self, value: Any) -> bytes:
        """The state dict as JSON."""
        return json.dumps(value, separators=(",", ":")).encode()

    def decode_state(self, data: bytes) -> dict[str, Any]:
        """Changelog JSON back into the state dict."""
        state: dict[str, Any] = json.loads(data)
        return state


def _channels(entry: dict[str, Any]) -> dict[str, bool]:
    """Per channel of the quality document: every blocking check passes there."""
    doc = entry.get("quality") or {}
    failing = {f.split("@", 1)[1].split("/", 1)[0] for f in doc.get("blocking_failed", ())}
    return {channel: channel not in failing for channel in doc.get("channels", {})}


def _next_move(entry: dict[str, Any] | None) -> datetime | None:
    """When the SKU's next promotion starts or ends (None: none scheduled or active)."""
    times = [datetime.fromisoformat(p["starts_at"] if p["status"] == "scheduled" else p["ends_at"])
             for p in (entry or {}).get("promotions") or () if p["status"] in ("scheduled", "active")]
    return min(times, default=None)


def _timed(entry: dict[str, Any]) -> bool:
    return any(p["status"] in ("scheduled", "active") for p in entry.get("promotions") or ())


def run(settings: Settings, web_port: int | None = None) -> None:
    """Run the catalog worker in the foreground until interrupted."""
    run_processor(settings, CatalogProcessor(settings), web_port=web_port)
