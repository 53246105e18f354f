"""`shopstream ingest pim FILE`: a PIM export (CSV, JSON, JSON Lines) → ProductUpserted / ProductDeleted.

The I/O around the pure parser in `pim_file.py`: every valid row becomes its canonical events
(`pim.generic_outgoing`, source `pim`, so the PIM's mastership applies) on `catalog.products`, keyed by
SKU, published through the one producer factory (murmur2, idempotent, acks=all) with up to `WINDOW`
writes in flight, and counted once the broker confirmed it. A rejected row is reported on stderr with
its line number (the first `SHOWN_ERRORS`) and parked on `connectors.dlq` through the DLQ writer: value
= the raw row, key `pim`, original topic `file:pim`, stage `connector`, error class the rejection kind,
`shopstream.ingest.file` and `shopstream.ingest.line` headers. A progress counter is drawn on a
terminal. Exit codes: 0 every row published, 1 a row rejected or a write not confirmed (the rest is
published; re-running the same file is safe: event ids derive from SKU and `updated_at` — give rows an
`updated_at`, the default is the run's time), 2 the file is unusable (nothing published).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shopstream.config import Settings
from shopstream.connectors.base import PayloadError
from shopstream.connectors.erp_stock import ErpFileError
from shopstream.connectors.ingest import HEADER_PREFIX, IngestAborted, _Progress, read_input
from shopstream.connectors.pim import generic_outgoing
from shopstream.connectors.pim_file import PimFileError, RowError, read_pim_file
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.kafka import AsyncProducer, DeliveryError
from shopstream.serde import AvroSerde, RegistryUnavailable, SerdeError, make_registry_client
from shopstream.topology import CONNECTORS_DLQ, load_topology_for

ORIGINAL_TOPIC, DLQ_KEY, PROCESSOR, SOURCE = "file:pim", b"pim", "ingest:pim", "pim"
WINDOW = 2000
SHOWN_ERRORS = 20


class RowRejected(Exception):
    """A PIM file row was rejected (the DLQ's error class names the kind)."""


def _rejection(error: RowError) -> Exception:
    # The DLQ header names the class: one subclass per kind, made once.
    kind = _KINDS.setdefault(error.kind, type(error.kind, (RowRejected,), {}))
    return kind(f"line {error.line_number}: {error.reason}")


_KINDS: dict[str, type[RowRejected]] = {}


@dataclass
class PimReport:
    """What an ingest did."""

    file: str
    read: int = 0
    published: int = 0
    rejected: int = 0
    failed: int = 0
    events: int = 0
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the operator."""
        text = f"pim {self.file}: read {self.read}, published {self.published} ({self.events} events), " \
               f"rejected {self.rejected}"
        return text + (f", failed {self.failed} (not confirmed by the broker)" if self.failed else "")

    @property
    def exit_code(self) -> int:
        """0 all published, 1 something rejected or unconfirmed."""
        return 1 if self.rejected or self.failed else 0


async def _publish_all(settings: Settings, data: bytes, report: PimReport, progress: _Progress | None) -> None:
    now = datetime.now(UTC)
    rows = read_pim_file(data, now.isoformat())  # PimFileError before anything is sent
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    producer = AsyncProducer(settings)
    writer = DeadLetterWriter(producer, settings.topic(PROCESSOR),
                              load_topology_for(settings).dlq_routes(settings.topic_prefix))
    in_flight: set[asyncio.Task[tuple[str, int]]] = set()
    file_header = (HEADER_PREFIX + "file", report.file.encode())

    async def publish(line: int, outgoing: list[tuple[str, bytes, bytes]]) -> tuple[str, int]:
        try:
            for topic, key, value in outgoing:
                await producer.publish(topic, key, value, [("shopstream.source", SOURCE.encode()), file_header,
                                                           (HEADER_PREFIX + "line", str(line).encode())])
        except DeliveryError:
            return "failed", len(outgoing)
        return "published", len(outgoing)

    async def park(error: RowError) -> tuple[str, int]:
        record = FailedRecord(topic=ORIGINAL_TOPIC, key=DLQ_KEY, value=error.raw.encode(),
                              headers=[file_header, (HEADER_PREFIX + "line", str(error.line_number).encode())],
                              timestamp_ms=int(time.time() * 1000))
        try:
            await writer.park(record, Failure(error=_rejection(error), stage="connector"),
                              to_topic=settings.topic(CONNECTORS_DLQ))
            return "parked", 0
        except DeliveryError:
            return "failed", 0

    def reject(error: RowError) -> None:
        report.rejected += 1
        if len(report.errors) < SHOWN_ERRORS:
            report.errors.append(error)
        in_flight.add(asyncio.create_task(park(error)))

    async def settle(wait_for_all: bool) -> None:
        nonlocal in_flight
        if not in_flight:
            return
        done, in_flight = await asyncio.wait(
            in_flight, return_when=asyncio.ALL_COMPLETED if wait_for_all else asyncio.FIRST_COMPLETED)
        for task in done:
            outcome, events = task.result()
            if outcome == "published":
                report.published += 1
                report.events += events
            elif outcome == "failed":
                report.failed += 1

    try:
        for line, item in rows:
            report.read += 1
            if isinstance(item, RowError):
                reject(item)
            else:
                try:
                    outgoing = [(topic, o.key.encode(), serde.encode(topic, o.record))
                                for o in generic_outgoing(item, now, SOURCE) if (topic := settings.topic(o.topic))]
                except PayloadError as exc:
                    reject(RowError(line, str(exc), item.model_dump_json(), "InvalidRow"))
                    continue
                except RegistryUnavailable as exc:
                    raise IngestAborted(f"schema registry unavailable: {exc}") from exc
                except SerdeError as exc:
                    raise IngestAborted(f"sku {item.sku} cannot be encoded: {exc}") from exc
                in_flight.add(asyncio.create_task(publish(line, outgoing)))
            while len(in_flight) >= WINDOW:
                await settle(wait_for_all=False)
            if progress is not None:
                progress(report)  # type: ignore[arg-type]  # duck-typed: .read, .rejected
        await settle(wait_for_all=True)
    finally:
        for task in in_flight:
            task.cancel()
        await asyncio.to_thread(producer.close)


def run_pim(settings: Settings, path: str) -> int:
    """The `shopstream ingest pim` command: returns the exit code (0 / 1 / 2)."""
    started = time.monotonic()
    report = PimReport(file=path)
    progress = _Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        data = read_input(path)
        asyncio.run(_publish_all(settings, data, report, progress))
    except (PimFileError, ErpFileError) as exc:
        print(f"shopstream ingest pim: {exc}", file=sys.stderr)
        return 2
    except IngestAborted as exc:
        print(f"shopstream ingest pim: {exc}; re-run the same file (same event ids)", file=sys.stderr)
        return 1
    finally:
        if progress is not None:
            progress.clear()
    for error in report.errors:
        print(f"{path}:{error.line_number}: {error.reason}", file=sys.stderr)
    if report.rejected > len(report.errors):
        print(f"... and {report.rejected - len(report.errors)} more rejected row(s), all on "
              f"{settings.topic(CONNECTORS_DLQ)}", file=sys.stderr)
    elapsed = time.monotonic() - started
    print(f"{report.summary()} in {elapsed:.1f} s ({report.read / elapsed if elapsed else 0:.0f} products/s)")
    return report.exit_code
