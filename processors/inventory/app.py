"""Inventory processor (`shopstream worker inventory`): the pure ATP core on the runner (`shopstream.runner`).

Consumes `inventory.stock` (StockSnapshot / StockSnapshotBatch / StockAdjusted / GoodsReceived) and
`inventory.reservations` (ReservationChanged), both keyed by SKU and co-partitioned (copartition group
`sku`; the store has that group's partition count, from the topology), keeps one `SkuState` per SKU in
the runner's state store (in memory the `SkuState` itself; in the changelog `inventory-atp-changelog`
its figures under the SKU and each reservation under its own key, `inventory.changelog`) and feeds
every event through the matching `apply_*` of `shopstream.processors.inventory.atp`, which holds all of
the arithmetic and the idempotence rules (the figures it sums in `inventory.figures`, the per-SKU
state and its stored form in `inventory.sku_state`):
- a StockSnapshot is the ERP count of one location as of `as_of`; an older one is stale and
  ignored, one repeating the current figures is a duplicate;
- a StockSnapshotBatch (bulk ERP exports, connectors/erp_stock.py) is many such counts of one
  location and one as_of whose SKUs all belong to the record's partition: each line is applied
  exactly like a StockSnapshot of its SKU, in line order, and every line's outputs are confirmed
  before any of the batch's states is written (so a crash re-applies the batch as duplicates). A
  line whose SKU belongs to another partition dead-letters the whole batch before anything applies;
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
  evidence: available, version and the orders) and one ReviewItem `oversold` per order newly in
  deficit (`newly_oversold`: an order already reported is not queued again at the next oversell) on
  `review.queue` (keyed by order id).
AtpLevel records are written field by field (`shopstream.codecs.atp_level.AtpLevelEncoder`, the same
bytes as fastavro writes for `atp_level_datum`, which stays the reference; it refuses to start
otherwise), not from pydantic models: on the bulk path the model, and even fastavro's generic
writer, cost more than the arithmetic. Every output's event id is derived from SKU and version (and
order), so a re-emission after a crash carries the same id. Duplicates and stale events change
nothing and emit nothing; they are counted in `shopstream_records_in_total` with outcome `duplicate`
/ `stale` (an event that only updates bookkeeping, e.g. a repeated snapshot with a newer `as_of`,
counts as `duplicate` too).
Undecodable records, records of the wrong type, records not keyed by their SKU (their state would
live on another partition) and events the core rejects (negative quantities) go to `<topic>.dlq`;
transient faults are retried in place (the runner's one retry policy).

The runner handles both topics' records of a partition one at a time in one thread, so no two
events of a SKU interleave. Outputs and changelog records go through the runner's one confirming
producer and are confirmed once per commit interval; only then are the states stored and offsets
committed, so the changelog never claims an event whose output was lost, and after a crash the
uncommitted tail is read again and the core treats it as duplicates. A refused changelog record halts
the worker without committing (exit 76), so a restart re-reads every event whose state may be missing
from the changelog instead of rolling a SKU back a version (tests/integration/test_broker_faults.py).

Bulk speed: a batch is decoded to plain values (no pydantic model per line), a line that repeats the
SKU's figures takes the core's short path (only `as_of` moves) and emits nothing, metrics are counted
once per batch, and the state objects are slotted dataclasses: on a million SKUs the garbage
collector's full passes over the table cost as much as the arithmetic with a `__dict__` per object.

Bounded state: with `keep_finished_reservations` in the policy (shipped: 30 d, longer than
`inventory.reservations` and its DLQ keep records), each applied reservation event forgets the SKU's
released and counted reservations that finished longer ago (`atp.prune`), so a best-selling SKU's
state does not grow with every order it was in. Open reservations it must keep: each is its own
changelog record, so an event writes the SKU's figures and the reservations it changed, not all of
them (`inventory.changelog`: one record had grown to 65 KB at 360 open reservations).

SyncShopStock towards the shop is not sent here: `worker shop-sync` (`shop_sync_worker.py`) reads
`inventory.atp` and coalesces per SKU, so this worker's per-event cost stays independent of the
shop's rate limits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shopstream.codecs import atp_level as atp_level_codec
from shopstream.codecs.atp_level import AtpLevelEncoder
from shopstream.config import Settings
from shopstream.kafka import partition_for
from shopstream.metrics import RECORDS_IN
from shopstream.processors.inventory import changelog
from shopstream.processors.inventory.atp import (
    Outcome,
    apply_adjustment,
    apply_goods_received,
    apply_reservation,
    apply_snapshot,
)
from shopstream.processors.inventory.config import InventoryConfig, load_inventory_config
from shopstream.processors.inventory.figures import Levels
from shopstream.processors.inventory.sku_state import SkuState, new_state
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.schemas.models import (
    AnomalyAlert,
    AtpLevel,
    EventMeta,
    GoodsReceived,
    ReorderRequest,
    ReservationChanged,
    ReviewItem,
    StockAdjusted,
    StockSnapshot,
    StockSnapshotBatch,
)
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import Topology, load_topology_for, names

PROCESSOR = "inventory"
STOCK = names.INVENTORY_STOCK
RESERVATIONS = names.INVENTORY_RESERVATIONS
OUTPUT = names.INVENTORY_ATP
TABLE = "atp"
ATP_NS = uuid.UUID("5d0c7a8e-2b1f-4f3e-9a51-8e4b6c2d7f30")
# AtpLocation.as_of is required; a location that no ERP snapshot has counted yet (known only from
# adjustments or reservations) reports the epoch: "never counted".
NEVER_COUNTED = datetime(1970, 1, 1, tzinfo=UTC)

StockEvent = StockSnapshot | StockAdjusted | GoodsReceived
Output = tuple[str, bytes | None, bytes]


def atp_level_datum(levels: Levels, cause: EventMeta) -> dict[str, Any]:
    """The AtpLevel of a SKU's figures (after a change caused by `cause`), as the Avro dict."""
    return atp_level_codec.atp_level_datum(levels, cause, event_ns=ATP_NS, never_counted=NEVER_COUNTED)


def atp_level(levels: Levels, cause: EventMeta) -> AtpLevel:
    """`atp_level_datum` as the validated model."""
    return AtpLevel.model_validate(atp_level_datum(levels, cause))


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


def oversold(levels: Levels, orders: tuple[str, ...], newly: tuple[str, ...],
             cause: EventMeta) -> list[tuple[str, bytes, Any]]:
    """(output topic, key, record): the Oversold alert for the SKU naming every order in deficit, and a
    review item per order newly in deficit."""
    evidence = {"available": str(levels.available), "version": str(levels.version), "orders": ",".join(orders),
                "cause_event_id": cause.event_id, "cause_event_type": cause.event_type}
    alert = AnomalyAlert(meta=_meta("oversold", "AnomalyAlert", levels, cause), kind="oversold", subject=levels.sku,
                         severity="critical", summary=f"{levels.sku} oversold: available {levels.available}",
                         evidence=evidence, detected_at=levels.updated_at or cause.occurred_at)
    out: list[tuple[str, bytes, Any]] = [(names.ALERTS_ANOMALIES, levels.sku.encode(), alert)]
    for order_id in newly:
        item = ReviewItem(meta=_meta("oversold", "ReviewItem", levels, cause, order_id), order_id=order_id,
                          kind="oversold", reason=f"{levels.sku} oversold: available {levels.available}",
                          details={"sku": levels.sku, "available": str(levels.available),
                                   "atp_version": str(levels.version)},
                          event_id=cause.event_id, event_type=cause.event_type, rule=None)
        out.append((names.REVIEW_QUEUE, order_id.encode(), item))
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


class InventoryProcessor(ProcessorBase):
    """The inventory worker's processor on the runner: state = one `SkuState` per SKU."""

    name = PROCESSOR
    inputs: tuple[str, ...] = (STOCK, RESERVATIONS)
    # A StockSnapshotBatch holds up to 1,000 lines: 50 records bound a confirm (and its memory) at ~50k SKUs.
    batch_size = 50

    def __init__(self, settings: Settings, config: InventoryConfig | None = None,
                 topology: Topology | None = None) -> None:
        self.settings = settings
        self.config = config or load_inventory_config()
        self.topology = topology or load_topology_for(settings)
        # The store is partitioned like the `sku` co-partition group of its inputs (so a bulk snapshot's
        # lines share the partition they arrive on), with the changelog declared in the topology.
        changelog = self.topology.table_changelog(PROCESSOR, TABLE, (STOCK, RESERVATIONS))
        self.changelog = changelog.name
        self.partitions = changelog.partitions
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        self._topic_names = {name: settings.topic(name)
                             for name in (OUTPUT, names.COMMANDS_ERP, names.ALERTS_ANOMALIES, names.REVIEW_QUEUE)}
        # Built (and so checked against fastavro) here: a writer that disagrees with the schema must stop
        # the worker at start, not fail every record into the DLQ. The frame's schema id comes from the
        # registry on first use (`_atp_level_encoder`).
        self._atp_writer = AtpLevelEncoder(0, event_ns=ATP_NS, never_counted=NEVER_COUNTED)
        self._atp_encoder: AtpLevelEncoder | None = None
        self._skipped = {(label, kind): RECORDS_IN.labels(PROCESSOR, label, kind)
                         for label in (STOCK, RESERVATIONS) for kind in ("stale", "duplicate")}
        # partition -> SKU keys restored from the changelog layout before `inventory.changelog`'s
        self._old_layout: dict[int, set[bytes]] = {}

    def encode_state(self, value: Any) -> bytes:
        """A store value as changelog JSON: a SKU's figures or one reservation (`inventory.changelog`)."""
        return changelog.encode(value)

    def decode_state(self, data: bytes) -> Any:
        """A changelog value back into a store value; `restored` puts the reservations into their SKUs."""
        return changelog.decode(data)

    def restored(self, partition: int, state: Mapping[bytes, Any]) -> None:
        """Each reservation into its SKU's state; SKUs of the old layout write all theirs at their next change."""
        assert isinstance(state, dict)  # the runner's store: the partition's own dict
        self._old_layout[partition] = changelog.fold(state)

    def dropped(self, partition: int) -> None:
        """The partition went elsewhere."""
        self._old_layout.pop(partition, None)

    def _writes(self, partition: int, key: bytes, before: SkuState, after: SkuState) -> dict[bytes, Any]:
        """The store writes of one SKU's change (`changelog.writes`)."""
        old = self._old_layout.get(partition)
        every = old is not None and key in old
        if old is not None and every:
            old.discard(key)
        return changelog.writes(key, before, after, every=every)

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Decode, apply to the SKU's state: the outputs and new states (raises: the runner classifies)."""
        label = record.label
        if label == STOCK and self.serde.record_name(record.value) == StockSnapshotBatch.AVRO_NAME:
            # Plain values, no pydantic model per line: a bulk export's cost is per line.
            return self._handle_batch(record, self.serde.decode_datum(record.value, StockSnapshotBatch.AVRO_NAME),
                                      state)
        event = self.serde.decode(record.value)
        expected = (ReservationChanged,) if label == RESERVATIONS else (StockSnapshot, StockAdjusted, GoodsReceived)
        if not isinstance(event, expected):
            raise TypeError(f"{type(event).__name__} does not belong on {label}")
        assert isinstance(event, StockSnapshot | StockAdjusted | GoodsReceived | ReservationChanged)
        key = event.sku.encode()
        if record.key != key:
            # The SKU's state lives with its key's partition; a record keyed otherwise would split it.
            raise ValueError(f"record key {record.key!r} is not the event's SKU {event.sku!r}")
        current = self._state(state, key, event.sku)
        outcome = apply_event(current, self.config, event)
        outputs = self._outputs(key, outcome, event.meta)
        if not outcome.changed:
            self._skipped[(label, "stale" if outcome.stale else "duplicate")].inc()
        return Effects(outputs, self._writes(record.partition, key, current, outcome.state)
                       if outcome.state != current else {})

    def _handle_batch(self, record: Record, batch: dict[str, Any], state: Mapping[bytes, Any]) -> Effects:
        """Each line like a StockSnapshot of its SKU, in line order; one Effects for the whole batch.

        `batch` is the plain StockSnapshotBatch datum (`AvroSerde.decode_datum`: times as epoch ms)."""
        partitions = self.partitions
        lines = batch["lines"]
        for line in lines:
            if partition_for(line["sku"].encode(), partitions) != record.partition:
                raise ValueError(f"StockSnapshotBatch on partition {record.partition} holds SKU {line['sku']!r}, "
                                 f"which belongs to partition {partition_for(line['sku'].encode(), partitions)}")
        meta = batch["meta"]
        cause = EventMeta.model_validate({**meta, "occurred_at": _from_millis(meta["occurred_at"]),
                                          "recorded_at": _from_millis(meta["recorded_at"])})
        location, as_of = batch["location"], _from_millis(batch["as_of"])
        # One policy for every line unless reorder points are set per SKU.
        same = None if self.config.reorder_points.skus else self.config.policy("")
        policy = self.config.policy
        states: dict[bytes, SkuState] = {}
        before: dict[bytes, SkuState] = {}
        outputs: list[Output] = []
        quiet = {"stale": 0, "duplicate": 0}  # lines that changed no figure, counted once per batch
        for line in lines:
            sku = line["sku"]
            key = sku.encode()
            current = states.get(key) or self._state(state, key, sku)
            outcome = apply_snapshot(current, same or policy(sku), location=location, on_hand=line["on_hand"],
                                     safety_stock=line["safety_stock"], incoming=line["incoming"], as_of=as_of)
            outputs.extend(self._outputs(key, outcome, cause))
            if not outcome.changed:
                quiet["stale" if outcome.stale else "duplicate"] += 1
            if outcome.state is not current:
                before.setdefault(key, current)
                states[key] = outcome.state
        for kind, lines_ in quiet.items():
            if lines_:
                self._skipped[(STOCK, kind)].inc(lines_)
        writes: dict[bytes, Any] = {}
        for key, state_ in states.items():
            prior = before[key]
            if state_.reservations is prior.reservations and not self._old_layout.get(record.partition):
                writes[key] = state_  # the bulk path: a snapshot line that changed no reservation
            else:
                writes.update(self._writes(record.partition, key, prior, state_))
        return Effects(outputs, writes)

    @staticmethod
    def _state(state: Mapping[bytes, Any], key: bytes, sku: str) -> SkuState:
        """The SKU's state in the store (or a new one)."""
        stored = state.get(key)
        if stored is None:
            return new_state(sku)
        if isinstance(stored, SkuState):
            return stored
        return SkuState.from_dict(json.loads(stored) if isinstance(stored, str | bytes) else stored)

    def _outputs(self, key: bytes, outcome: Outcome, cause: EventMeta) -> list[Output]:
        """(output, key, encoded value) for what the outcome says (callers count events that changed nothing)."""
        outputs: list[Output] = []
        if not (outcome.changed or outcome.reorder_crossed or outcome.oversold_orders):
            return outputs  # its figures are never computed
        levels = outcome.levels
        if outcome.changed:
            outputs.append((OUTPUT, key, self._atp_level_encoder().encode(levels, cause)))
        point = outcome.policy.reorder_point
        if outcome.reorder_crossed and point is not None:
            outputs.append((names.COMMANDS_ERP, key,
                            self._encode(names.COMMANDS_ERP, reorder_request(levels, point, cause))))
        if outcome.oversold_orders:
            outputs.extend((name, out_key, self._encode(name, out))
                           for name, out_key, out in oversold(levels, outcome.oversold_orders,
                                                              outcome.newly_oversold, cause))
        return outputs

    def _atp_level_encoder(self) -> AtpLevelEncoder:
        """The AtpLevel writer, built on first use: it needs the schema id from the registry."""
        if self._atp_encoder is None:
            schema_id = self.serde.schema_id(self._topic_names[OUTPUT], AtpLevel.AVRO_NAME)
            self._atp_encoder = self._atp_writer.with_schema_id(schema_id)
        return self._atp_encoder

    def _encode(self, name: str, record: Any) -> bytes:
        return self.serde.encode(self._topic_names[name], record)


def _from_millis(millis: int) -> datetime:
    """An Avro timestamp-millis as a UTC datetime (exact, unlike fromtimestamp on a float)."""
    return _EPOCH + timedelta(milliseconds=millis)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def run(settings: Settings, web_port: int | None = None) -> None:
    """Run the inventory worker in the foreground until interrupted."""
    run_processor(settings, InventoryProcessor(settings), web_port=web_port)
