"""Shop stock sync worker (`shopstream worker shop-sync`): `inventory.atp` -> coalesced SyncShopStock.

The Kafka adapter around the pure `ShopSyncCoalescer` (`shop_sync.py`, which holds the rules: the
shop sees `max(0, available)`, only changes of that figure are sent, older versions are ignored, a
burst within `SHOPSTREAM_SHOP_SYNC_WINDOW_MS` becomes one command with the latest value).

Loop (one thread, plain confluent-kafka consumer in group `shop-sync`, no Faust: a 1M-SKU ERP snapshot
means 1M AtpLevels, and Faust costs 100-250 µs per message here):

1. take a batch of up to `batch_size` records (waiting at most until the next window ends);
2. decode each value with fastavro straight to plain values (`AvroSerde.decode_datum`) — the writer
   schema comes from the registry by the id in the Confluent frame, with its logical types dropped,
   read into a projection of the fields used, so no datetime/UUID/pydantic objects are built per
   record (measured: ~42,000 records/s against ~11,000/s through the pydantic model, `shopstream
   bench shop-sync`) — and `offer` it to the coalescer with the local monotonic clock (windows are
   processing time, so a replayed backlog is coalesced like live traffic); records it cannot use go
   to the DLQ;
3. send the commands of the windows that ended (`due(now)`, at most `batch_size` per step so a slow
   broker never keeps the consumer from polling), keyed by SKU, on `commands.shop` through the one
   confirming producer (the runner's `ConfirmingProducer`, from `make_producer`: murmur2, idempotent,
   acks=all, failures-only delivery reports; also the DLQ writer's), and wait until the broker
   confirmed all of them;
4. commit, per partition, the offset of the oldest record whose change is still in an open window
   or in a command not confirmed yet (or everything read, when none is): only input whose commands
   were confirmed — or that needed no command (stale, unchanged, superseded by a confirmed command,
   parked) — is ever committed. A figure counts as sent (`ShopSyncCoalescer.confirm`) only once the
   broker confirmed its command: a command that failed stays in flight, so a revoke or a stop that
   follows re-sends it before committing, and commits nothing past it if that fails too.

The producer honours `SHOPSTREAM_SINGLE_RECORD_BATCHES` like every producer from `make_producer`;
with it on (`shopstream dev` on Tansu) the broker confirms only ~2,800 commands/s here, against a
loop that handles ~20,000 AtpLevels/s (README, Performance).

Versions are taken to grow per SKU (the inventory worker's table is changelog-backed); a SKU whose
versions restarted lower would be ignored until this worker restarts.

At least once: a crash re-reads from the last commit and may send a command again. That is safe
because a command carries an absolute figure and `atp_version` (its event id is derived from SKU and
version too), so the shop side applies it idempotently and drops versions older than it has.

Where "last sent" lives: in memory only, by decision. A restart (or a rebalance, which revokes all
partitions of this eager-assignment consumer) starts with an empty coalescer, so the first change
per SKU in the re-read tail is sent even if the shop already shows it: at most one redundant command
per SKU in that tail (which is short: commits follow every batch). A brand-new consumer group reads
the compacted topic from the beginning and therefore sends every SKU's current figure once — a full
resync, which is what a new shop connection wants. Persisting "last sent" (Redis, a compacted
topic) would save those commands at the cost of a write per command on the hot path; not worth it
for idempotent absolute values. On a revoke the worker first sends every pending window early,
commits, then forgets everything: the partitions' next owner must not suppress a change because of
what this worker sent before.

Failures:
- **Permanent** (not Confluent framed, unknown schema id, undecodable body, a record that is not an
  AtpLevel, a key that is not the record's SKU): the original record goes to `inventory.atp.dlq`
  (`DeadLetterWriter`, stage `deserialize` or `process`) and the partition moves on. A record keyed
  by another SKU is refused because a SKU's records must share one partition: commits are tracked per
  partition. Tombstones (null value) are ignored (counted as outcome `ignored`).
- **Transient** (registry away): retried in place with backoff (`shopstream.processing.RetryPolicy`)
  up to `max_elapsed_s`, then parked with stage `retry-exhausted`.
- **Command delivery** (the broker does not confirm a command, or the DLQ write): re-sent with backoff
  for `max_elapsed_s`; still failing, the worker stops with an error and without committing, and a
  restart resumes from the last commit (commands cannot be parked: the DLQ lives on the same broker).

Metrics on `/metrics` (port `--port`, default `SHOPSTREAM_WORKER_PORT` + 3):
`shopstream_shop_sync_commands_total` (confirmed commands), `shopstream_shop_sync_coalesced_total
{reason}` (changes that did not become a command of their own: `superseded` by a later change in
their window, or `unchanged` — the shop already shows that figure), `shopstream_shop_sync_pending`
(SKUs with an open window), and the shared `shopstream_records_in_total{processor="shop-sync"}`
(outcome `ok`, `stale`, `ignored`, `dlq`), `shopstream_records_out_total`, `shopstream_dlq_writes_total`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any, NamedTuple, TypeVar

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import Counter, Gauge, start_http_server

from shopstream.codecs.avro import event_uuid5, frame
from shopstream.codecs.sync_shop_stock import SyncShopStockEncoder
from shopstream.config import ConfigError, Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.kafka import make_consumer, poll_batch
from shopstream.metrics import RECORDS_IN, RECORDS_OUT, RETRIES
from shopstream.processing import RetryPolicy, is_transient
from shopstream.processors.inventory.shop_sync import Offer, ShopStockCommand, ShopSyncCoalescer
from shopstream.runner.producer import ConfirmingProducer, SendRecord
from shopstream.serde import AvroSerde, RegistryUnavailable, SerdeError, make_registry_client
from shopstream.topology import load_topology_for, names

PROCESSOR = "shop-sync"
GROUP_ID = "shop-sync"
SOURCE_TOPIC = names.INVENTORY_ATP
COMMAND_TOPIC = names.COMMANDS_SHOP
ATP_LEVEL = "io.shopstream.events.AtpLevel"
SYNC_SHOP_STOCK = "io.shopstream.events.SyncShopStock"
SOURCE = "shopstream.shop-sync"
#: Namespace of command event ids: uuid5(namespace, "<sku>:<atp_version>"), the same on every re-send.
COMMAND_NS = bytes.fromhex("8f1f3c2e6a4b4d5e9c7a1b2d3e4f5a6b")

COMMANDS_SENT = Counter("shopstream_shop_sync_commands_total",
                        "SyncShopStock commands sent to commands.shop and confirmed by the broker")
CHANGES_COALESCED = Counter(
    "shopstream_shop_sync_coalesced_total",
    "Stock changes that did not become a command of their own, by reason", ["reason"],  # superseded | unchanged
)
PENDING = Gauge("shopstream_shop_sync_pending", "SKUs with an open coalescing window")

log = logging.getLogger("shopstream.processors.inventory.shop_sync_worker")
T = TypeVar("T")
#: (topic, key, value, headers) of a record to produce.
OutRecord = SendRecord

#: Per batch: well below max.poll.interval.ms (300 s by default), so the group keeps us while we wait.
SHOP_SYNC_RETRY = RetryPolicy(initial_s=0.2, max_backoff_s=5.0, max_elapsed_s=60.0)


class MisplacedRecord(ValueError):
    """The record's key is not its SKU: it may sit on another partition than the SKU's other records."""


class CommandsNotConfirmed(Exception):
    """The broker did not confirm commands (or a DLQ write) within the retry budget."""


class AtpChange(NamedTuple):
    """The fields of an AtpLevel the shop sync needs (decoded straight from Avro, no model).

    It also rides along with its offer as the `cause` of the command that carries its value.
    """

    sku: str
    available: int
    version: int
    updated_at_ms: int
    event_id: str
    correlation_id: str | None


#: The reader projection: only what the shop sync uses. fastavro skips the rest of any (BACKWARD-
#: compatible) writer version without building it (measured ~1.5x faster than reading the whole record
#: with its logical types; about even with the whole plain record at one location, ahead with more).
_ATP_PROJECTION: dict[str, Any] = {
    "type": "record", "name": "AtpLevel", "namespace": "io.shopstream.events", "fields": [
        {"name": "meta", "type": {"type": "record", "name": "EventMeta", "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "correlation_id", "type": ["null", "string"], "default": None}]}},
        {"name": "sku", "type": "string"},
        {"name": "available", "type": "int"},
        {"name": "version", "type": "long"},
        {"name": "updated_at", "type": "long"},
    ]}


class AtpDecoder:
    """Framed Avro AtpLevel bytes -> `AtpChange`, through any writer schema the registry knows.

    `AvroSerde.decode_datum` with the projection above, raising what it raises: a SerdeError when the
    bytes are not an AtpLevel (UnknownRecord: another record type), RegistryUnavailable (transient).
    """

    def __init__(self, serde: AvroSerde) -> None:
        self._decode_datum = serde.decode_datum

    def decode(self, data: bytes) -> AtpChange:
        """The change carried by an AtpLevel record; SerdeError when the bytes are not one."""
        rec = self._decode_datum(data, ATP_LEVEL, _ATP_PROJECTION)
        meta = rec["meta"]
        return AtpChange(rec["sku"], rec["available"], rec["version"], rec["updated_at"],
                         meta["event_id"], meta["correlation_id"])


def command_event_id(sku: str, atp_version: int) -> str:
    """uuid5(COMMAND_NS, "<sku>:<atp_version>") as text: the same id on every re-send of that figure."""
    return event_uuid5(COMMAND_NS, f"{sku}:{atp_version}")


class CommandEncoder:
    """SyncShopStock as framed Avro: the frame from the registry, the body from the field-by-field writer.

    The writer (`shopstream.codecs.sync_shop_stock`) checks itself against fastavro when built and
    raises CodecMismatch on any difference, so a schema change not carried over there stops the
    worker at start instead of sending commands the shop side cannot read.
    """

    def __init__(self, serde: AvroSerde, topic: str) -> None:
        self._serde = serde
        self._topic = topic
        self._header: bytes | None = None
        self._writer = SyncShopStockEncoder(source=SOURCE, event_ns=COMMAND_NS)

    def header(self) -> bytes:
        """Magic byte + schema id (registers the schema on first use; RegistryUnavailable is transient)."""
        if self._header is None:
            self._header = frame(self._serde.schema_id(self._topic, SYNC_SHOP_STOCK))
        return self._header

    def encode(self, command: ShopStockCommand[AtpChange], recorded_at_ms: int) -> bytes:
        """Framed Avro bytes of the command (the figure, its ATP version, and meta from its cause)."""
        return self.encode_all([command], recorded_at_ms)[0]

    def encode_all(self, commands: Sequence[ShopStockCommand[AtpChange]], recorded_at_ms: int) -> list[bytes]:
        """`encode` for a batch (the parts every command of the batch shares are computed once)."""
        return self._writer.encode_all(self.header(), commands, recorded_at_ms)


def _header_list(msg: Message) -> list[tuple[str, bytes]]:
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in pairs]


@dataclass
class BatchResult:
    """What one batch did (for tests and logs)."""

    read: int = 0
    offered: int = 0
    stale: int = 0
    ignored: int = 0
    parked: int = 0
    sent: int = 0
    committed: bool = False


class ShopSync:
    """One consumer's loop; build it with `ShopSync.create` or inject the parts (tests, benchmarks)."""

    def __init__(self, consumer: Consumer, producer: ConfirmingProducer, decoder: AtpDecoder,
                 encoder: CommandEncoder, dlq: DeadLetterWriter, *, command_topic: str, window_ms: int,
                 source_topic: str = SOURCE_TOPIC, batch_size: int = 5000, poll_timeout_s: float = 0.5,
                 retry: RetryPolicy | None = None, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.consumer = consumer
        self.producer = producer
        self.decoder = decoder
        self.encoder = encoder
        self.dlq = dlq
        self.command_topic = command_topic
        self.source_topic = source_topic
        self.coalescer: ShopSyncCoalescer[AtpChange] = ShopSyncCoalescer(window_ms)
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.retry = retry or SHOP_SYNC_RETRY
        self.stop = stop or threading.Event()
        self._clock = clock
        self._loop = asyncio.new_event_loop()  # runs the async DLQ writer, from this thread only
        # Per partition: (window seq, offset) of each record that opened a window, in read order, and
        # the next offset to read. Their minimum over open windows is what may be committed.
        self._openers: dict[tuple[str, int], deque[tuple[int, int]]] = {}
        self._next_offset: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        # Partitions this consumer owns (kept by the rebalance callbacks); None: not tracked (manual assign).
        self._assigned: set[tuple[str, int]] | None = None
        self._last_consume_error: str | None = None
        self._published = (0, 0)  # coalescer stats already exported: superseded, unchanged

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- reading -------------------------------------------------------------------------------

    def poll_batch(self) -> list[Message]:
        """Records of the next batch; waits at most until the next window ends."""
        timeout = self.poll_timeout_s
        deadline = self.coalescer.next_deadline()  # in the past while a backlog of ended windows waits
        if deadline is not None:
            timeout = max(0.0, min(timeout, (deadline - self.now_ms()) / 1000))
        records, self._last_consume_error = poll_batch(self.consumer, self.batch_size, timeout,
                                                       self._last_consume_error)
        return records

    def offer_all(self, records: list[Message], result: BatchResult) -> None:
        """Decode and offer every record of a batch; park what cannot be used."""
        coalescer, decode, now = self.coalescer, self.decoder.decode, self.now_ms()
        openers, next_offset, assigned = self._openers, self._next_offset, self._assigned
        for msg in records:
            tp = (msg.topic() or "", msg.partition() or 0)
            if assigned is not None and tp not in assigned:
                continue  # fetched before a rebalance took its partition: its next owner reads it
            value = msg.value()
            offset = msg.offset() or 0
            next_offset[tp] = offset + 1
            if value is None:
                result.ignored += 1
                continue
            try:
                try:
                    change = decode(value)
                except RegistryUnavailable:
                    change = self._with_retry("registry", partial(decode, value))
                if msg.key() != change.sku.encode():
                    raise MisplacedRecord(f"key {msg.key()!r} is not the record's SKU {change.sku!r}")
            except (SerdeError, MisplacedRecord) as exc:
                self._park(msg, exc, "deserialize" if isinstance(exc, SerdeError) else "process")
                result.parked += 1
                continue
            except _Exhausted as exc:
                self._park(msg, exc.__cause__ or exc, "retry-exhausted")
                result.parked += 1
                continue
            seq = coalescer.next_seq
            outcome = coalescer.offer(change.sku, change.available, change.version, now, change)
            if outcome is Offer.OPENED:
                queue = openers.get(tp)
                if queue is None:
                    queue = openers[tp] = deque()
                queue.append((seq, offset))
            elif outcome is Offer.STALE:
                result.stale += 1
            result.offered += 1

    # -- sending -------------------------------------------------------------------------------

    def send_due(self, commands: list[ShopStockCommand[AtpChange]]) -> int:
        """Encode and send commands; returns once the broker confirmed every one of them.

        A SKU with two commands (one still unconfirmed, a newer window closed on stop or revoke) has them
        sent in window order, each batch confirmed before the next: a re-sent older figure never lands
        after the newer one."""
        rounds: list[list[ShopStockCommand[AtpChange]]] = []
        per_sku: dict[str, int] = {}
        for command in sorted(commands, key=lambda c: c.seq):
            n = per_sku[command.sku] = per_sku.get(command.sku, -1) + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(command)
        return sum(self._send_round(batch) for batch in rounds)

    def _send_round(self, commands: list[ShopStockCommand[AtpChange]]) -> int:
        """`send_due` for commands of distinct SKUs."""
        if not commands:
            return 0
        recorded = int(time.time() * 1000)
        self._with_retry("registry", self.encoder.header, give_up=CommandsNotConfirmed)
        topic = self.command_topic
        records: list[OutRecord] = [
            (topic, c.sku.encode(), value, None)
            for c, value in zip(commands, self.encoder.encode_all(commands, recorded), strict=True)]
        self._send_confirmed(records, "commands")
        # Only now are the figures "sent": a failure above leaves them in flight, holding the commit back.
        self.coalescer.confirm(commands)
        RECORDS_OUT.labels(PROCESSOR, topic).inc(len(records))
        COMMANDS_SENT.inc(len(records))
        return len(records)

    def _send_confirmed(self, records: list[OutRecord], what: str) -> None:
        started, attempt = time.monotonic(), 0
        while records:
            failed = self.producer.send(records)
            if not failed:
                return
            attempt += 1
            first = failed[0][1]
            if time.monotonic() - started >= self.retry.max_elapsed_s or self.stop.is_set():
                raise CommandsNotConfirmed(f"{len(failed)} {what} not confirmed: {first}")
            RETRIES.labels(PROCESSOR, what).inc()
            log.warning("broker did not confirm %d %s (%s), re-sending", len(failed), what, first)
            # Re-send only what failed; a command of one SKU is never overtaken (at most one per SKU here).
            records = [(m.topic(), m.key(), m.value(), m.headers()) for m, _ in failed]  # type: ignore[misc]
            time.sleep(self.retry.backoff(attempt))

    def _park(self, msg: Message, exc: BaseException, stage: str) -> None:
        ts_type, ts = msg.timestamp()
        record = FailedRecord(topic=msg.topic() or "", key=msg.key(), value=msg.value(), headers=_header_list(msg),
                              partition=msg.partition() or 0, offset=msg.offset() or 0,
                              timestamp_ms=ts if ts_type else None)
        failure = Failure(error=exc, stage=stage)
        self._with_retry("dlq", lambda: self._loop.run_until_complete(self.dlq.park(record, failure)),
                         give_up=CommandsNotConfirmed)
        RECORDS_IN.labels(PROCESSOR, record.topic, "dlq").inc()

    def _with_retry(self, operation: str, fn: Callable[[], T], give_up: type[Exception] | None = None) -> T:
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                if time.monotonic() - started >= self.retry.max_elapsed_s or self.stop.is_set():
                    raise (give_up or _Exhausted)(f"{operation}: {type(exc).__name__}: {exc}") from exc
                RETRIES.labels(PROCESSOR, operation).inc()
                log.warning("transient fault, retrying", extra={
                    "processor": PROCESSOR, "operation": operation, "attempt": attempt,
                    "error_class": type(exc).__name__})
                self.stop.wait(self.retry.backoff(attempt))

    # -- committing ----------------------------------------------------------------------------

    def positions(self) -> list[TopicPartition]:
        """Per partition: the oldest opener of a still-open window, else the next offset to read."""
        oldest = self.coalescer.oldest_open()
        out = []
        for tp, next_offset in self._next_offset.items():
            queue = self._openers.get(tp)
            while queue and queue[0][0] < oldest:
                queue.popleft()
            out.append(TopicPartition(tp[0], tp[1], queue[0][1] if queue else next_offset))
        return out

    def commit(self) -> bool:
        """Commit what is settled (synchronously); False when there was nothing new or it failed."""
        changed = [tp for tp in self.positions() if self._committed.get((tp.topic, tp.partition)) != tp.offset]
        if not changed:
            return False
        try:
            self.consumer.commit(offsets=changed, asynchronous=False)
        except KafkaException as exc:
            # Typically a rebalance took the partitions; the new owner re-reads from the last commit.
            log.warning("offset commit failed (records will be re-read): %s", exc)
            return False
        for tp in changed:
            self._committed[(tp.topic, tp.partition)] = tp.offset
        return True

    # -- one step, the loop ----------------------------------------------------------------------

    def step(self) -> BatchResult:
        """Read one batch, send what is due, commit what is settled."""
        records = self.poll_batch()
        result = BatchResult(read=len(records))
        if records:
            self._last_consume_error = None
            self.offer_all(records, result)
        # At most one batch worth of commands per step: on a slow broker a big backlog of ended windows
        # is then sent over several steps, and the consumer keeps polling (its group membership).
        result.sent = self.send_due(self.coalescer.take_due(self.now_ms(), limit=self.batch_size))
        result.committed = self.commit()
        self._export(result)
        return result

    def _export(self, result: BatchResult) -> None:
        stats = self.coalescer.stats
        superseded, unchanged = self._published
        if stats.superseded != superseded:
            CHANGES_COALESCED.labels("superseded").inc(stats.superseded - superseded)
        if stats.unchanged != unchanged:
            CHANGES_COALESCED.labels("unchanged").inc(stats.unchanged - unchanged)
        self._published = (stats.superseded, stats.unchanged)
        topic = self.source_topic
        ok = result.offered - result.stale
        if ok:
            RECORDS_IN.labels(PROCESSOR, topic, "ok").inc(ok)
        if result.stale:
            RECORDS_IN.labels(PROCESSOR, topic, "stale").inc(result.stale)
        if result.ignored:
            RECORDS_IN.labels(PROCESSOR, topic, "ignored").inc(result.ignored)
        PENDING.set(self.coalescer.pending_count())

    def flush_pending(self) -> None:
        """Send every unconfirmed command and open window now, then commit what is settled (on revoke
        and on stop). If the broker does not confirm them this raises before committing anything."""
        self.send_due(self.coalescer.unconfirmed() + self.coalescer.take_due(math.inf))
        self.commit()

    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions came in (eager protocol: the whole assignment)."""
        self._assigned = (self._assigned or set()) | {(p.topic, p.partition) for p in partitions}
        log.info("partitions assigned: %s", [f"{p.topic}[{p.partition}]" for p in partitions])

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Before partitions go: send what is pending, commit, then forget all per-SKU memory."""
        try:
            self.flush_pending()
        except Exception as exc:  # nothing committed past an unsent window: the next owner re-reads it
            log.error("could not flush before revoke (the next owner re-reads the tail): %s", exc)
        self._forget(partitions)
        log.info("partitions revoked: %s", [f"{p.topic}[{p.partition}]" for p in partitions])

    def on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions were taken without a revoke (session lost): commits would fail, just forget."""
        self._forget(partitions)
        log.warning("partitions lost: %s", [f"{p.topic}[{p.partition}]" for p in partitions])

    def _forget(self, partitions: list[TopicPartition]) -> None:
        # The coalescer does not know partitions; what the next owner sends would make any of our
        # memory stale, so all of it goes (eager rebalancing revokes everything anyway).
        self._reset()
        if self._assigned is not None:
            self._assigned -= {(p.topic, p.partition) for p in partitions}

    def _reset(self) -> None:
        self.coalescer.forget()
        self._openers.clear()
        self._next_offset.clear()
        self._committed.clear()

    def run(self) -> None:
        """Step until `stop` is set, then send what is pending and commit."""
        while not self.stop.is_set():
            self.step()
        self.flush_pending()

    @classmethod
    def create(cls, settings: Settings, *, stop: threading.Event | None = None, batch_size: int = 5000,
               retry: RetryPolicy | None = None) -> ShopSync:
        """Build consumer, producer, decoder, encoder and DLQ writer from settings, and subscribe."""
        if not settings.schema_registry_url:
            raise ConfigError("SCHEMA_REGISTRY_URL: required by the shop sync worker")
        if not settings.kafka_bootstrap_servers:
            raise ConfigError("KAFKA_BOOTSTRAP_SERVERS: required by the shop sync worker")
        consumer = make_consumer(settings, GROUP_ID)
        producer = ConfirmingProducer(settings, **{"client.id": f"shopstream-{GROUP_ID}"})
        command_topic = settings.topic(COMMAND_TOPIC)
        serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        sync = cls(consumer, producer, AtpDecoder(serde), CommandEncoder(serde, command_topic),
                   DeadLetterWriter(producer, processor=settings.topic(GROUP_ID),
                                    routes=load_topology_for(settings).dlq_routes(settings.topic_prefix)),
                   command_topic=command_topic, window_ms=settings.shop_sync_window_ms,
                   source_topic=settings.topic(SOURCE_TOPIC), batch_size=batch_size, retry=retry, stop=stop)
        sync._assigned = set()
        consumer.subscribe([sync.source_topic], on_assign=sync.on_assign, on_revoke=sync.on_revoke,
                           on_lost=sync.on_lost)
        return sync

    def close(self) -> None:
        """Leave the group and free the clients (commits were made by `run`)."""
        try:
            self.consumer.close()
        finally:
            self.producer.close()
            self._loop.close()


class _Exhausted(Exception):
    """Transient retries of one record are spent: it is parked with stage `retry-exhausted`."""


def run_shop_sync(settings: Settings, stop: threading.Event | None = None, *,
                  metrics_port: int | None = None, batch_size: int = 5000) -> None:
    """Run the shop sync worker until `stop` is set (or SIGTERM/SIGINT in the main thread).

    `metrics_port`: where `/metrics` is served on `settings.http_host`; None means
    `settings.worker_web_port + 3`, 0 means no metrics server.
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
    port = settings.worker_web_port + 3 if metrics_port is None else metrics_port
    server = None
    sync: ShopSync | None = None
    try:
        sync = ShopSync.create(settings, stop=stop, batch_size=batch_size)
        server = start_http_server(port, addr=settings.http_host)[0] if port else None
        log.info("shop sync started", extra={"topic": sync.source_topic, "window_ms": settings.shop_sync_window_ms,
                                             "metrics_port": port})
        sync.run()
    finally:
        if sync is not None:
            sync.close()
        if server is not None:
            server.shutdown()
            server.server_close()
        for signum, previous in own_signals.items():
            signal.signal(signum, previous)
        log.info("shop sync stopped")
