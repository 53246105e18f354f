"""File ingest (`shopstream ingest erp-stock FILE`): the I/O around the pure parser in erp_stock.py.

- Reads FILE (or stdin for `-`) whole, checks its header first: a file-level problem (missing file,
  not UTF-8, missing required columns) publishes nothing and exits 2.
- Publishes the valid rows to `inventory.stock` as StockSnapshotBatch records of up to `BATCH_LINES`
  lines sharing one location and one partition (erp_batches.SnapshotBatcher; the partition count is
  asked from the broker), through the one producer factory (AsyncProducer → make_producer: murmur2,
  idempotent, acks=all), and waits until the broker confirmed every write. Up to `WINDOW` batches are
  in flight at once. A row counts as published when its batch was confirmed. Batch headers:
  `shopstream.ingest.line` = the first row's line number, `shopstream.ingest.lines` = how many rows.
- Parks each rejected row on `connectors.dlq` through the one DLQ writer: value = the raw row (UTF-8,
  no line ending), key = `erp-stock`, `shopstream.dlq.original.topic` = `file:erp-stock`, stage
  `connector`, error class = the kind of rejection (MissingSku, BadQuantity, DuplicateRow,
  WrongColumnCount), plus `shopstream.ingest.file` (file name as given, `-` for stdin),
  `shopstream.ingest.line` (line number, header = 1), `shopstream.ingest.header` (the header line, so
  the raw row can be read) and `shopstream.ingest.as_of` (ISO-8601 UTC).
- "Unchanged" rows: valid rows whose figures equal those the last ingest published for the SKU and
  location (connectors/erp_digest.py, in Redis; once a batch is confirmed its changed rows are
  recorded there, its unchanged ones need no write). They are published anyway (a snapshot also
  moves the SKU's as_of, see erp_digest.py) unless `--changed-only` is given, which skips them.
  Redis unreachable: without --changed-only the ingest goes on and says it could not count them;
  with it the run stops before publishing (it could not know what to skip).
  The summary says read / published / unchanged / rejected (and failed, when the broker did not
  confirm writes).
- Exit codes (cli.py): 0 every row published; 1 a row was rejected or a write not confirmed (valid
  rows are still published; re-running the same file with the same --as-of is safe: same event ids);
  2 a file-level error or a bad --as-of.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shopstream.codecs.stock_snapshot_batch import StockSnapshotLinesEncoder
from shopstream.config import Settings
from shopstream.connectors.base import PayloadError, refuse_future
from shopstream.connectors.erp_batches import Batch, SnapshotBatcher, encode_batch
from shopstream.connectors.erp_digest import PublishedDigest
from shopstream.connectors.erp_stock import (
    BATCH_LINES,
    STOCK_TOPIC,
    ErpFileError,
    Row,
    RowError,
    StockExport,
)
from shopstream.connectors.payload import MAX_BODY
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.kafka import AsyncProducer, DeliveryError
from shopstream.schemas.models import StockSnapshotBatch
from shopstream.serde import AvroSerde, RegistryUnavailable, SerdeError, make_registry_client
from shopstream.topology import CONNECTORS_DLQ, load_topology_for

ORIGINAL_TOPIC = "file:erp-stock"
DLQ_KEY = b"erp-stock"
PROCESSOR = "ingest:erp-stock"
HEADER_PREFIX = "shopstream.ingest."
WINDOW = 200  # batches (and parked rows) in flight before waiting for confirmations
SHOWN_ERRORS = 20  # rejected rows listed on stderr; the rest are only on the DLQ


class IngestAborted(Exception):
    """The run could not go on (registry or broker away); the message says how far it got."""


@dataclass
class IngestReport:
    file: str
    read: int = 0
    published: int = 0
    unchanged: int | None = 0  # None: could not be counted (Redis away)
    skipped: int = 0  # unchanged rows not published (--changed-only)
    rejected: int = 0
    failed: int = 0  # writes the broker did not confirm
    errors: list[RowError] = field(default_factory=list)  # the first SHOWN_ERRORS

    def summary(self) -> str:
        unchanged = "unknown (Redis unreachable)" if self.unchanged is None else str(self.unchanged)
        skipped = f" (not published: {self.skipped})" if self.skipped else ""
        text = (f"erp-stock {self.file}: read {self.read}, published {self.published}, unchanged {unchanged}{skipped}, "
                f"rejected {self.rejected}")
        return text + (f", failed {self.failed} (not confirmed by the broker)" if self.failed else "")

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected or self.failed else 0


def parse_as_of(value: str | None, now: datetime | None = None, max_future_skew_s: float | None = None) -> datetime:
    """--as-of: ISO-8601 with a zone (`Z` or an offset); default now (UTC). ValueError otherwise, also when it
    lies more than `max_future_skew_s` ahead of now (a typo like 2062 would make every later count stale)."""
    current = now or datetime.now(UTC)
    if value is None:
        return current
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"--as-of: not an ISO-8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"--as-of: {value!r} has no time zone; write e.g. {value}Z or {value}+01:00")
    try:
        as_of = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"--as-of: out of range: {value!r}") from None
    if max_future_skew_s is not None:
        try:
            refuse_future(as_of, current, max_future_skew_s, "--as-of")
        except PayloadError as exc:
            raise ValueError(f"{exc} (SHOPSTREAM_MAX_FUTURE_SKEW_S)") from None
    return as_of


def read_input(path: str) -> bytes:
    """The file's bytes (`-` = stdin); ErpFileError when it cannot be read."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ErpFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ErpFileError(f"{path}: is a directory") from None
    except OSError as exc:
        raise ErpFileError(f"{path}: cannot read: {exc.strerror or exc}") from None


async def _publish_all(settings: Settings, export: StockExport, report: IngestReport,
                       progress: Callable[[IngestReport], None] | None, batch_lines: int,
                       changed_only: bool) -> None:
    # Built first: it checks itself against fastavro and refuses (CodecMismatch) before anything is sent.
    lines = StockSnapshotLinesEncoder()
    topic = settings.topic(STOCK_TOPIC)
    record_name = str(StockSnapshotBatch.AVRO_NAME)
    dlq = settings.topic(CONNECTORS_DLQ)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    producer = AsyncProducer(settings)
    writer = DeadLetterWriter(producer, settings.topic(PROCESSOR),
                              load_topology_for(settings).dlq_routes(settings.topic_prefix))
    in_flight: set[asyncio.Task[tuple[str, int]]] = set()
    file_headers = [(HEADER_PREFIX + "file", report.file.encode()),
                    (HEADER_PREFIX + "as_of", export.as_of.isoformat().encode())]

    def write(datum: dict[str, Any]) -> bytes:
        return serde.encode_datum(topic, record_name, datum)

    async def publish(batch: Batch) -> tuple[str, int]:
        try:
            value = encode_batch(batch, write, lines)
        except RegistryUnavailable as exc:
            raise IngestAborted(f"schema registry unavailable: {exc}") from exc
        except SerdeError as exc:  # rows are validated first, so this is a bug or a registry refusal
            raise IngestAborted(f"the batch starting on line {batch.rows[0].line_number} cannot be "
                                f"encoded: {exc}") from exc
        headers = [("shopstream.source", b"erp-stock"), *file_headers,
                   (HEADER_PREFIX + "line", str(batch.rows[0].line_number).encode()),
                   (HEADER_PREFIX + "lines", str(len(batch.rows)).encode())]
        try:
            await producer.publish(topic, batch.key, value, headers)
        except DeliveryError:
            return "failed", len(batch.rows)
        if digest is not None and batch.changed:
            try:
                await digest.remember(batch.changed)
            except RedisError as exc:
                lost_digest(exc)
        return "published", len(batch.rows)

    async def park(error: RowError) -> tuple[str, int]:
        raw = error.raw_line.encode()
        # A line beyond the webhook body limit is parked cut (its length in a header): the broker takes
        # about 1 MB per record, and a line it refuses would abort the whole ingest.
        cut = [(HEADER_PREFIX + "truncated", str(len(raw)).encode())] if len(raw) > MAX_BODY else []
        record = FailedRecord(topic=ORIGINAL_TOPIC, key=DLQ_KEY, value=raw[:MAX_BODY],
                              headers=[*file_headers, (HEADER_PREFIX + "line", str(error.line_number).encode()),
                                       (HEADER_PREFIX + "header", export.header_line.encode()), *cut],
                              timestamp_ms=int(time.time() * 1000))
        try:
            await writer.park(record, Failure(error=error.exception(), stage="connector"), to_topic=dlq)
            return "parked", 1
        except DeliveryError:
            return "failed", 1

    async def settle(wait_for_all: bool) -> None:
        nonlocal in_flight
        if not in_flight:
            return
        done, in_flight = await asyncio.wait(
            in_flight, return_when=asyncio.ALL_COMPLETED if wait_for_all else asyncio.FIRST_COMPLETED)
        for task in done:
            outcome, rows = task.result()
            report.published += rows if outcome == "published" else 0
            report.failed += rows if outcome == "failed" else 0

    try:
        partitions = await asyncio.to_thread(producer.partitions, topic)
    except DeliveryError as exc:
        await asyncio.to_thread(producer.close)
        raise IngestAborted(f"{exc}; run `shopstream topics apply` first") from exc
    batcher = SnapshotBatcher(export, partitions, batch_lines)
    digest: PublishedDigest | None = PublishedDigest(
        aioredis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5),
        settings.redis_key_prefix)
    chunk: list[Row] = []

    def lost_digest(exc: Exception) -> None:
        nonlocal digest
        if changed_only:
            raise IngestAborted(f"--changed-only needs the last published figures in Redis ({settings.redis_url}): "
                                f"{exc}")
        if digest is not None:
            print(f"shopstream ingest erp-stock: Redis unreachable ({exc}); publishing every row, "
                  "unchanged rows not counted", file=sys.stderr)
        digest, report.unchanged = None, None

    async def classify() -> None:
        """Count (and with --changed-only drop) the unchanged rows of the chunk, batch the rest."""
        report.read += len(chunk)
        flags = [False] * len(chunk)
        if digest is not None:
            try:
                flags = await digest.unchanged(chunk)
            except RedisError as exc:
                lost_digest(exc)
        for row, unchanged in zip(chunk, flags, strict=True):
            if unchanged and report.unchanged is not None:
                report.unchanged += 1
            if unchanged and changed_only:
                report.skipped += 1
                continue
            for batch in batcher.add(row, changed=not unchanged):
                in_flight.add(asyncio.create_task(publish(batch)))
        chunk.clear()

    async def make_room() -> None:
        while len(in_flight) >= WINDOW:
            await settle(wait_for_all=False)
        if progress is not None:
            progress(report)

    try:
        # Per valid row only what it needs: rows are counted, classified and batched per chunk.
        for item in export:
            if isinstance(item, Row):
                chunk.append(item)
                if len(chunk) >= batch_lines:
                    await classify()
                    await make_room()
                continue
            report.read += 1
            report.rejected += 1
            if len(report.errors) < SHOWN_ERRORS:
                report.errors.append(item)
            in_flight.add(asyncio.create_task(park(item)))
            await make_room()
        await classify()
        for batch in batcher.flush():
            in_flight.add(asyncio.create_task(publish(batch)))
        await settle(wait_for_all=True)
    finally:
        for task in in_flight:
            task.cancel()
        await asyncio.to_thread(producer.close)
        if digest is not None:
            await digest.close()


def ingest_erp_stock(settings: Settings, data: bytes, *, file_name: str, as_of: datetime,
                     progress: Callable[[IngestReport], None] | None = None,
                     batch_lines: int = BATCH_LINES, changed_only: bool = False) -> IngestReport:
    """Parse `data` and publish it; ErpFileError before anything is sent when the file is unusable."""
    export = StockExport(data, as_of=as_of)
    report = IngestReport(file=file_name)
    asyncio.run(_publish_all(settings, export, report, progress, batch_lines, changed_only))
    return report


class _Progress:
    """A carriage-return counter on a terminal, redrawn at most every 0.25 s (nothing for quick files)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last = time.monotonic()  # small files finish before anything is drawn
        self.shown = False

    def __call__(self, report: IngestReport) -> None:
        now = time.monotonic()
        if now - self._last < 0.25:
            return
        self._last = now
        self.shown = True
        self._stream.write(f"\r{report.read} rows read, {report.rejected} rejected ...")
        self._stream.flush()

    def clear(self) -> None:
        if self.shown:
            self._stream.write("\r\033[K")
            self._stream.flush()


def run_erp_stock(settings: Settings, path: str, as_of_text: str | None, changed_only: bool = False) -> int:
    """The `shopstream ingest erp-stock` command: returns the exit code (0 / 1 / 2)."""
    try:
        as_of = parse_as_of(as_of_text, max_future_skew_s=settings.max_future_skew_s)
    except ValueError as exc:
        print(f"shopstream ingest erp-stock: {exc}", file=sys.stderr)
        return 2
    try:
        data = read_input(path)
        progress = _Progress(sys.stderr) if sys.stderr.isatty() else None
        try:
            report = ingest_erp_stock(settings, data, file_name=path, as_of=as_of, progress=progress,
                                      changed_only=changed_only)
        finally:
            if progress is not None:
                progress.clear()
    except ErpFileError as exc:
        print(f"shopstream ingest erp-stock: {exc}", file=sys.stderr)
        return 2
    except IngestAborted as exc:
        print(f"shopstream ingest erp-stock: {exc}; re-run the same file with the same --as-of "
              "(same event ids, duplicates are ignored downstream)", file=sys.stderr)
        return 1
    for error in report.errors:
        print(f"{path}:{error.line_number}: {error.reason}", file=sys.stderr)
    if report.rejected > len(report.errors):
        print(f"... and {report.rejected - len(report.errors)} more rejected row(s), "
              f"all on {settings.topic(CONNECTORS_DLQ)}", file=sys.stderr)
    print(report.summary())
    return report.exit_code
