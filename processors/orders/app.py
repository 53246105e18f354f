"""Orders processor (`shopstream worker orders`): the canonical order core on the runner (`shopstream.runner`).

Consumes the four order topics, all keyed by order id and co-partitioned (copartition group `order`):
`shop.orders` (OrderPlaced / OrderUpdated / OrderCancelled), `payments`, `fulfillment.shipments` and
`returns`. Each record is decoded and fed, with the order's entry of the runner's state store
(an `OrderRecord` per order id: the canonical OrderState plus every source's facts, parked events and
once-only flags; `to_dict()` JSON in the changelog `orders-orders-changelog`), to the pure
`canonical.apply`, whose module documents the whole behaviour and names the modules that hold each part:
strict transitions, status mappings as data, reconciliation, returns policy, parking of events for
orders not seen yet. This adapter only moves bytes:

- every `RecordOutcome.outputs` entry is sent to its topic (`orders.state`, `orders.status-changes`,
  `review.queue`, `commands.fulfillment`, `commands.erp`, `commands.payments`, `alerts.anomalies`,
  `inventory.stock` for restocked returns, `inventory.reservations` for reserve / adjust / release /
  ship per SKU), keyed as the core says (order id, or SKU for the two inventory topics);
- the entry is stored only after the broker confirmed every output and its changelog record (once
  per commit interval, not per record: a later record sees the earlier ones' entries), so the
  changelog never claims an event whose outputs were lost; a failed send is
  retried against the unchanged entry and re-emits the same records (the core's ids are
  deterministic: uuid5 of the cause), which every consumer treats as duplicates;
- duplicates, stale updates and already-parked events change nothing and emit nothing;
- undecodable records, records of a type that does not belong on their topic, a missing status
  mapping and handler bugs go to `<input topic>.dlq`; transient faults (broker, registry) are retried
  in place (the runner's one retry policy).

Clock: the adapter passes processing time (the wall clock) as the core's `now`, so a parked event
waits `parking.expire_after` *in this processor* before it expires: a backlog caught up after an
outage, or records replayed from a DLQ days later, are parked and matched as usual instead of
expiring on arrival because their `recorded_at` is old. Output ids stay deterministic (they derive
from the cause event), so a re-run re-emits the same records whatever the clock says.

The sweep is the runner's tick: every `SHOPSTREAM_ORDERS_SWEEP_INTERVAL_S` it visits the entries
of the partitions this worker owns for which `canonical.waiting` holds (parked events; return
requests waiting for a delivery; inspections without a request) and applies `canonical.expire` with
the wall clock, so an order that never arrives, or a return that can never be decided, reaches
`review.queue` without another event for it. Those keys are kept per partition in a set that every
stored batch updates and each restore rebuilds, so a sweep parses only waiting entries, not every
order. The tick runs in the runner's thread between batches: no lock is needed.

Outputs and changelog records go through the runner's one confirming producer (murmur2, like every
shopstream producer), so a reservation lands on its SKU's partition of `inventory.reservations`
(tests/integration/test_partitioner.py). After a crash the uncommitted tail is read again; the core
treats it as duplicates, so state ends exactly as an oracle computes it
(tests/integration/test_orders_crash.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from pydantic import BaseModel

from shopstream.config import Settings
from shopstream.metrics import RECORDS_IN
from shopstream.processors.orders import payments, returns, shipments
from shopstream.processors.orders.canonical import apply, expire, waiting
from shopstream.processors.orders.context import Context
from shopstream.processors.orders.mapping import StatusMapping, load_mapping
from shopstream.processors.orders.outcome import RecordOutcome
from shopstream.processors.orders.parking import DECISION_EVENTS, AnyEvent, order_id_of
from shopstream.processors.orders.record import OrderRecord
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
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


class OrdersProcessor(ProcessorBase):
    """The orders worker's processor on the runner: state = one `OrderRecord` per order id."""

    name = PROCESSOR
    inputs: tuple[str, ...] = tuple(INPUTS)

    def __init__(self, settings: Settings, topology: Topology | None = None) -> None:
        self.settings = settings
        self.topology = topology or load_topology_for(settings)
        # The store is partitioned like the `order` co-partition group of its inputs, its changelog the
        # one declared in the topology (checked here: a worker refuses to start on a mismatch).
        changelog = self.topology.table_changelog(PROCESSOR, TABLE, INPUTS)
        self.changelog = changelog.name
        self.partitions = changelog.partitions
        self.tick_interval_s = settings.orders_sweep_interval_s
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        self._mappings: dict[str, StatusMapping] = {}
        self.context = Context.from_files(self.mapping, settings.orders_policy or None,
                                          settings.returns_policy or None)
        self._outputs = {name: settings.topic(name) for name in OUTPUTS}
        # Per owned partition: keys of entries `canonical.waiting` holds for, so a sweep parses only those.
        self._waiting: dict[int, set[bytes]] = {}

    def mapping(self, source: str) -> StatusMapping:
        """The status mapping of a source system (data in topology/mappings/)."""
        if source not in self._mappings:
            self._mappings[source] = load_mapping(source, self.settings.mappings_dir or None)
        return self._mappings[source]

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Decode and apply to the order's entry: its outputs and new entry (raises: the runner classifies)."""
        name = record.label
        event = self.serde.decode(record.value)
        if not isinstance(event, INPUTS.get(name, ())):
            raise TypeError(f"{type(event).__name__} does not belong on {name}")
        order_event = cast(AnyEvent, event)
        key = order_id_of(order_event).encode()
        outcome = apply(state.get(key), order_event, self.context, datetime.now(UTC))
        if outcome.duplicate:
            RECORDS_IN.labels(PROCESSOR, name, "duplicate").inc()
        return self._effects(key, outcome, Effects())

    def _effects(self, key: bytes, outcome: RecordOutcome, effects: Effects) -> Effects:
        encode, topics = self.serde.encode, self._outputs
        effects.outputs.extend((out.topic, out.key.encode(), encode(topics[out.topic], out.record))
                               for out in outcome.outputs)
        if outcome.changed:
            effects.writes[key] = outcome.record
        return effects

    def tick(self, now: float, states: Mapping[int, Mapping[bytes, Any]]) -> Iterator[tuple[int, Effects]]:
        """The sweep: expire what waits too long on the owned partitions (see the module docstring)."""
        when = datetime.fromtimestamp(now, UTC)
        for partition, state in states.items():
            effects = Effects()
            for key in sorted(self._waiting.get(partition, ())):
                entry = state.get(key)
                if entry is None or not waiting(entry):
                    continue
                outcome = expire(entry, self.context, when)
                if outcome.changed or outcome.outputs:
                    log.info("orders sweep: order %s: %d record(s) to review", entry.order_id, len(outcome.outputs))
                self._effects(key, outcome, effects)
            if effects.outputs or effects.writes:
                yield partition, effects

    def restored(self, partition: int, state: Mapping[bytes, Any]) -> None:
        """The partition's entries came from the changelog: find the waiting ones once."""
        self._waiting[partition] = {key for key, entry in state.items() if waiting(entry)}

    def stored(self, partition: int, writes: Mapping[bytes, Any]) -> None:
        """Keep the partition's set of waiting keys current."""
        keys = self._waiting.setdefault(partition, set())
        for key, entry in writes.items():
            if entry is not None and waiting(entry):
                keys.add(key)
            else:
                keys.discard(key)

    def dropped(self, partition: int) -> None:
        """The partition went to another worker."""
        self._waiting.pop(partition, None)

    def encode_state(self, value: Any) -> bytes:
        """`OrderRecord.to_dict()` as JSON (the changelog format the Faust table wrote; orjson: UTF-8, not
        ASCII escapes, the same values for any JSON reader, at a fraction of `json`'s cost)."""
        return orjson.dumps(value.to_dict())

    def decode_state(self, data: bytes) -> OrderRecord:
        """A changelog value back into the `OrderRecord`."""
        return OrderRecord.from_dict(orjson.loads(data))


def run(settings: Settings, web_port: int | None = None) -> None:
    """Run the orders worker in the foreground until interrupted."""
    run_processor(settings, OrdersProcessor(settings), web_port=web_port)
