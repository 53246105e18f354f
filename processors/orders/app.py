"""Orders processor (`shopstream worker orders`): the Faust adapter around the canonical order core.

Consumes the four order topics, all keyed by order id and co-partitioned (copartition group `order`):
`shop.orders` (OrderPlaced / OrderUpdated / OrderCancelled), `payments`, `fulfillment.shipments` and
`returns`. Each record is decoded and fed, with the order's entry of the Faust table `orders`
(an `OrderRecord`: the canonical OrderState plus every source's facts, parked events and once-only
flags; JSON in the changelog), to the pure `canonical.apply`, which documents the whole behaviour:
strict transitions, status mappings as data, reconciliation, returns policy, parking of events for
orders not seen yet. This adapter only moves bytes:

- every `RecordOutcome.outputs` entry is sent to its topic (`orders.state`, `orders.status-changes`,
  `review.queue`, `commands.fulfillment`, `commands.erp`, `commands.payments`, `alerts.anomalies`,
  `inventory.stock` for restocked returns, `inventory.reservations` for reserve / adjust / release /
  ship per SKU), keyed as the core says (order id, or SKU for the two inventory topics);
- the table entry is written only after the broker confirmed every output, so the changelog never
  claims an event whose outputs were lost; a failed send is retried against the unchanged entry and
  re-emits the same records (the core's ids are deterministic: uuid5 of the cause), which every
  consumer treats as duplicates;
- duplicates, stale updates and already-parked events change nothing and emit nothing;
- undecodable records, records of a type that does not belong on their topic, a missing status
  mapping and handler bugs go to `<input topic>.dlq`; transient faults (broker, registry) are retried
  in place (`shopstream.processing`).

Clock: the adapter passes processing time (the wall clock) as the core's `now`, so a parked event
waits `parking.expire_after` *in this processor* before it expires: a backlog caught up after an
outage, or records replayed from a DLQ days later, are parked and matched as usual instead of
expiring on arrival because their `recorded_at` is old. Output ids stay deterministic (they derive
from the cause event), so a re-run re-emits the same records whatever the clock says.

The sweep: every `SHOPSTREAM_ORDERS_SWEEP_INTERVAL_S` a timer visits the entries of the partitions
this worker owns for which `canonical.waiting` holds (parked events; return requests waiting for a
delivery; inspections without a request) and applies `canonical.expire` with the wall clock, so an
order that never arrives, or a return that can never be decided, reaches `review.queue` without
another event for it. Those keys are kept in a set that every table write updates and one scan
rebuilds after each rebalance (the table is then refilled from the changelog), so a sweep parses
only waiting entries, not every order. The sweep and the agent take the same lock, so an entry is never
read-modified-written by both at once. The table partitions its changelog with the producer's
murmur2 partitioner (`use_partitioner`): the same partition as the order's input records, which is
what lets the timer write outside stream iteration.

Outputs go through Faust's producer, which Faust flushes before committing input offsets; it places
keys with murmur2 like every shopstream producer, so a reservation lands on its SKU's partition of
`inventory.stock` (tests/integration/test_partitioner.py). After a crash the uncommitted tail is read
again; the core treats it as duplicates, so state ends exactly as an oracle computes it
(tests/integration/test_orders_crash.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any, cast

import faust
from pydantic import BaseModel

from shopstream.config import Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord
from shopstream.faust_app import FaustPublisher, make_faust_app, wait_confirmed
from shopstream.kafka import partition_for
from shopstream.metrics import RECORDS_IN, RECORDS_OUT
from shopstream.processing import RetryPolicy, process_record
from shopstream.processors.orders import payments, returns, shipments
from shopstream.processors.orders.canonical import Context, RecordOutcome, apply, expire, waiting
from shopstream.processors.orders.mapping import StatusMapping, load_mapping
from shopstream.processors.orders.parking import DECISION_EVENTS, AnyEvent, order_id_of
from shopstream.processors.orders.record import OrderRecord
from shopstream.schemas.models import OrderCancelled, OrderPlaced, OrderUpdated
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import Topology, load_topology_for, names

log = logging.getLogger(__name__)

PROCESSOR = "orders"
INPUT = names.SHOP_ORDERS
# Each input topic and the records that belong on it (anything else is parked on its DLQ).
INPUTS: dict[str, tuple[type[BaseModel], ...]] = {
    INPUT: (OrderPlaced, OrderUpdated, OrderCancelled),
    names.PAYMENTS: payments.PAYMENT_EVENTS,
    names.FULFILLMENT_SHIPMENTS: shipments.SHIPMENT_EVENTS,
    names.RETURNS: returns.RETURN_EVENTS,
    names.REVIEW_DECISIONS: DECISION_EVENTS,
}
OUTPUTS = (names.ORDERS_STATE, names.ORDERS_STATUS_CHANGES, names.REVIEW_QUEUE, names.COMMANDS_FULFILLMENT,
           names.COMMANDS_ERP, names.COMMANDS_PAYMENTS, names.ALERTS_ANOMALIES, names.INVENTORY_STOCK,
           names.INVENTORY_RESERVATIONS, names.COMMANDS_SHOP)
TABLE = "orders"


class OrdersProcessor:
    """Holds the Faust app, topics and table of the orders worker."""

    def __init__(self, settings: Settings, web_port: int | None = None, topology: Topology | None = None) -> None:
        self.settings = settings
        self.topology = topology or load_topology_for(settings)
        # The table is partitioned like the `order` co-partition group of its inputs, and its changelog
        # is the one declared in the topology (created by `topics apply`, same settings if Faust does).
        self.changelog = self.topology.table_changelog(PROCESSOR, TABLE, INPUTS)
        self.partitions = self.changelog.partitions
        self.app = make_faust_app(settings, PROCESSOR, web_port=web_port, topology=self.topology)
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        self._mappings: dict[str, StatusMapping] = {}
        self.context = Context.from_files(self.mapping, settings.orders_policy or None,
                                          settings.returns_policy or None)
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        self._inputs = {settings.topic(name): name for name in INPUTS}
        self.input_topic = self.app.topic(*self._inputs, **raw)  # type: ignore[arg-type]
        self._outputs = {name: settings.topic(name) for name in OUTPUTS}
        # Keys raw bytes (the order id), values OrderRecord.to_dict() as JSON (Faust's default value codec).
        self.table = self.app.Table(TABLE, default=None, partitions=self.partitions, key_type=bytes,
                                    use_partitioner=True, extra_topic_configs=self.changelog.kafka_configs())
        self.dlq = DeadLetterWriter(FaustPublisher(self.app, settings.kafka_producer_timeout_s), PROCESSOR,
                                    self.topology.dlq_routes(settings.topic_prefix))
        self.retry = RetryPolicy(max_elapsed_s=settings.retry_max_elapsed_s)
        self._lock = asyncio.Lock()
        # Keys of owned entries `canonical.waiting` holds for, so a sweep parses only those, not every order.
        self._waiting: set[bytes] = set()
        self._waiting_for: frozenset[int] | None = None
        self._rescan = True
        self.app.on_rebalance_complete.connect(self._after_rebalance)  # type: ignore[arg-type]
        self.app.agent(self.input_topic, name="orders.lifecycle")(self._agent)
        self.app.timer(settings.orders_sweep_interval_s, name="orders.sweep")(self._sweep)

    def mapping(self, source: str) -> StatusMapping:
        """The status mapping of a source system (data in topology/mappings/)."""
        if source not in self._mappings:
            self._mappings[source] = load_mapping(source, self.settings.mappings_dir or None)
        return self._mappings[source]

    async def _agent(self, stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            msg = event.message
            record = FailedRecord(topic=msg.topic, key=msg.key, value=msg.value, headers=list(msg.headers or []),
                                  partition=msg.partition, offset=msg.offset,
                                  timestamp_ms=int(msg.timestamp * 1000) if msg.timestamp else None)
            label = self._inputs.get(msg.topic, msg.topic)
            await process_record(record, lambda r=record: self.handle(r), self.dlq, self.retry,  # type: ignore[misc]
                                 topic_label=label)

    async def handle(self, record: FailedRecord) -> None:
        """Decode, apply to the order's table entry, emit outputs; raises on failure (the caller classifies)."""
        name = self._inputs.get(record.topic, record.topic)
        event = self.serde.decode(record.value)
        if not isinstance(event, INPUTS.get(name, ())):
            raise TypeError(f"{type(event).__name__} does not belong on {name}")
        order_event = cast(AnyEvent, event)
        key = order_id_of(order_event).encode()
        async with self._lock:
            outcome = apply(self._load(key), order_event, self.context, datetime.now(UTC))
            if outcome.duplicate:
                RECORDS_IN.labels(PROCESSOR, name, "duplicate").inc()
            await self._commit(key, outcome)

    async def _sweep(self) -> None:
        """Expire what waits too long on the partitions this worker owns (see the module docstring)."""
        owned = frozenset(tp.partition for tp in self.app.assignor.assigned_actives()
                          if tp.topic == self.settings.topic(INPUT))
        if self._rescan or owned != self._waiting_for:
            # After a rebalance the table was (re)filled from the changelog, not through _commit: find
            # the waiting entries once; from then on _commit keeps the set current.
            self._rescan = False
            self._waiting = {k for k in list(self.table.keys()) if partition_for(k, self.partitions) in owned
                             and (record := self._load(k)) is not None and waiting(record)}
            self._waiting_for = owned
        now = datetime.now(UTC)
        for key in sorted(k for k in self._waiting if partition_for(k, self.partitions) in owned):
            async with self._lock:
                record = self._load(key)
                if record is None or not waiting(record):
                    continue
                outcome = expire(record, self.context, now)
                if outcome.changed or outcome.outputs:
                    log.info("orders sweep: order %s: %d record(s) to review", record.order_id,
                             len(outcome.outputs))
                await self._commit(key, outcome)

    async def _after_rebalance(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Faust recovered the tables of a new assignment: the next sweep rebuilds its set of waiting keys."""
        self._rescan = True

    def _load(self, key: bytes) -> OrderRecord | None:
        stored = self.table.get(key)
        if not stored:
            return None
        return OrderRecord.from_dict(json.loads(stored) if isinstance(stored, str | bytes) else stored)

    async def _commit(self, key: bytes, outcome: RecordOutcome) -> None:
        """Send the outcome's records, wait for the broker, then store the entry (in that order: see above)."""
        pending = []
        for out in outcome.outputs:
            topic = self._outputs[out.topic]
            value = self.serde.encode(topic, out.record)
            pending.append(await self.app.producer.send(topic, out.key.encode(), value, None, None, None))
            RECORDS_OUT.labels(PROCESSOR, out.topic).inc()
        await wait_confirmed(pending, self.settings.kafka_producer_timeout_s)
        if outcome.changed:
            self.table[key] = outcome.record.to_dict()
            if waiting(outcome.record):
                self._waiting.add(key)
            else:
                self._waiting.discard(key)


def run(settings: Settings, web_port: int | None = None) -> None:
    """Run the orders worker in the foreground until interrupted."""
    from shopstream.faust_app import run_worker

    run_worker(OrdersProcessor(settings, web_port=web_port).app, settings)
