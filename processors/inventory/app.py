"""Inventory processor (`shopstream worker inventory`): the Faust adapter around the pure ATP core.

Consumes `inventory.stock` (StockSnapshot / StockSnapshotBatch / StockAdjusted / GoodsReceived) and
`inventory.reservations` (ReservationChanged), both keyed by SKU and co-partitioned (copartition group
`sku`; the table has that group's partition count, from the topology), keeps one `SkuState` per SKU in
the Faust table `atp` (key: the SKU, value: `SkuState.to_dict()` as JSON in the changelog, the
`SkuState` itself in memory) and feeds every event through the matching `apply_*` of
`shopstream.processors.inventory.atp`, which holds all of the arithmetic and the idempotence rules:
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
  evidence: available, version and the orders) and one ReviewItem `oversold` per order on
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
transient faults are retried in place (shopstream.processing).

One agent reads both topics, so events are handled one at a time: the handler awaits the broker
between reading a SKU's state and writing it back, and two agents (one per topic) could interleave
there and lose an update. The table is written only after the broker confirmed every output (as in
the orders processor), so the changelog never claims an event whose output was lost; after a crash
the uncommitted tail is read again and the core treats it as duplicates. Outputs and changelog
records go through a librdkafka producer (`shopstream.kafka.AsyncProducer`, the one producer
factory), queued without a future per record: an event's (a batch's) outputs are confirmed before
its changelog records are queued, and every changelog record is confirmed before Faust commits an
offset past its event (the worker wraps Faust's pre-commit flush, `_confirm_before_commit`).
A refused output or changelog record cannot be pinned on one event (the producer reports only
failures, by record): it latches the producer, and the worker halts without committing (exit code
76) as soon as it next queues, confirms or flushes, so a restart re-reads every event whose state
may be missing from the changelog instead of rolling a SKU back a version.

Bulk speed: a batch is decoded to plain values (no pydantic model per line), a line that repeats the
SKU's figures takes the core's short path (only `as_of` moves) and emits nothing, metrics are counted
once per batch, and the state objects are slotted dataclasses: on a million SKUs the garbage
collector's full passes over the table cost as much as the arithmetic with a `__dict__` per object.

Bounded state: with `keep_finished_reservations` in the policy (shipped: 30 d, longer than
`inventory.reservations` and its DLQ keep records), each applied reservation event forgets the SKU's
released and counted reservations that finished longer ago (`atp.prune`), so a best-selling SKU's
state — written whole to the changelog on every change — does not grow with every order it was in.

SyncShopStock towards the shop is not sent here: `worker shop-sync` (`shop_sync_worker.py`) reads
`inventory.atp` and coalesces per SKU, so this worker's per-event cost stays independent of the
shop's rate limits.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import orjson
from faust.serializers import codecs

from shopstream.codecs import atp_level as atp_level_codec
from shopstream.codecs.atp_level import AtpLevelEncoder
from shopstream.config import Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord
from shopstream.faust_app import FaustPublisher, make_faust_app
from shopstream.halt import MustRestart, halt
from shopstream.kafka import AsyncProducer, partition_for
from shopstream.metrics import RECORDS_IN, RECORDS_OUT
from shopstream.processing import RetryPolicy, process_record
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
SKU_STATE_CODEC = "shopstream-sku-state"


class SkuStateCodec(codecs.Codec):
    """Table values: the `SkuState` in memory (no parsing per event), `to_dict()` JSON in the changelog.

    orjson writes the dataclass itself: the same JSON as `to_dict()` (a unit test checks it) at a tenth
    of the cost, which a bulk snapshot pays once per SKU."""

    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return SkuState.from_dict(orjson.loads(s))


_CODEC = SkuStateCodec()
codecs.register(SKU_STATE_CODEC, _CODEC)


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


def oversold(levels: Levels, orders: tuple[str, ...], cause: EventMeta) -> list[tuple[str, bytes, Any]]:
    """(output topic, key, record): the Oversold alert for the SKU and a review item per order."""
    evidence = {"available": str(levels.available), "version": str(levels.version), "orders": ",".join(orders),
                "cause_event_id": cause.event_id, "cause_event_type": cause.event_type}
    alert = AnomalyAlert(meta=_meta("oversold", "AnomalyAlert", levels, cause), kind="oversold", subject=levels.sku,
                         severity="critical", summary=f"{levels.sku} oversold: available {levels.available}",
                         evidence=evidence, detected_at=levels.updated_at or cause.occurred_at)
    out: list[tuple[str, bytes, Any]] = [(names.ALERTS_ANOMALIES, levels.sku.encode(), alert)]
    for order_id in orders:
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


class InventoryProcessor:
    """Holds the Faust app, topics and table of the inventory worker."""

    def __init__(self, settings: Settings, web_port: int | None = None,
                 config: InventoryConfig | None = None, topology: Topology | None = None) -> None:
        self.settings = settings
        self.config = config or load_inventory_config()
        self.topology = topology or load_topology_for(settings)
        # The table is partitioned like the `sku` co-partition group of its inputs (so a bulk snapshot's
        # lines share the partition they arrive on), with the changelog declared in the topology.
        self.changelog = self.topology.table_changelog(PROCESSOR, TABLE, (STOCK, RESERVATIONS))
        self.partitions = self.changelog.partitions
        self.app = make_faust_app(settings, PROCESSOR, web_port=web_port, topology=self.topology)
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        self.input_topics = self.app.topic(settings.topic(STOCK), settings.topic(RESERVATIONS),
                                           **raw)  # type: ignore[arg-type]
        self.out_topics = {name: self.app.topic(settings.topic(name), **raw)  # type: ignore[arg-type]
                           for name in (OUTPUT, names.COMMANDS_ERP, names.ALERTS_ANOMALIES, names.REVIEW_QUEUE)}
        self._topic_names = {name: topic.get_topic_name() for name, topic in self.out_topics.items()}
        self._sent = {name: RECORDS_OUT.labels(PROCESSOR, name) for name in self.out_topics}
        self._labels = {settings.topic(STOCK): STOCK, settings.topic(RESERVATIONS): RESERVATIONS}
        # Keys raw bytes (the SKU); values SkuState, JSON of SkuState.to_dict() in the changelog.
        self.table = self.app.Table(TABLE, default=None, partitions=self.partitions, key_type=bytes,
                                    extra_topic_configs=self.changelog.kafka_configs())
        # Faust derives the codec from value_type (a faust.Record) in the constructor; the table passes
        # its own attribute to every changelog send, the store its own when recovering: set both.
        self.table.value_serializer = self.table.data.value_serializer = SKU_STATE_CODEC  # type: ignore[attr-defined]
        self.dlq = DeadLetterWriter(FaustPublisher(self.app, settings.kafka_producer_timeout_s), PROCESSOR,
                                    self.topology.dlq_routes(settings.topic_prefix))
        self.retry = RetryPolicy(max_elapsed_s=settings.retry_max_elapsed_s)
        self.sender = AsyncProducer(settings, queued_only=True)
        # Built (and so checked against fastavro) here: a writer that disagrees with the schema must stop
        # the worker at start, not fail every record into the DLQ. The frame's schema id comes from the
        # registry on first use (`_atp_level_encoder`).
        self._atp_writer = AtpLevelEncoder(0, event_ns=ATP_NS, never_counted=NEVER_COUNTED)
        self._atp_encoder: AtpLevelEncoder | None = None
        self.app.agent(self.input_topics, name="inventory.atp")(self._agent)
        self._skipped = {(label, kind): RECORDS_IN.labels(PROCESSOR, label, kind)
                         for label in (STOCK, RESERVATIONS) for kind in ("stale", "duplicate")}

    async def _agent(self, stream: faust.StreamT[Any]) -> None:
        self._confirm_before_commit()
        async for event in stream.events():
            msg = event.message
            record = FailedRecord(topic=msg.topic, key=msg.key, value=msg.value, headers=list(msg.headers or []),
                                  partition=msg.partition, offset=msg.offset,
                                  timestamp_ms=int(msg.timestamp * 1000) if msg.timestamp else None)
            await process_record(record, lambda r=record: self.handle(r), self.dlq, self.retry,  # type: ignore[misc]
                                 topic_label=self._labels.get(msg.topic, msg.topic))

    async def handle(self, record: FailedRecord) -> None:
        """Decode, apply to the SKU's state, emit the outputs; raises on failure (the caller classifies)."""
        label = self._labels.get(record.topic, record.topic)
        if label == STOCK and self.serde.record_name(record.value) == StockSnapshotBatch.AVRO_NAME:
            # Plain values, no pydantic model per line: a bulk export's cost is per line.
            await self._handle_batch(record, self.serde.decode_datum(record.value, StockSnapshotBatch.AVRO_NAME))
            return
        event = self.serde.decode(record.value)
        expected = (ReservationChanged,) if label == RESERVATIONS else (StockSnapshot, StockAdjusted, GoodsReceived)
        if not isinstance(event, expected):
            raise TypeError(f"{type(event).__name__} does not belong on {label}")
        assert isinstance(event, StockSnapshot | StockAdjusted | GoodsReceived | ReservationChanged)
        key = event.sku.encode()
        if record.key != key:
            # The SKU's state lives with its key's partition; a record keyed otherwise would split it.
            raise ValueError(f"record key {record.key!r} is not the event's SKU {event.sku!r}")
        state = self._state(key, event.sku)
        outcome = apply_event(state, self.config, event)
        outputs = self._outputs(key, outcome, event.meta)
        if not outcome.changed:
            self._skipped[(label, "stale" if outcome.stale else "duplicate")].inc()
        await self._emit(outputs, {key: outcome.state} if outcome.state != state else {}, record.partition)

    async def _handle_batch(self, record: FailedRecord, batch: dict[str, Any]) -> None:
        """Each line like a StockSnapshot of its SKU; states written once every output is confirmed.

        `batch` is the plain StockSnapshotBatch datum (`AvroSerde.decode_datum`: times as epoch ms)."""
        partitions = self.partitions
        lines = batch["lines"]
        if record.partition is not None:
            for line in lines:
                if partition_for(line["sku"].encode(), partitions) != record.partition:
                    raise ValueError(f"StockSnapshotBatch on partition {record.partition} holds SKU {line['sku']!r}, "
                                     f"which belongs to partition {partition_for(line['sku'].encode(), partitions)}")
        meta = batch["meta"]
        cause = EventMeta.model_validate({**meta, "occurred_at": _from_millis(meta["occurred_at"]),
                                          "recorded_at": _from_millis(meta["recorded_at"])})
        location, as_of = batch["location"], _from_millis(batch["as_of"])
        stored = self.table.data
        # One policy for every line unless reorder points are set per SKU.
        same = None if self.config.reorder_points.skus else self.config.policy("")
        policy = self.config.policy
        states: dict[bytes, SkuState] = {}
        outputs: list[tuple[str, bytes, bytes]] = []
        quiet = {"stale": 0, "duplicate": 0}  # lines that changed no figure, counted once per batch
        for line in lines:
            sku = line["sku"]
            key = sku.encode()
            state = states.get(key) or self._state(key, sku, stored)
            outcome = apply_snapshot(state, same or policy(sku), location=location, on_hand=line["on_hand"],
                                     safety_stock=line["safety_stock"], incoming=line["incoming"], as_of=as_of)
            outputs.extend(self._outputs(key, outcome, cause))
            if not outcome.changed:
                quiet["stale" if outcome.stale else "duplicate"] += 1
            if outcome.state is not state:
                states[key] = outcome.state
        await self._emit(outputs, states, record.partition)
        for kind, lines_ in quiet.items():
            if lines_:
                self._skipped[(STOCK, kind)].inc(lines_)

    def _state(self, key: bytes, sku: str, table: Any = None) -> SkuState:
        """The SKU's state; `table`: the table's store, when the caller holds it (bulk lines)."""
        stored = (self.table.data if table is None else table).get(key)
        if stored is None:
            return new_state(sku)
        if isinstance(stored, SkuState):
            return stored
        return SkuState.from_dict(json.loads(stored) if isinstance(stored, str | bytes) else stored)

    def _outputs(self, key: bytes, outcome: Outcome, cause: EventMeta) -> list[tuple[str, bytes, bytes]]:
        """(output, key, encoded value) for what the outcome says (callers count events that changed nothing)."""
        outputs: list[tuple[str, bytes, bytes]] = []
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
                           for name, out_key, out in oversold(levels, outcome.oversold_orders, cause))
        return outputs

    def _atp_level_encoder(self) -> AtpLevelEncoder:
        """The AtpLevel writer, built on first use: it needs the schema id from the registry."""
        if self._atp_encoder is None:
            schema_id = self.serde.schema_id(self._topic_names[OUTPUT], AtpLevel.AVRO_NAME)
            self._atp_encoder = self._atp_writer.with_schema_id(schema_id)
        return self._atp_encoder

    def _encode(self, name: str, record: Any) -> bytes:
        return self.serde.encode(self._topic_names[name], record)

    async def _emit(self, outputs: list[tuple[str, bytes, bytes]], states: dict[bytes, SkuState],
                    partition: int | None) -> None:
        # librdkafka (the one producer factory), not Faust's aiokafka producer: per record it costs a
        # fraction, and a bulk snapshot writes a million outputs and changelog records (py-spy).
        sender = self.sender
        for name, key, value in outputs:
            await sender.produce(self._topic_names[name], key, value)
            self._sent[name].inc()
        # Outputs are confirmed before the changelog records are queued: a crash in between re-reads
        # the event against the unchanged state and re-emits the same outputs (same versions, same
        # event ids). The changelog is confirmed before any offset is committed (`_confirm_before_commit`),
        # not here: a daily export's batches emit nothing but changelog records, and a wait per batch
        # idled the worker for a fifth of the run.
        if outputs:
            await sender.confirm()
        if not states:
            return
        # The table's write path by hand: the changelog record Faust's __setitem__ would send (same
        # topic, key, codec and partition: the current event's), then the store. Faust's per-set
        # machinery cost as much as the rest of a bulk line (py-spy). Bookkeeping-only changes (a
        # newer as_of) are written too: they decide what later events count.
        changelog = self.table.changelog_topic.get_topic_name()
        data = self.table.data
        for key, state in states.items():
            await sender.produce(changelog, key, _CODEC.dumps(state), partition)
            data[key] = state

    def _confirm_before_commit(self) -> None:
        """Make Faust's flush before every offset commit (and before a rebalance) confirm our producer too.

        Faust commits the offsets of acknowledged events after `app.producer.flush()`, which knows only
        its own producer; this worker's changelog records go through `self.sender`. Wrapping the flush
        keeps the rule that no offset is committed past an event whose changelog record is unconfirmed.
        A record the broker refused latches `self.sender` (`AsyncProducer`): every later flush would
        raise, but Faust's shutdown paths must not get the chance to commit anyway, so the worker halts
        here at once without committing (exit code 76, `shopstream.halt`) and, restarted, re-reads from
        the last committed offset: the refused state is applied again, and no SKU's version goes back."""
        producer = self.app.producer
        faust_flush = producer.flush

        async def flush() -> None:
            try:
                await self.sender.confirm()
            except MustRestart as exc:
                halt(f"{PROCESSOR}: a record written before this commit was refused: {exc}", exc.exit_code)
            await faust_flush()

        producer.flush = flush  # type: ignore[method-assign]


def _from_millis(millis: int) -> datetime:
    """An Avro timestamp-millis as a UTC datetime (exact, unlike fromtimestamp on a float)."""
    return _EPOCH + timedelta(milliseconds=millis)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def run(settings: Settings, web_port: int | None = None) -> None:
    """Run the inventory worker in the foreground until interrupted."""
    from shopstream.faust_app import run_worker

    run_worker(InventoryProcessor(settings, web_port=web_port).app, settings)
