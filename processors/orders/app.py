"""Orders processor (`shopstream worker orders`): the Faust adapter around the pure lifecycle.

Consumes `shop.orders` (OrderPlaced / OrderUpdated / OrderCancelled), keeps the canonical order in
the Faust table `orders` (keyed by order id, changelog-backed) and emits, per applied change:
- `orders.state` (compacted): the whole OrderState, with a version that grows by one per change;
- `orders.status-changes`: OrderStatusChanged, the audit trail (who, what, why);
- `review.queue`: a ReviewItem for a transition the lifecycle forbids (state left untouched);
- `inventory.reservations` (keyed by SKU, co-partitioned with `inventory.stock`): the order's
  per-SKU ReservationChanged records (reserve / adjust / release) from the state before and after,
  computed by the pure `reservations.reservation_changes` (rules and ordering times there).
Duplicates and stale updates change nothing and emit nothing. Undecodable records and handler bugs
go to `shop.orders.dlq`; transient faults are retried in place (shopstream.processing).

Outputs go through Faust's producer, which Faust flushes before committing input offsets; it places
keys with murmur2 like every shopstream producer, so a reservation lands on its SKU's partition of
`inventory.stock` (tests/integration/test_partitioner.py). The table is written only after the broker
confirmed every output, reservations included, so the changelog never claims an event whose outputs
were lost; a failed send is retried against the unchanged state and re-emits the same records (same
event ids, same source times, which the ATP core treats as duplicates).
After a crash the uncommitted tail is read again; the lifecycle treats it as duplicates, so state
ends exactly as an oracle computes it (tests/integration/test_orders_crash.py).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import faust

from shopstream.config import Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord
from shopstream.faust_app import FaustPublisher, make_faust_app
from shopstream.metrics import RECORDS_IN, RECORDS_OUT
from shopstream.processing import process_record
from shopstream.processors.orders.lifecycle import apply
from shopstream.processors.orders.mapping import StatusMapping, load_mapping
from shopstream.processors.orders.reservations import reservation_changes
from shopstream.schemas.models import (
    EventMeta,
    OrderCancelled,
    OrderPlaced,
    OrderState,
    OrderUpdated,
    ReviewItem,
)
from shopstream.serde import AvroSerde, make_registry_client

PROCESSOR = "orders"
INPUT = "shop.orders"
REVIEW_NS = uuid.UUID("0b7e7f0c-3f55-4d43-9a2e-6c2f1d7c9e11")


def _review_item(event: OrderPlaced | OrderUpdated | OrderCancelled, reason: str) -> ReviewItem:
    return ReviewItem(
        meta=EventMeta(event_id=str(uuid.uuid5(REVIEW_NS, event.meta.event_id)), event_type="ReviewItem",
                       occurred_at=event.meta.occurred_at, recorded_at=event.meta.recorded_at,
                       source="shopstream.orders", source_event_id=None,
                       correlation_id=event.meta.correlation_id, causation_id=event.meta.event_id),
        order_id=event.order_id, kind="rejected_transition", reason=reason,
        details={"event_type": event.meta.event_type, "source": event.meta.source},
        event_id=event.meta.event_id, event_type=event.meta.event_type, rule=None,
    )


class OrdersProcessor:
    """Holds the Faust app, topics and table of the orders worker."""

    def __init__(self, settings: Settings, web_port: int | None = None) -> None:
        self.settings = settings
        self.app = make_faust_app(settings, PROCESSOR, web_port=web_port)
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        self._mappings: dict[str, StatusMapping] = {}
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        self.input_topic = self.app.topic(settings.topic(INPUT), **raw)  # type: ignore[arg-type]
        self.out_topics = {name: self.app.topic(settings.topic(name), **raw)  # type: ignore[arg-type]
                           for name in ("orders.state", "orders.status-changes", "review.queue",
                                        "inventory.reservations")}
        # Keys raw bytes (the order id), values the OrderState as JSON (Faust's default value codec).
        self.table = self.app.Table("orders", default=None, partitions=4, key_type=bytes)
        self.dlq = DeadLetterWriter(FaustPublisher(self.app), PROCESSOR)
        self.app.agent(self.input_topic, name="orders.lifecycle")(self._agent)

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
            await process_record(record, lambda r=record: self.handle(r), self.dlq, topic_label=INPUT)  # type: ignore[misc]

    async def handle(self, record: FailedRecord) -> None:
        """Decode, apply to the table state, emit outputs; raises on failure (the caller classifies)."""
        event = self.serde.decode(record.value)
        if not isinstance(event, OrderPlaced | OrderUpdated | OrderCancelled):
            raise TypeError(f"{type(event).__name__} does not belong on {INPUT}")
        key = event.order_id.encode()
        stored = self.table.get(key)
        state = OrderState.model_validate(json.loads(stored) if isinstance(stored, str | bytes) else stored) \
            if stored else None
        outcome = apply(state, event, self.mapping(event.meta.source))
        if outcome.duplicate:
            RECORDS_IN.labels(PROCESSOR, INPUT, "duplicate").inc()
            return
        if outcome.rejected:
            await self._send("review.queue", key, _review_item(event, outcome.rejected))
            return
        if outcome.state is None:
            return
        # Computed before anything is sent: a refusal (ValueError) parks the event with no output out.
        reservations = reservation_changes(state, outcome.state, event.meta)
        pending = []
        if outcome.change is not None:
            pending.append(await self._send("orders.status-changes", key, outcome.change))
        pending.append(await self._send("orders.state", key, outcome.state))
        for reservation in reservations:
            pending.append(await self._send("inventory.reservations", reservation.sku.encode(), reservation))
        # Wait for the broker before the table (and so its changelog) moves on: if we crash in between,
        # the event is read again and re-emits; the other order could leave a changelog that says
        # "applied" for outputs that never landed.
        for delivery in pending:
            await delivery
        self.table[key] = outcome.state.model_dump(mode="json")

    async def _send(self, name: str, key: bytes, record: Any) -> Any:
        topic = self.out_topics[name]
        delivery = await topic.send(key=key, value=self.serde.encode(topic.get_topic_name(), record))
        RECORDS_OUT.labels(PROCESSOR, name).inc()
        return delivery


def run(settings: Settings, web_port: int | None = None) -> None:
    """Run the orders worker in the foreground until interrupted."""
    from shopstream.faust_app import run_worker

    run_worker(OrdersProcessor(settings, web_port=web_port).app, settings)
