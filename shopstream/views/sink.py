"""The order view sink (`shopstream worker views`): `orders.state` -> Redis, at least once, idempotent.

Loop (one thread, plain confluent-kafka consumer in group `views.orders`, no Faust: the per-message
cost of Faust is not needed for a sink that writes in batches):

1. `consume(batch_size, poll_timeout)` a batch;
2. decode each value with AvroSerde and turn each OrderState into its view document;
3. write the documents in one Redis pipeline of guarded EVALSHA calls (`views.orders`), and
   park what cannot be handled on the DLQ;
4. commit the batch's offsets synchronously — only after every record of the batch was written
   to Redis or confirmed on the DLQ.

A crash anywhere before step 4 redelivers the batch; that is harmless because the Lua version
guard ignores equal and older versions (and parks are at-least-once: a replayed batch may park a
record twice). Redis is written through the sync client: the loop is synchronous anyway and a
pipeline per batch keeps the round trips at one per batch.

Failure classes:
- **Permanent** (`SerdeError`: not framed, unknown schema id, undecodable body; a record that is
  not an OrderState; a document that cannot be built): the original bytes go to
  `<topic>.dlq` via `DeadLetterWriter` (stage `deserialize` or `sink`), and the sink goes on.
- **Transient** (Redis connection/timeout/read-only/OOM errors, `RegistryUnavailable`, a DLQ
  write the broker did not confirm): retried in place with exponential backoff and full jitter
  (`shopstream.processing`: the same policy and classification as every consumer),
  each retry counted in `shopstream_retries_total{processor="views.orders"}`.
  Retries are bounded per batch (attempts and a time budget kept well under librdkafka's
  `max.poll.interval.ms`, so the consumer is never expelled from its group while it waits).
  When the budget is spent the sink *rewinds*: it seeks every partition of the batch back to
  the batch's first offset, commits nothing, and polls again — so it never commits past an
  unwritten record, keeps its group membership, and resumes by itself once Redis is back.
- A tombstone (null value) on the compacted topic deletes the order's view document.
- Anything else is a bug: the exception ends `run_sink` without committing the batch.

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
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import start_http_server

from shopstream.config import ConfigError, Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.kafka import AsyncProducer, DeliveryError, make_consumer
from shopstream.metrics import RECORDS_IN, RETRIES
from shopstream.processing import RetryPolicy
from shopstream.processing import is_transient as shared_is_transient
from shopstream.schemas.models import OrderState
from shopstream.serde import AvroSerde, SerdeError, make_registry_client
from shopstream.views.orders import OrderView, order_document

PROCESSOR = "views.orders"
GROUP_ID = "views.orders"
SOURCE_TOPIC = "orders.state"

log = logging.getLogger("shopstream.views.sink")
T = TypeVar("T")

def is_transient(exc: BaseException) -> bool:
    """The shared classification, plus any failed DLQ write: the sink cannot park, so it must wait."""
    return shared_is_transient(exc) or isinstance(exc, DeliveryError)


class UnexpectedRecord(SerdeError):
    """A well-formed record of another type landed on orders.state."""


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


class ViewSink:
    """One consumer's loop; build it with `ViewSink.create` or inject the parts (tests)."""

    def __init__(self, consumer: Consumer, serde: AvroSerde, view: OrderView, dlq: DeadLetterWriter,
                 loop: asyncio.AbstractEventLoop, *, batch_size: int = 500, poll_timeout_s: float = 0.5,
                 retry: RetryPolicy | None = None, stop: threading.Event | None = None,
                 producer: AsyncProducer | None = None) -> None:
        self.consumer = consumer
        self.serde = serde
        self.view = view
        self.dlq = dlq
        self._loop = loop  # private loop on which the async DLQ writer runs, from this thread only
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.retry = retry or SINK_RETRY
        self.stop = stop or threading.Event()
        self._deadline = 0.0
        self._last_consume_error: str | None = None
        self._producer = producer  # the DLQ writer's producer, closed with the sink

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
        records: list[Message] = []
        # consume(n, t) waits until n records OR t passed: block only for the first record, then take
        # what is already fetched, so a quiet topic does not add poll_timeout_s of latency per batch.
        first = self.consumer.poll(self.poll_timeout_s)
        if first is None:
            return records
        for msg in [first, *self.consumer.consume(self.batch_size - 1, 0.005)]:
            err = msg.error()
            if err is None:
                records.append(msg)
                continue
            if err.fatal():
                raise KafkaException(err)
            text = str(err)
            if text != self._last_consume_error:  # e.g. topic not created yet: say it once
                log.warning("consumer error: %s", text)
                self._last_consume_error = text
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
        pending: list[tuple[Message, dict[str, Any]]] = []
        for msg in records:
            value = msg.value()
            if value is None:
                # Keep order: earlier versions in this batch land before the tombstone removes them.
                self._flush(pending, result)
                self._tombstone(msg, result)
                continue
            try:
                state = self._with_retry("registry", partial(self.serde.decode, value))
                if not isinstance(state, OrderState):
                    raise UnexpectedRecord(f"{type(state).__name__} is not an OrderState")
            except SerdeError as exc:
                self._park(msg, exc, "deserialize", result)
                continue
            try:
                doc = order_document(state)
            except (ValueError, TypeError, AttributeError) as exc:
                self._park(msg, exc, "sink", result)
                continue
            pending.append((msg, doc))
        self._flush(pending, result)

    def _flush(self, pending: list[tuple[Message, dict[str, Any]]], result: BatchResult) -> None:
        if not pending:
            return
        docs = [doc for _, doc in pending]
        flags = self._with_retry("redis", lambda: self.view.put_many(docs))
        for (msg, _), wrote in zip(pending, flags, strict=True):
            outcome = "ok" if wrote else "duplicate"
            RECORDS_IN.labels(PROCESSOR, msg.topic(), outcome).inc()
        result.written += sum(flags)
        result.duplicates += len(flags) - sum(flags)
        pending.clear()

    def _tombstone(self, msg: Message, result: BatchResult) -> None:
        key = msg.key()
        try:
            order_id = key.decode("utf-8") if key else ""
        except UnicodeDecodeError:
            order_id = ""
        if not order_id:
            log.warning("tombstone without a usable key ignored", extra={
                "topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()})
            RECORDS_IN.labels(PROCESSOR, msg.topic(), "rejected").inc()
            return
        self._with_retry("redis", lambda: self.view.delete(order_id))
        RECORDS_IN.labels(PROCESSOR, msg.topic(), "ok").inc()
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
               batch_size: int = 500, retry: RetryPolicy | None = None) -> ViewSink:
        """Build the consumer, serde, Redis view and DLQ writer from settings (and subscribe)."""
        if not settings.schema_registry_url:
            raise ConfigError("SCHEMA_REGISTRY_URL: required by the view sink")
        if not settings.kafka_bootstrap_servers:
            raise ConfigError("KAFKA_BOOTSTRAP_SERVERS: required by the view sink")
        consumer = make_consumer(settings, GROUP_ID)
        consumer.subscribe([settings.topic(SOURCE_TOPIC)])
        serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        view = OrderView.from_url(settings.redis_url, settings.redis_key_prefix)
        producer = AsyncProducer(settings)
        dlq = DeadLetterWriter(producer, processor=settings.topic(GROUP_ID))
        return cls(consumer, serde, view, dlq, asyncio.new_event_loop(), batch_size=batch_size,
                   retry=retry, stop=stop, producer=producer)

    def close(self) -> None:
        """Leave the group (no commit: only processed batches were committed) and free clients."""
        try:
            self.consumer.close()
        finally:
            if self._producer is not None:
                self._producer.close()
            self.view.close()
            self._loop.close()


def run_sink(settings: Settings, stop: threading.Event | None = None, *,
             metrics_port: int | None = None, batch_size: int = 500,
             retry: RetryPolicy | None = None) -> None:
    """Run the order view sink until `stop` is set (or SIGTERM/SIGINT in the main thread).

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
        log.info("view sink started", extra={"topic": settings.topic(SOURCE_TOPIC), "metrics_port": port})
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
