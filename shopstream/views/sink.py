"""The view sink (`shopstream worker views`): orders, ATP, history and the work queue -> Redis.

At least once. One consumer in group `views` subscribes to the three topics and feeds each record to
the *route* of its topic (`ViewRoute`: decode, build the view entry, write a batch, delete):
- `orders.state` -> `OrderRoute`: AvroSerde.decode to an OrderState model, the order document
  (`shopstream.views.orders`), `{prefix}order:{order_id}`;
- `inventory.atp` -> `AtpRoute`: AvroSerde.decode_datum to a plain dict (no pydantic model: a bulk ERP
  snapshot brings a million AtpLevel records and the model would cost more than everything else),
  the ATP document formatted straight from it (`shopstream.views.atp`), `{prefix}atp:{sku}`;
- `orders.status-changes` -> `HistoryRoute`: AvroSerde.decode to an OrderStatusChanged model, one
  history entry per change (`shopstream.views.history`) in the sorted set
  `{prefix}order-history:{order_id}`, ordered by order version;
- `review.queue` and `review.decisions` -> the work-queue view (`shopstream.views.work_queue_routes`,
  `shopstream.views.work_items`): one document per work item, its decision applied once;
- `alerts.anomalies` -> the alerts view (`shopstream.views.alerts`): one document per alert id.
The two state views write through the same version guard (`shopstream.views.guard`): equal and older
versions are ignored. The history adds an entry only when its (version, event id) is not stored yet.
So the sink is idempotent under redelivery and replay.

On the runner (`shopstream.runner`, a batched processor: `ViewsProcessor.handle_batch` gets each
poll whole, whatever topics its records come from, so a bulk snapshot costs one guarded Redis call
per 1,000 entries):

1. the runner polls a batch (up to `batch_size` records, default 1,000);
2. `handle_batch` decodes each value and builds its view entry; what cannot be handled comes back in
   `Effects.parked` and the runner parks it on its DLQ (the one DLQ path);
3. it writes each view's entries in one guarded script call per 1,000 entries (one round trip);
4. the runner commits the batch's offsets — only after every record of the batch was written to
   Redis or confirmed on the DLQ.

A crash anywhere before step 4 redelivers the batch; that is harmless because the Lua version
guard ignores equal and older versions (and parks are at-least-once: a replayed batch may park a
record twice). Redis is written through the sync client: the runner's loop is synchronous anyway.
Counters (`shopstream_records_in_total{processor="views",topic,outcome}`, `topic` the physical name)
are added per batch, once it is written.

Failure classes:
- **Permanent** (`SerdeError`: not framed, unknown schema id, undecodable body, a record of another
  type than the topic carries, a null value on `orders.status-changes`; a record whose entry cannot
  be built, e.g. an AtpLevel whose Kafka key is not its SKU or an OrderStatusChanged whose key is not
  its order id): the original bytes go to `<topic>.dlq` (`orders.state.dlq`, `inventory.atp.dlq`,
  `orders.status-changes.dlq`) with stage `deserialize` or `sink`, and the sink goes on.
- **Transient** (Redis connection/timeout/read-only/OOM errors, `RegistryUnavailable`): the runner
  re-runs the whole (idempotent) batch in place with exponential backoff and full jitter
  (`shopstream.processing`: the one policy and classification), each retry counted in
  `shopstream_retries_total{processor="views",operation="redis"|"registry"}`. The budget
  (`SINK_RETRY`: attempts and time, well under librdkafka's `max.poll.interval.ms`) spent, the runner
  *rewinds*: it seeks every partition of the batch back to the batch's first offset, commits nothing,
  and polls again — so it never commits past an unwritten record, keeps its group membership, and
  resumes by itself once Redis is back. A DLQ write that keeps failing halts the process (exit 75).
- A tombstone (null value) on a compacted topic deletes the entity's view document (after the
  batch's earlier writes of that topic, so the order of the log holds). Routes that take no
  tombstones (`tombstones = False`: the audit trail, which a null value must never erase) treat a
  null value as an undecodable record.
- Anything else is a bug: the exception ends the worker without committing the batch.

Throughput (`shopstream bench views-sink`, 100k AtpLevel records already on the embedded broker, real
Redis, this 2-core machine): see the README's performance section.

`run_sink` serves the runner's admin port (`/metrics`, `/readyz`, `/healthz`) on `metrics_port`
(default `SHOPSTREAM_WORKER_PORT`, 0 = off) and stops at the next batch boundary when `stop` is set
(or on SIGTERM/SIGINT when it runs in the main thread without a `stop` event).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from shopstream.config import ConfigError, Settings
from shopstream.metrics import RECORDS_IN
from shopstream.processing import RetryPolicy
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.schemas.models import AtpLevel, OrderState, OrderStatusChanged
from shopstream.serde import AvroSerde, SerdeError, make_registry_client
from shopstream.topology import names
from shopstream.views.alerts import AlertsRoute, AlertStore
from shopstream.views.atp import AtpView
from shopstream.views.guard import Entry
from shopstream.views.history import HistoryEntry, HistoryView
from shopstream.views.orders import OrderView, order_document
from shopstream.views.products import QualityRoute
from shopstream.views.work_items import WorkItemStore
from shopstream.views.work_queue_routes import DecisionsRoute, ReviewQueueRoute

PROCESSOR = "views"
GROUP_ID = "views"
ORDERS_TOPIC = names.ORDERS_STATE
ATP_TOPIC = names.INVENTORY_ATP
CHANGES_TOPIC = names.ORDERS_STATUS_CHANGES
SOURCE_TOPICS = (ORDERS_TOPIC, ATP_TOPIC, CHANGES_TOPIC, names.REVIEW_QUEUE, names.REVIEW_DECISIONS,
                 names.ALERTS_ANOMALIES, names.CATALOG_QUALITY)
SOURCE_TOPIC = ORDERS_TOPIC  # the order view's topic, under the name callers of the one-view sink used

__all__ = ["ATP_TOPIC", "CHANGES_TOPIC", "GROUP_ID", "ORDERS_TOPIC", "PROCESSOR", "SOURCE_TOPIC", "RetryPolicy",
           "ViewsProcessor", "run_sink"]

log = logging.getLogger("shopstream.views.sink")
M = TypeVar("M", bound=BaseModel)


class UnexpectedRecord(SerdeError):
    """A well-formed record of another type than its topic carries (e.g. not an OrderState on orders.state)."""


def decode_as(serde: AvroSerde, value: bytes | None, model: type[M]) -> M:
    """The record of framed Avro bytes, which must be a `model` (UnexpectedRecord otherwise)."""
    record = serde.decode(value)
    if not isinstance(record, model):
        raise UnexpectedRecord(f"{type(record).__name__} is not an {model.__name__}")
    return record


class ViewRoute(Protocol):
    """What the sink does with the records of one source topic, for the one view that topic feeds.

    `decode` raises SerdeError for bytes that are not this topic's record (parked, stage
    `deserialize`) and a transient error when the registry is away (retried); `entry` raises
    ValueError/TypeError/KeyError/AttributeError for a record that cannot be stored (parked, stage
    `sink`); `put_many` writes a batch idempotently and returns one "written" flag per entry;
    `delete` handles a tombstone (the record key as text) when `tombstones` is true — otherwise a null
    value goes to `decode` like any other value (and is parked as not Avro)."""

    topic: str  # the physical topic name (with SHOPSTREAM_TOPIC_PREFIX)
    tombstones: bool  # a null value deletes the entity's view entry (compacted topics)

    def decode(self, value: bytes | None) -> Any: ...

    def entry(self, decoded: Any, key: bytes | None) -> Any: ...

    def put_many(self, entries: list[Any]) -> list[bool]: ...

    def delete(self, key: str) -> bool: ...

    def close(self) -> None: ...


class OrderRoute:
    """`orders.state` -> the order view: OrderState models, one document per order."""

    tombstones = True

    def __init__(self, topic: str, serde: AvroSerde, view: OrderView) -> None:
        self.topic = topic
        self.serde = serde
        self.view = view

    def decode(self, value: bytes | None) -> OrderState:
        return decode_as(self.serde, value, OrderState)

    def entry(self, decoded: OrderState, key: bytes | None) -> dict[str, Any]:
        return order_document(decoded)

    def put_many(self, entries: list[dict[str, Any]]) -> list[bool]:
        return self.view.put_many(entries)

    def delete(self, key: str) -> bool:
        return self.view.delete(key)

    def close(self) -> None:
        self.view.close()


class AtpRoute:
    """`inventory.atp` -> the ATP view: AtpLevel records decoded to plain dicts (the bulk hot path)."""

    tombstones = True

    def __init__(self, topic: str, serde: AvroSerde, view: AtpView) -> None:
        self.topic = topic
        self.serde = serde
        self.view = view

    def decode(self, value: bytes | None) -> dict[str, Any]:
        return self.serde.decode_datum(value, AtpLevel.AVRO_NAME)

    def entry(self, decoded: dict[str, Any], key: bytes | None) -> Entry:
        return self.view.entry(decoded, key)

    def put_many(self, entries: list[Entry]) -> list[bool]:
        return self.view.put_many(entries)

    def delete(self, key: str) -> bool:
        return self.view.delete(key)

    def close(self) -> None:
        self.view.close()


class HistoryRoute:
    """`orders.status-changes` -> the history view: OrderStatusChanged models, one entry per change.

    Not compacted and an audit trail: a null value is parked, never taken as "erase this order"."""

    tombstones = False

    def __init__(self, topic: str, serde: AvroSerde, view: HistoryView) -> None:
        self.topic = topic
        self.serde = serde
        self.view = view

    def decode(self, value: bytes | None) -> OrderStatusChanged:
        return decode_as(self.serde, value, OrderStatusChanged)

    def entry(self, decoded: OrderStatusChanged, key: bytes | None) -> HistoryEntry:
        return self.view.entry(decoded, key)

    def put_many(self, entries: list[HistoryEntry]) -> list[bool]:
        return self.view.put_many(entries)

    def delete(self, key: str) -> bool:  # never called: tombstones is False
        raise TypeError(f"{self.topic} takes no tombstones")

    def close(self) -> None:
        self.view.close()


#: Per batch: the budget must stay well below max.poll.interval.ms (300 s by default).
SINK_RETRY = RetryPolicy(initial_s=0.4, max_backoff_s=10.0, max_elapsed_s=60.0, max_attempts=8)

#: Records per batch: big enough that a bulk snapshot costs one Redis round trip per 1,000 SKUs, small
#: enough that a batch is a few tens of milliseconds of work.
BATCH_SIZE = 1000


class ViewsProcessor(ProcessorBase):
    """The view sink on the runner: each poll's records through the routes of their topics, one batch write per view.

    Build it with `ViewsProcessor.create` or inject the routes (tests)."""

    name = PROCESSOR
    inputs: tuple[str, ...] = SOURCE_TOPICS
    batched = True
    batch_size = BATCH_SIZE

    def __init__(self, routes: Sequence[ViewRoute], *, retry: RetryPolicy | None = None,
                 dlq_name: str = PROCESSOR) -> None:
        self.routes: dict[str, ViewRoute] = {route.topic: route for route in routes}
        self.retry = retry or SINK_RETRY
        self.dlq_name = dlq_name  # the physical group id, as the sink's dead letters always named it

    @property
    def view(self) -> OrderView:
        """The order view (settable: tests swap in a faulty one)."""
        return self._order_route().view

    @view.setter
    def view(self, view: OrderView) -> None:
        self._order_route().view = view

    def _order_route(self) -> OrderRoute:
        for route in self.routes.values():
            if isinstance(route, OrderRoute):
                return route
        raise LookupError("this sink has no order view")

    def handle_batch(self, records: list[Record]) -> Effects:
        """Build every entry, write each view's in one go; a transient fault is raised as is (the runner retries)."""
        effects = Effects()
        counts: Counter[tuple[str, str]] = Counter()  # (topic, outcome), published once the batch is written
        pending: dict[str, list[Any]] = {}  # topic -> entries to write, in log order
        for record in records:
            topic = record.topic
            route = self.routes[topic]  # KeyError: a topic we did not subscribe to, i.e. a bug
            if record.value is None and route.tombstones:
                # Keep order: earlier versions in this batch land before the tombstone removes them.
                self._flush(route, pending.pop(topic, []), counts)
                self._tombstone(route, record, counts)
                continue
            try:
                decoded = route.decode(record.value)
            except SerdeError as exc:
                effects.parked.append((replace(record, label=topic), exc, "deserialize"))
                continue
            try:
                entry = route.entry(decoded, record.key)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                effects.parked.append((replace(record, label=topic), exc, "sink"))
                continue
            pending.setdefault(topic, []).append(entry)
        for topic, entries in pending.items():
            self._flush(self.routes[topic], entries, counts)
        for (topic, outcome), count in counts.items():
            RECORDS_IN.labels(PROCESSOR, topic, outcome).inc(count)
        return effects

    @staticmethod
    def _flush(route: ViewRoute, entries: list[Any], counts: Counter[tuple[str, str]]) -> None:
        if not entries:
            return
        flags = route.put_many(entries)
        written = sum(flags)
        counts[(route.topic, "ok")] += written
        counts[(route.topic, "duplicate")] += len(flags) - written

    @staticmethod
    def _tombstone(route: ViewRoute, record: Record, counts: Counter[tuple[str, str]]) -> None:
        try:
            entity = record.key.decode("utf-8") if record.key else ""
        except UnicodeDecodeError:
            entity = ""
        if not entity:
            log.warning("tombstone without a usable key ignored", extra={
                "topic": record.topic, "partition": record.partition, "offset": record.offset})
            counts[(route.topic, "rejected")] += 1
            return
        route.delete(entity)
        counts[(route.topic, "ok")] += 1

    @classmethod
    def create(cls, settings: Settings, *, retry: RetryPolicy | None = None) -> ViewsProcessor:
        """Build the serde and the Redis views of `orders.state`, `inventory.atp`, `orders.status-changes`,
        `review.queue`, `review.decisions`,
        `alerts.anomalies` and `catalog.quality` from settings."""
        if not settings.schema_registry_url:
            raise ConfigError("SCHEMA_REGISTRY_URL: required by the view sink")
        if not settings.kafka_bootstrap_servers:
            raise ConfigError("KAFKA_BOOTSTRAP_SERVERS: required by the view sink")
        serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        work_items = WorkItemStore.from_url(settings.redis_url, settings.redis_key_prefix)
        routes: list[ViewRoute] = [
            OrderRoute(settings.topic(ORDERS_TOPIC), serde,
                       OrderView.from_url(settings.redis_url, settings.redis_key_prefix)),
            AtpRoute(settings.topic(ATP_TOPIC), serde, AtpView.from_url(settings.redis_url, settings.redis_key_prefix)),
            HistoryRoute(settings.topic(CHANGES_TOPIC), serde,
                         HistoryView.from_url(settings.redis_url, settings.redis_key_prefix)),
            ReviewQueueRoute(settings.topic(names.REVIEW_QUEUE), serde, work_items),
            DecisionsRoute(settings.topic(names.REVIEW_DECISIONS), serde, work_items),
            AlertsRoute(settings.topic(names.ALERTS_ANOMALIES), serde,
                        AlertStore.from_url(settings.redis_url, settings.redis_key_prefix)),
            QualityRoute.from_url(settings.topic(names.CATALOG_QUALITY), serde, settings.redis_url,
                                  settings.redis_key_prefix),  # product quality (shopstream.views.products)
        ]
        return cls(routes, retry=retry, dlq_name=settings.topic(GROUP_ID))

    def close(self) -> None:
        """Free the Redis clients."""
        for route in self.routes.values():
            route.close()


def run_sink(settings: Settings, stop: threading.Event | None = None, *,
             metrics_port: int | None = None, batch_size: int = BATCH_SIZE,
             retry: RetryPolicy | None = None) -> None:
    """Run the view sink on the runner until `stop` is set (or SIGTERM/SIGINT in the main thread).

    `metrics_port`: where the admin port (`/metrics`, `/readyz`, `/healthz`) is served on
    `settings.http_host`; None means `settings.worker_web_port`, 0 means none (e.g. tests sharing a process).
    """
    processor = ViewsProcessor.create(settings, retry=retry)
    try:
        run_processor(settings, processor, web_port=metrics_port, batch_size=batch_size, stop=stop)
    finally:
        processor.close()
