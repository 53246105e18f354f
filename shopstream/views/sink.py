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
  `shopstream.views.work_items`): one document per work item, its decision applied once.
The two state views write through the same version guard (`shopstream.views.guard`): equal and older
versions are ignored. The history adds an entry only when its (version, event id) is not stored yet.
So the sink is idempotent under redelivery and replay.

Loop (one thread, plain confluent-kafka consumer, no Faust: the per-message cost of Faust is not
needed for a sink that writes in batches):

1. poll a batch (up to `batch_size` records, default 1,000, whatever topics they come from);
2. decode each value and build its view entry; park what cannot be handled on the DLQ;
3. write each view's entries in one guarded script call per 1,000 entries (one round trip);
4. commit the batch's offsets synchronously — only after every record of the batch was written
   to Redis or confirmed on the DLQ.

A crash anywhere before step 4 redelivers the batch; that is harmless because the Lua version
guard ignores equal and older versions (and parks are at-least-once: a replayed batch may park a
record twice). Redis is written through the sync client: the loop is synchronous anyway. Counters
(`shopstream_records_in_total{processor="views",topic,outcome}`) are added per batch, not per record.

Failure classes:
- **Permanent** (`SerdeError`: not framed, unknown schema id, undecodable body, a record of another
  type than the topic carries, a null value on `orders.status-changes`; a record whose entry cannot
  be built, e.g. an AtpLevel whose Kafka key is not its SKU or an OrderStatusChanged whose key is not
  its order id): the original bytes go to `<topic>.dlq` (`orders.state.dlq`, `inventory.atp.dlq`,
  `orders.status-changes.dlq`) via `DeadLetterWriter` (stage `deserialize` or `sink`), and the sink
  goes on.
- **Transient** (Redis connection/timeout/read-only/OOM errors, `RegistryUnavailable`, a DLQ
  write the broker did not confirm): retried in place with exponential backoff and full jitter
  (`shopstream.processing`: the same policy and classification as every consumer),
  each retry counted in `shopstream_retries_total{processor="views"}`.
  Retries are bounded per batch (attempts and a time budget kept well under librdkafka's
  `max.poll.interval.ms`, so the consumer is never expelled from its group while it waits).
  When the budget is spent the sink *rewinds*: it seeks every partition of the batch back to
  the batch's first offset, commits nothing, and polls again — so it never commits past an
  unwritten record, keeps its group membership, and resumes by itself once Redis is back.
- A tombstone (null value) on a compacted topic deletes the entity's view document (after the
  batch's earlier writes of that topic, so the order of the log holds). Routes that take no
  tombstones (`tombstones = False`: the audit trail, which a null value must never erase) treat a
  null value as an undecodable record.
- Anything else is a bug: the exception ends `run_sink` without committing the batch.

Throughput (`shopstream bench views-sink`, 100k AtpLevel records already on the embedded broker, real
Redis, this 2-core machine): see the README's performance section.

`run_sink` serves Prometheus `/metrics` on `metrics_port` (default `SHOPSTREAM_WORKER_PORT`,
0 = off) and stops at the next batch boundary when `stop` is set (or on SIGTERM/SIGINT when it
runs in the main thread without a `stop` event).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any, Protocol, TypeVar

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import start_http_server
from pydantic import BaseModel

from shopstream.config import ConfigError, Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.kafka import DeliveryError, make_consumer, poll_batch
from shopstream.metrics import RECORDS_IN, RETRIES
from shopstream.processing import RetryPolicy
from shopstream.processing import is_transient as shared_is_transient
from shopstream.runner.producer import ConfirmingProducer
from shopstream.schemas.models import AtpLevel, OrderState, OrderStatusChanged
from shopstream.serde import AvroSerde, SerdeError, make_registry_client
from shopstream.topology import load_topology_for, names
from shopstream.views.atp import AtpView
from shopstream.views.guard import Entry
from shopstream.views.history import HistoryEntry, HistoryView
from shopstream.views.orders import OrderView, order_document
from shopstream.views.work_items import WorkItemStore
from shopstream.views.work_queue_routes import DecisionsRoute, ReviewQueueRoute

PROCESSOR = "views"
GROUP_ID = "views"
ORDERS_TOPIC = names.ORDERS_STATE
ATP_TOPIC = names.INVENTORY_ATP
CHANGES_TOPIC = names.ORDERS_STATUS_CHANGES
SOURCE_TOPICS = (ORDERS_TOPIC, ATP_TOPIC, CHANGES_TOPIC, names.REVIEW_QUEUE, names.REVIEW_DECISIONS)
SOURCE_TOPIC = ORDERS_TOPIC  # the order view's topic, under the name callers of the one-view sink used

log = logging.getLogger("shopstream.views.sink")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def is_transient(exc: BaseException) -> bool:
    """The shared classification, plus any failed DLQ write: the sink cannot park, so it must wait."""
    return shared_is_transient(exc) or isinstance(exc, DeliveryError)


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


class RetriesExhausted(Exception):
    """The batch's retry budget is spent (or the sink is stopping); the batch must be rewound."""


#: Per batch: the budget must stay well below max.poll.interval.ms (300 s by default).
SINK_RETRY = RetryPolicy(initial_s=0.4, max_backoff_s=10.0, max_elapsed_s=60.0, max_attempts=8)


@dataclass
class BatchResult:
    """What one batch did (for tests and logs)."""

    written: int = 0
    duplicates: int = 0
    deleted: int = 0
    parked: int = 0
    committed: bool = False
    rewound: bool = False


def _header_list(msg: Message) -> list[tuple[str, bytes]]:
    """Consumed headers as (name, bytes) pairs, the shape the DLQ writer keeps."""
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in pairs]


#: Records per batch: big enough that a bulk snapshot costs one Redis round trip per 1,000 SKUs, small
#: enough that a batch is a few tens of milliseconds of work.
BATCH_SIZE = 1000


class ViewSink:
    """One consumer's loop over the routes of its topics; build it with `ViewSink.create` or inject
    the parts (tests)."""

    def __init__(self, consumer: Consumer, routes: Sequence[ViewRoute], dlq: DeadLetterWriter,
                 loop: asyncio.AbstractEventLoop, *, batch_size: int = BATCH_SIZE, poll_timeout_s: float = 0.5,
                 retry: RetryPolicy | None = None, stop: threading.Event | None = None,
                 producer: ConfirmingProducer | None = None) -> None:
        self.consumer = consumer
        self.routes: dict[str, ViewRoute] = {route.topic: route for route in routes}
        self.dlq = dlq
        self._loop = loop  # private loop on which the async DLQ writer runs, from this thread only
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.retry = retry or SINK_RETRY
        self.stop = stop or threading.Event()
        self._deadline = 0.0
        self._last_consume_error: str | None = None
        self._producer = producer  # the DLQ writer's producer, closed with the sink

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

    # -- retries -----------------------------------------------------------------------------

    def _with_retry(self, operation: str, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                if (attempt >= (self.retry.max_attempts or attempt + 1) or self.stop.is_set()
                        or time.monotonic() >= self._deadline):
                    raise RetriesExhausted(f"{operation}: {type(exc).__name__}: {exc}") from exc
                RETRIES.labels(PROCESSOR, operation).inc()
                delay = min(self.retry.backoff(attempt), max(0.0, self._deadline - time.monotonic()))
                log.warning("transient fault, retrying", extra={
                    "processor": PROCESSOR, "operation": operation, "attempt": attempt,
                    "error_class": type(exc).__name__, "delay_s": round(delay, 3)})
                self.stop.wait(delay)

    # -- one batch ---------------------------------------------------------------------------

    def poll_batch(self) -> list[Message]:
        """Records of the next batch (consumer errors are logged and dropped; fatal ones raise)."""
        records, self._last_consume_error = poll_batch(self.consumer, self.batch_size, self.poll_timeout_s,
                                                       self._last_consume_error)
        return records

    def process(self, records: list[Message]) -> BatchResult:
        """Write, park, then commit one batch; rewinds it instead when transient faults persist."""
        result = BatchResult()
        if not records:
            return result
        self._deadline = time.monotonic() + self.retry.max_elapsed_s
        try:
            self._handle(records, result)
        except RetriesExhausted as exc:
            log.error("giving up on batch for now, rewinding: %s", exc)
            self._rewind(records)
            result.rewound = True
            # Breathe before the redelivered batch so a long outage is not a busy loop.
            self.stop.wait(self.retry.backoff(self.retry.max_attempts or 8))
            return result
        self._commit(records)
        result.committed = True
        return result

    def _handle(self, records: list[Message], result: BatchResult) -> None:
        pending: dict[str, list[Any]] = {}  # topic -> entries to write, in log order
        for msg in records:
            topic = msg.topic() or ""
            route = self.routes[topic]  # KeyError: a topic we did not subscribe to, i.e. a bug
            value = msg.value()
            if value is None and route.tombstones:
                # Keep order: earlier versions in this batch land before the tombstone removes them.
                self._flush(route, pending.pop(topic, []), result)
                self._tombstone(route, msg, result)
                continue
            try:
                decoded = self._with_retry("registry", partial(route.decode, value))
            except SerdeError as exc:
                self._park(msg, exc, "deserialize", result)
                continue
            try:
                entry = route.entry(decoded, msg.key())
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                self._park(msg, exc, "sink", result)
                continue
            pending.setdefault(topic, []).append(entry)
        for topic, entries in pending.items():
            self._flush(self.routes[topic], entries, result)

    def _flush(self, route: ViewRoute, entries: list[Any], result: BatchResult) -> None:
        if not entries:
            return
        flags = self._with_retry("redis", lambda: route.put_many(entries))
        written = sum(flags)
        if written:
            RECORDS_IN.labels(PROCESSOR, route.topic, "ok").inc(written)
        if written < len(flags):
            RECORDS_IN.labels(PROCESSOR, route.topic, "duplicate").inc(len(flags) - written)
        result.written += written
        result.duplicates += len(flags) - written

    def _tombstone(self, route: ViewRoute, msg: Message, result: BatchResult) -> None:
        key = msg.key()
        try:
            entity = key.decode("utf-8") if key else ""
        except UnicodeDecodeError:
            entity = ""
        if not entity:
            log.warning("tombstone without a usable key ignored", extra={
                "topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()})
            RECORDS_IN.labels(PROCESSOR, route.topic, "rejected").inc()
            return
        self._with_retry("redis", lambda: route.delete(entity))
        RECORDS_IN.labels(PROCESSOR, route.topic, "ok").inc()
        result.deleted += 1

    def _park(self, msg: Message, exc: Exception, stage: str, result: BatchResult) -> None:
        ts_type, ts = msg.timestamp()
        record = FailedRecord(
            topic=msg.topic() or "", key=msg.key(), value=msg.value(),
            headers=_header_list(msg),
            partition=msg.partition() or 0, offset=msg.offset() or 0,
            timestamp_ms=ts if ts_type else None,
        )
        failure = Failure(error=exc, stage=stage)
        self._with_retry("dlq", lambda: self._loop.run_until_complete(self.dlq.park(record, failure)))
        RECORDS_IN.labels(PROCESSOR, record.topic, "dlq").inc()
        result.parked += 1

    def _positions(self, records: list[Message], *, first: bool) -> list[TopicPartition]:
        pos: dict[tuple[str, int], int] = {}
        for msg in records:
            tp = (msg.topic() or "", msg.partition() or 0)
            off = msg.offset() or 0
            if tp not in pos or (off < pos[tp] if first else off > pos[tp]):
                pos[tp] = off
        return [TopicPartition(t, p, off if first else off + 1) for (t, p), off in pos.items()]

    def _commit(self, records: list[Message]) -> None:
        try:
            self.consumer.commit(offsets=self._positions(records, first=False), asynchronous=False)
        except KafkaException as exc:
            # Typically a rebalance took the partitions; their new owner re-reads from the last
            # commit and the version guard absorbs the repeat.
            log.warning("offset commit failed (batch will be redelivered): %s", exc)

    def _rewind(self, records: list[Message]) -> None:
        for tp in self._positions(records, first=True):
            try:
                self.consumer.seek(tp)
            except KafkaException as exc:
                # Not ours any more after a rebalance: the new owner starts at the last commit.
                log.info("seek %s[%d] skipped: %s", tp.topic, tp.partition, exc)

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        """Poll and process until `stop` is set (checked between batches)."""
        while not self.stop.is_set():
            records = self.poll_batch()
            if records:
                self._last_consume_error = None
            self.process(records)

    @classmethod
    def create(cls, settings: Settings, *, stop: threading.Event | None = None,
               batch_size: int = BATCH_SIZE, retry: RetryPolicy | None = None) -> ViewSink:
        """Build the consumer, serde, the Redis views and the DLQ writer from settings (and subscribe
        to `orders.state`, `inventory.atp`, `orders.status-changes`, `review.queue`, `review.decisions`)."""
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
        ]
        consumer = make_consumer(settings, GROUP_ID)
        consumer.subscribe([route.topic for route in routes])
        producer = ConfirmingProducer(settings, **{"client.id": f"shopstream-{GROUP_ID}"})  # the DLQ writer's
        dlq = DeadLetterWriter(producer, processor=settings.topic(GROUP_ID),
                               routes=load_topology_for(settings).dlq_routes(settings.topic_prefix))
        return cls(consumer, routes, dlq, asyncio.new_event_loop(), batch_size=batch_size,
                   retry=retry, stop=stop, producer=producer)

    def close(self) -> None:
        """Leave the group (no commit: only processed batches were committed) and free clients."""
        try:
            self.consumer.close()
        finally:
            if self._producer is not None:
                self._producer.close()
            for route in self.routes.values():
                route.close()
            self._loop.close()


def run_sink(settings: Settings, stop: threading.Event | None = None, *,
             metrics_port: int | None = None, batch_size: int = BATCH_SIZE,
             retry: RetryPolicy | None = None) -> None:
    """Run the view sink (order, ATP and history views) until `stop` is set (or SIGTERM/SIGINT in the main thread).

    `metrics_port`: where `/metrics` is served on `settings.http_host`; None means
    `settings.worker_web_port`, 0 means no metrics server (e.g. tests sharing a process).
    """
    own_signals: dict[int, Any] = {}
    if stop is None:
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            def _on_signal(signum: int, _frame: FrameType | None) -> None:
                log.info("signal %d: stopping after the current batch", signum)
                stop.set()
            for sig in (signal.SIGTERM, signal.SIGINT):
                own_signals[sig] = signal.signal(sig, _on_signal)

    port = settings.worker_web_port if metrics_port is None else metrics_port
    server = None
    sink: ViewSink | None = None
    try:
        sink = ViewSink.create(settings, stop=stop, batch_size=batch_size, retry=retry)
        server = start_http_server(port, addr=settings.http_host)[0] if port else None
        log.info("view sink started", extra={"topics": list(sink.routes), "metrics_port": port})
        sink.run()
    finally:
        if sink is not None:
            sink.close()
        if server is not None:
            server.shutdown()
            server.server_close()
        for signum, previous in own_signals.items():
            signal.signal(signum, previous)
        log.info("view sink stopped")
