"""Inventory processor (`shopstream worker inventory`): the Faust adapter around the pure ATP core.

Consumes `inventory.stock` (StockSnapshot / StockAdjusted / GoodsReceived) and
`inventory.reservations` (ReservationChanged), both keyed by SKU and co-partitioned (4 partitions),
keeps one `SkuState` per SKU in the Faust table `atp` (key: the SKU, value: `SkuState.to_dict()` as
JSON, changelog-backed) and feeds every event through the matching `apply_*` of
`shopstream.processors.inventory.atp`, which holds all of the arithmetic and the idempotence rules:
- a StockSnapshot is the ERP count of one location as of `as_of`; an older one is stale and
  ignored, one repeating the current figures is a duplicate;
- StockAdjusted (`adjusted_at`) and GoodsReceived (`received_at`) are deltas deduplicated by their
  event id and dropped once a snapshot at or after their time counts them;
- ReservationChanged is stamped with the order's source time (`meta.occurred_at`) and keyed by
  (order, SKU); quantities are absolute, so a redelivery is a no-op.
The policy (which locations sell online, whether incoming is promised, reorder points) is data:
`topology/inventory.yaml` (`shopstream.processors.inventory.config`).

Outputs, per event, from the core's `Outcome`:
- `inventory.atp` (compacted, keyed by SKU), whenever a figure changes (`changed`): an AtpLevel
  with the SKU's figures over the online locations, the state's version (one more per change) and
  the figures of every known location;
- `commands.erp` (keyed by SKU), when `available` fell to or below the SKU's reorder point while it
  was above (`reorder_crossed`; hysteresis is in the core): a ReorderRequest whose
  suggested_quantity orders up to twice the reorder point, counting units already incoming
  (`max(0, 2 * point - available - incoming)`);
- when the event pushed `available` below zero with open orders making up the deficit
  (`oversold_orders`): an AnomalyAlert `oversold` on `alerts.anomalies` (subject and key: the SKU;
  evidence: available, version and the orders) and one ReviewItem `oversold` per order on
  `review.queue` (keyed by order id).
Every output's event id is derived from SKU and version (and order), so a re-emission after a
crash carries the same id. Duplicates and stale events change nothing and emit nothing; they are
counted in `shopstream_records_in_total` with outcome `duplicate` / `stale` (an event that only
updates bookkeeping, e.g. a repeated snapshot with a newer `as_of`, counts as `duplicate` too).
Undecodable records, records of the wrong type, records not keyed by their SKU (their state would
live on another partition) and events the core rejects (negative quantities) go to `<topic>.dlq`;
transient faults are retried in place (shopstream.processing).

One agent reads both topics, so events are handled one at a time: the handler awaits the broker
between reading a SKU's state and writing it back, and two agents (one per topic) could interleave
there and lose an update. The table is written only after the broker confirmed every output (as in
the orders processor), so the changelog never claims an event whose output was lost; after a crash
the uncommitted tail is read again and the core treats it as duplicates.

Not done here yet (issue 3, part 4): SyncShopStock towards the shop, coalesced per SKU.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import faust

from shopstream.config import Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord
from shopstream.faust_app import FaustPublisher, make_faust_app
from shopstream.metrics import RECORDS_IN, RECORDS_OUT
from shopstream.processing import process_record
from shopstream.processors.inventory.atp import (
    Levels,
    Outcome,
    SkuState,
    apply_adjustment,
    apply_goods_received,
    apply_reservation,
    apply_snapshot,
    new_state,
)
from shopstream.processors.inventory.config import InventoryConfig, load_inventory_config
from shopstream.schemas.models import (
    AnomalyAlert,
    AtpLevel,
    AtpLocation,
    EventMeta,
    GoodsReceived,
    ReorderRequest,
    ReservationChanged,
    ReviewItem,
    StockAdjusted,
    StockSnapshot,
)
from shopstream.serde import AvroSerde, make_registry_client

PROCESSOR = "inventory"
STOCK = "inventory.stock"
RESERVATIONS = "inventory.reservations"
OUTPUT = "inventory.atp"
ATP_NS = uuid.UUID("5d0c7a8e-2b1f-4f3e-9a51-8e4b6c2d7f30")
# AtpLocation.as_of is required; a location that no ERP snapshot has counted yet (known only from
# adjustments or reservations) reports the epoch: "never counted".
NEVER_COUNTED = datetime(1970, 1, 1, tzinfo=UTC)

StockEvent = StockSnapshot | StockAdjusted | GoodsReceived


def atp_level(levels: Levels, cause: EventMeta) -> AtpLevel:
    """The AtpLevel record of a SKU's figures (after a change caused by `cause`)."""
    updated_at = levels.updated_at or cause.occurred_at
    return AtpLevel(
        meta=EventMeta(event_id=str(uuid.uuid5(ATP_NS, f"{levels.sku}:{levels.version}")), event_type="AtpLevel",
                       occurred_at=updated_at, recorded_at=cause.recorded_at, source="shopstream.inventory",
                       source_event_id=None, correlation_id=cause.correlation_id, causation_id=cause.event_id),
        sku=levels.sku, on_hand=levels.on_hand, reserved=levels.reserved, safety_stock=levels.safety_stock,
        incoming=levels.incoming, available=levels.available, version=levels.version, updated_at=updated_at,
        locations=[AtpLocation(location=loc.location, on_hand=loc.on_hand, reserved=loc.reserved,
                               safety_stock=loc.safety_stock, incoming=loc.incoming,
                               as_of=loc.as_of or NEVER_COUNTED)
                   for loc in levels.locations],
    )


def _meta(kind: str, name: str, levels: Levels, cause: EventMeta, *parts: str) -> EventMeta:
    identity = ":".join((kind, levels.sku, str(levels.version), *parts))
    return EventMeta(event_id=str(uuid.uuid5(ATP_NS, identity)), event_type=name,
                     occurred_at=levels.updated_at or cause.occurred_at, recorded_at=cause.recorded_at,
                     source="shopstream.inventory", source_event_id=None, correlation_id=cause.correlation_id,
                     causation_id=cause.event_id)


def reorder_request(levels: Levels, reorder_point: int, cause: EventMeta) -> ReorderRequest:
    """The ReorderRequest of a SKU whose `available` crossed its reorder point."""
    return ReorderRequest(meta=_meta("reorder", "ReorderRequest", levels, cause), sku=levels.sku,
                          available=levels.available, reorder_point=reorder_point,
                          suggested_quantity=max(0, 2 * reorder_point - levels.available - levels.incoming),
                          incoming=levels.incoming)


def oversold(levels: Levels, orders: tuple[str, ...], cause: EventMeta) -> list[tuple[str, bytes, Any]]:
    """(output topic, key, record): the Oversold alert for the SKU and a review item per order."""
    evidence = {"available": str(levels.available), "version": str(levels.version), "orders": ",".join(orders),
                "cause_event_id": cause.event_id, "cause_event_type": cause.event_type}
    alert = AnomalyAlert(meta=_meta("oversold", "AnomalyAlert", levels, cause), kind="oversold", subject=levels.sku,
                         severity="critical", summary=f"{levels.sku} oversold: available {levels.available}",
                         evidence=evidence, detected_at=levels.updated_at or cause.occurred_at)
    out: list[tuple[str, bytes, Any]] = [("alerts.anomalies", levels.sku.encode(), alert)]
    for order_id in orders:
        item = ReviewItem(meta=_meta("oversold", "ReviewItem", levels, cause, order_id), order_id=order_id,
                          kind="oversold", reason=f"{levels.sku} oversold: available {levels.available}",
                          details={"sku": levels.sku, "available": str(levels.available),
                                   "atp_version": str(levels.version)},
                          event_id=cause.event_id, event_type=cause.event_type, rule=None)
        out.append(("review.queue", order_id.encode(), item))
    return out


def apply_event(state: SkuState, config: InventoryConfig, event: StockEvent | ReservationChanged) -> Outcome:
    """Route one decoded event to the pure core."""
    policy = config.policy(state.sku)
    if isinstance(event, StockSnapshot):
        return apply_snapshot(state, policy, location=event.location, on_hand=event.on_hand,
                              safety_stock=event.safety_stock, incoming=event.incoming, as_of=event.as_of)
    if isinstance(event, StockAdjusted):
        return apply_adjustment(state, policy, event_id=event.meta.event_id, location=event.location,
                                delta=event.delta, at=event.adjusted_at)
    if isinstance(event, GoodsReceived):
        return apply_goods_received(state, policy, event_id=event.meta.event_id, location=event.location,
                                    quantity=event.quantity, at=event.received_at)
    return apply_reservation(state, policy, order_id=event.order_id, action=event.action, quantity=event.quantity,
                             at=event.meta.occurred_at, location=event.location)


class InventoryProcessor:
    """Holds the Faust app, topics and table of the inventory worker."""

    def __init__(self, settings: Settings, web_port: int | None = None,
                 config: InventoryConfig | None = None) -> None:
        self.settings = settings
        self.config = config or load_inventory_config()
        self.app = make_faust_app(settings, PROCESSOR, web_port=web_port)
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        self.input_topics = self.app.topic(settings.topic(STOCK), settings.topic(RESERVATIONS),
                                           **raw)  # type: ignore[arg-type]
        self.out_topics = {name: self.app.topic(settings.topic(name), **raw)  # type: ignore[arg-type]
                           for name in (OUTPUT, "commands.erp", "alerts.anomalies", "review.queue")}
        self._labels = {settings.topic(STOCK): STOCK, settings.topic(RESERVATIONS): RESERVATIONS}
        # Keys raw bytes (the SKU), values SkuState.to_dict() as JSON (Faust's default value codec).
        self.table = self.app.Table("atp", default=None, partitions=4, key_type=bytes)
        self.dlq = DeadLetterWriter(FaustPublisher(self.app), PROCESSOR)
        self.app.agent(self.input_topics, name="inventory.atp")(self._agent)

    async def _agent(self, stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            msg = event.message
            record = FailedRecord(topic=msg.topic, key=msg.key, value=msg.value, headers=list(msg.headers or []),
                                  partition=msg.partition, offset=msg.offset,
                                  timestamp_ms=int(msg.timestamp * 1000) if msg.timestamp else None)
            await process_record(record, lambda r=record: self.handle(r), self.dlq,  # type: ignore[misc]
                                 topic_label=self._labels.get(msg.topic, msg.topic))

    async def handle(self, record: FailedRecord) -> None:
        """Decode, apply to the SKU's state, emit the outputs; raises on failure (the caller classifies)."""
        label = self._labels.get(record.topic, record.topic)
        event = self.serde.decode(record.value)
        expected = (ReservationChanged,) if label == RESERVATIONS else (StockSnapshot, StockAdjusted, GoodsReceived)
        if not isinstance(event, expected):
            raise TypeError(f"{type(event).__name__} does not belong on {label}")
        assert isinstance(event, StockSnapshot | StockAdjusted | GoodsReceived | ReservationChanged)
        key = event.sku.encode()
        if record.key != key:
            # The SKU's state lives with its key's partition; a record keyed otherwise would split it.
            raise ValueError(f"record key {record.key!r} is not the event's SKU {event.sku!r}")
        stored = self.table.get(key)
        if isinstance(stored, str | bytes):
            stored = json.loads(stored)
        state = SkuState.from_dict(stored) if stored else new_state(event.sku)
        outcome = apply_event(state, self.config, event)
        outputs: list[tuple[str, bytes, Any]] = []
        if outcome.changed:
            outputs.append((OUTPUT, key, atp_level(outcome.levels, event.meta)))
        point = self.config.policy(event.sku).reorder_point
        if outcome.reorder_crossed and point is not None:
            outputs.append(("commands.erp", key, reorder_request(outcome.levels, point, event.meta)))
        if outcome.oversold_orders:
            outputs.extend(oversold(outcome.levels, outcome.oversold_orders, event.meta))
        if not outcome.changed:
            RECORDS_IN.labels(PROCESSOR, label, "stale" if outcome.stale else "duplicate").inc()
        pending = [await self._send(name, out_key, out) for name, out_key, out in outputs]
        # Wait for the broker before the table (and so its changelog) moves on: a crash in between
        # re-reads the event and re-emits the same outputs (same versions, same event ids).
        for delivery in pending:
            await delivery
        if outcome.state != state:  # also bookkeeping only, e.g. a newer as_of with the same figures
            self.table[key] = outcome.state.to_dict()

    async def _send(self, name: str, key: bytes, record: Any) -> Any:
        topic = self.out_topics[name]
        delivery = await topic.send(key=key, value=self.serde.encode(topic.get_topic_name(), record))
        RECORDS_OUT.labels(PROCESSOR, name).inc()
        return delivery


def run(settings: Settings, web_port: int | None = None) -> None:
    """Run the inventory worker in the foreground until interrupted."""
    from shopstream.faust_app import run_worker

    run_worker(InventoryProcessor(settings, web_port=web_port).app, settings)
