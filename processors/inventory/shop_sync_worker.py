"""Shop stock sync worker (`shopstream worker shop-sync`): `inventory.atp` -> coalesced SyncShopStock.

The Kafka adapter around the pure `ShopSyncCoalescer` (`shop_sync.py`, which holds the rules: the
shop sees `max(0, available)`, only changes of that figure are sent, older versions are ignored, a
burst within `SHOPSTREAM_SHOP_SYNC_WINDOW_MS` becomes one command with the latest value).

A processor on the shared runner (`shopstream.runner`, consumer group `shop-sync`; no Faust: a 1M-SKU
ERP snapshot means 1M AtpLevels, and Faust costs 100-250 µs per message here):

1. the runner polls a batch of up to `batch_size` records;
2. `handle` decodes each value with fastavro straight to plain values (`AvroSerde.decode_datum`) —
   the writer schema comes from the registry by the id in the Confluent frame, with its logical types
   dropped, read into a projection of the fields used, so no datetime/UUID/pydantic objects are built
   per record (`shopstream bench shop-sync`) — and `offer`s it to the coalescer with the local
   monotonic clock (windows are processing time, so a replayed backlog is coalesced like live
   traffic); records it cannot use raise and the runner parks them (the one retry policy, one DLQ path);
3. a record that opened a window is *held* (`Effects.pending`: deferred acknowledgement): nothing of
   its partition is committed past it while its window is open;
4. the runner's `tick` (every `tick_interval_s`, a fraction of the window) closes the windows that
   ended (`due(now)`, at most `batch_size` per tick so a slow broker never keeps the consumer from
   polling) and returns their commands, keyed by SKU, for `commands.shop`, with the acks of the records
   that opened those windows (and of windows that closed unchanged); the runner produces them through
   its one confirming producer and counts the acks only once the broker confirmed every command.
   A command the broker keeps refusing halts the process without committing (the runner's latch,
   exit 76; commands cannot be parked: the DLQ lives on the same broker), so a figure counts as sent
   (`due` confirms at once) only in a process that goes on after its confirmation;
5. before a revoke's commit and on stop the runner calls `drain`: every open window is sent now.

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
  AtpLevel, a key that is not the record's SKU): the runner parks the original record on
  `inventory.atp.dlq` (stage `deserialize` or `process`) and the partition moves on. A record keyed
  by another SKU is refused because a SKU's records must share one partition: commits are tracked per
  partition. Tombstones (null value) are ignored (counted as outcome `ignored`).
- **Transient** (registry away): retried in place by the runner's one retry policy
  (`shopstream.processing`) up to `SHOPSTREAM_RETRY_MAX_ELAPSED_S`, then parked with stage `retry-exhausted`.
- **Command delivery**: the runner re-sends refused commands in place, then halts (exit 76) without
  committing; a restart resumes from the last commit.

Admin port (`--port`, default `SHOPSTREAM_WORKER_PORT` + 3): `/metrics`, `/readyz`, `/healthz`. Metrics:
`shopstream_shop_sync_commands_total` (confirmed commands), `shopstream_shop_sync_coalesced_total
{reason}` (changes that did not become a command of their own: `superseded` by a later change in
their window, or `unchanged` — the shop already shows that figure), `shopstream_shop_sync_pending`
(SKUs with an open window), and the shared `shopstream_records_in_total{processor="shop-sync"}`
(outcome `ok` for every record handled, of which `stale` and `ignored` are counted again by name;
`dlq`), `shopstream_records_out_total`, `shopstream_dlq_writes_total`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from prometheus_client import Counter, Gauge

from shopstream.codecs.avro import event_uuid5, frame
from shopstream.codecs.sync_shop_stock import SyncShopStockEncoder
from shopstream.config import ConfigError, Settings
from shopstream.metrics import RECORDS_IN
from shopstream.processors.inventory.shop_sync import Offer, ShopStockCommand, ShopSyncCoalescer
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.runner.api import Position
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import names

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


class MisplacedRecord(ValueError):
    """The record's key is not its SKU: it may sit on another partition than the SKU's other records."""


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


class ShopSyncProcessor(ProcessorBase):
    """The shop sync on the runner: offers per record, holds window openers, sends due windows per tick."""

    name = PROCESSOR
    inputs: tuple[str, ...] = (SOURCE_TOPIC,)
    batch_size = 5000

    def __init__(self, decoder: AtpDecoder, encoder: CommandEncoder, *, window_ms: int,
                 dlq_name: str = PROCESSOR, clock: Callable[[], float] = time.monotonic,
                 tick_interval_s: float | None = None) -> None:
        self.decoder = decoder
        self.encoder = encoder
        self.coalescer: ShopSyncCoalescer[AtpChange] = ShopSyncCoalescer(window_ms)
        self.dlq_name = dlq_name  # the physical group id, as shop-sync's dead letters always named it
        # Windows end on the tick: a quarter of the window (10-100 ms) keeps the lag of a command small.
        self.tick_interval_s = tick_interval_s if tick_interval_s is not None else min(0.1, max(0.01,
                                                                                        window_ms / 4000))
        self._clock = clock
        self._openers: deque[tuple[int, Position]] = deque()  # (window seq, the record that opened it), held
        self._published = (0, 0)  # coalescer stats already exported: superseded, unchanged

    def now_ms(self) -> int:
        """The coalescer's clock (processing time, monotonic)."""
        return int(self._clock() * 1000)

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Offer one AtpLevel; its record is held when it opened a window (raises to park or retry)."""
        if record.value is None:
            RECORDS_IN.labels(PROCESSOR, record.label, "ignored").inc()
            return Effects()
        change = self.decoder.decode(record.value)
        if record.key != change.sku.encode():
            raise MisplacedRecord(f"key {record.key!r} is not the record's SKU {change.sku!r}")
        seq = self.coalescer.next_seq
        outcome = self.coalescer.offer(change.sku, change.available, change.version, self.now_ms(), change)
        if outcome is Offer.OPENED:
            self._openers.append((seq, (record.topic, record.partition, record.offset)))
            return Effects(pending=True)
        if outcome is Offer.STALE:
            RECORDS_IN.labels(PROCESSOR, record.label, "stale").inc()
        return Effects()

    def tick(self, now: float, states: Mapping[int, Mapping[bytes, Any]]) -> Iterable[tuple[int, Effects]]:
        """The commands of the windows that ended (at most a batch), with the acks of their openers."""
        return self._send(self.now_ms(), self.batch_size)

    def drain(self, now: float) -> Iterable[tuple[int, Effects]]:
        """Every open window sent now (before a revoke's commit and on stop)."""
        return self._send(None, None)

    def _send(self, now_ms: int | None, limit: int | None) -> list[tuple[int, Effects]]:
        self.encoder.header()  # registry away: raises before any window is closed; the next tick retries
        coalescer = self.coalescer
        # Counted as sent at once: the runner confirms these outputs or halts the process (exit 76).
        commands = coalescer.drain() if now_ms is None else coalescer.due(now_ms, limit)
        oldest, openers, acks = coalescer.oldest_open(), self._openers, []
        while openers and openers[0][0] < oldest:
            acks.append(openers.popleft()[1])
        self._export(len(commands))
        if not commands and not acks:
            return []
        values = self.encoder.encode_all(commands, int(time.time() * 1000)) if commands else []
        outputs: list[tuple[str, bytes | None, bytes]] = [
            (COMMAND_TOPIC, c.sku.encode(), v) for c, v in zip(commands, values, strict=True)]
        return [(0, Effects(outputs, acks=acks))]

    def _export(self, sent: int) -> None:
        stats = self.coalescer.stats
        superseded, unchanged = self._published
        if stats.superseded != superseded:
            CHANGES_COALESCED.labels("superseded").inc(stats.superseded - superseded)
        if stats.unchanged != unchanged:
            CHANGES_COALESCED.labels("unchanged").inc(stats.unchanged - unchanged)
        self._published = (stats.superseded, stats.unchanged)
        if sent:
            COMMANDS_SENT.inc(sent)
        PENDING.set(self.coalescer.pending_count())

    def dropped(self, partition: int) -> None:
        """Partitions went (revoke after the drain, or loss): forget every SKU, their next owner decides."""
        self.coalescer.forget()
        self._openers.clear()
        PENDING.set(0)

    @classmethod
    def create(cls, settings: Settings) -> ShopSyncProcessor:
        """Build decoder and encoder from settings (the encoder checks itself against fastavro)."""
        if not settings.schema_registry_url:
            raise ConfigError("SCHEMA_REGISTRY_URL: required by the shop sync worker")
        if not settings.kafka_bootstrap_servers:
            raise ConfigError("KAFKA_BOOTSTRAP_SERVERS: required by the shop sync worker")
        serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        return cls(AtpDecoder(serde), CommandEncoder(serde, settings.topic(COMMAND_TOPIC)),
                   window_ms=settings.shop_sync_window_ms, dlq_name=settings.topic(GROUP_ID))


def run_shop_sync(settings: Settings, stop: threading.Event | None = None, *,
                  metrics_port: int | None = None, batch_size: int = 5000) -> None:
    """Run the shop sync on the runner until `stop` is set (or SIGTERM/SIGINT in the main thread).

    `metrics_port`: the admin port on `settings.http_host`; None means `settings.worker_port("shop-sync")`, 0 none."""
    processor = ShopSyncProcessor.create(settings)
    port = settings.worker_port("shop-sync") if metrics_port is None else metrics_port
    log.info("shop sync started", extra={"window_ms": settings.shop_sync_window_ms, "admin_port": port})
    run_processor(settings, processor, web_port=port, batch_size=batch_size, stop=stop)
