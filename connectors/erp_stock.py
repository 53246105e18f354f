"""ERP/WaWi stock export → StockSnapshot events (pure: parses the bytes it is given, no other I/O).

The file (what `shopstream ingest erp-stock FILE` reads):

- CSV with a header line, UTF-8 with or without a BOM. The delimiter (`,`, `;` or tab) is decided from
  the header line alone: the candidate whose split of the header contains the required columns
  (csv.Sniffer guesses from the data and is fooled by decimal commas and numbers).
- Columns, matched case-insensitively after trimming: `sku` and `on_hand` required; `location`,
  `safety_stock`, `incoming` optional. Other columns (descriptions, EANs, ...) are ignored. A file
  without the required columns, with a column named twice, empty or not UTF-8 is a file-level
  error (`ErpFileError`): nothing is published.
- A missing or empty `location` means `DEFAULT_LOCATION` ("default"), the single-warehouse case.
- Quantities are non-negative whole numbers (`12`, `+12`; surrounding spaces are fine). `12.0`,
  `1.200`, `12,5` and `-3` are rejected: a German export's `1.200` could be 1200 or 1.2, and a
  guessed stock figure is worse than a rejected row. Empty `safety_stock` / `incoming` = not reported.
- Blank lines and rows whose every field is empty (spreadsheet exports end with `;;;` lines) are
  skipped and not counted as read.

Per data row `StockExport` yields a `StockSnapshot` or a `RowError` (line number, reason, raw line):
missing SKU, wrong column count, non-integer / negative / too large quantity, or a SKU+location seen
before in the file (the error names the line of the first occurrence). Once a row has a SKU, its
SKU+location counts as seen even if the row is rejected for its quantities: the file then holds two
figures for that stock and neither is guessed to be the right one.

Line numbers are physical lines of the file, the header being line 1; a quoted field spanning lines
reports the line the row starts on.

Publishing in bulk (`SnapshotBatcher`): the stream processor pays per message, so valid rows travel
as StockSnapshotBatch records of up to `max_lines` lines that share one location and one partition of
`inventory.stock` (the partition murmur2 gives the SKU, as for a single StockSnapshot keyed by it);
the record key is the first line's SKU, which lands on that same partition. The inventory processor
applies each line exactly like a StockSnapshot of that SKU, so per-SKU rules are unchanged.

Event ids: a single StockSnapshot has `make_meta(source="erp", identity=f"{sku}:{location}:{as_of}")`,
a batch `identity=f"batch:{location}:{as_of}:{partition}:{first sku}:{last sku}:{lines}"`, with
`as_of` in UTC at millisecond precision. Batching is deterministic (file order), so re-ingesting the
same file with the same `--as-of` yields the same event ids, and every line is a duplicate downstream
anyway (same as_of, same figures). A corrected file must therefore carry a later as-of time.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shopstream.connectors.base import PayloadError, make_meta
from shopstream.kafka import partition_for
from shopstream.schemas.models import StockSnapshot, StockSnapshotBatch

SOURCE = "erp"
STOCK_TOPIC = "inventory.stock"
DEFAULT_LOCATION = "default"
REQUIRED_COLUMNS = ("sku", "on_hand")
OPTIONAL_COLUMNS = ("location", "safety_stock", "incoming")
DELIMITERS = (",", ";", "\t")
MAX_QUANTITY = 2**31 - 1  # Avro int
BATCH_LINES = 1000  # lines per StockSnapshotBatch: ~30 kB records, far below the broker's 1 MB default

_INTEGER = re.compile(r"[+-]?\d+")


class ErpFileError(PayloadError):
    """The file as a whole cannot be read as a stock export (no row is published)."""


class RowRejected(PayloadError):
    """A data row was rejected; subclasses name the kind (they become the DLQ error class)."""


class MissingSku(RowRejected):
    pass


class BadQuantity(RowRejected):
    pass


class DuplicateRow(RowRejected):
    pass


class WrongColumnCount(RowRejected):
    pass


@dataclass(frozen=True)
class RowError:
    """A rejected data row: where, why, and the row exactly as it was in the file (no line ending)."""

    line_number: int
    reason: str
    raw_line: str
    kind: type[RowRejected] = RowRejected
    sku: str | None = None

    def exception(self) -> RowRejected:
        return self.kind(f"line {self.line_number}: {self.reason}")


@dataclass(frozen=True, slots=True)
class Row:
    """A valid row: the figures of one SKU at one location (plain values: a million of these are cheap)."""

    line_number: int
    raw_line: str
    sku: str
    location: str
    on_hand: int
    safety_stock: int | None
    incoming: int | None


def decode_text(data: bytes | str) -> str:
    """The file's text: UTF-8 with an optional BOM; ErpFileError otherwise."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ErpFileError(f"not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                           "export the file as UTF-8") from None


def normalize_as_of(as_of: datetime) -> datetime:
    """`as_of` in UTC at millisecond precision (what the Avro timestamp keeps); naive times are refused."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must carry a time zone")
    as_of = as_of.astimezone(UTC)
    return as_of.replace(microsecond=as_of.microsecond // 1000 * 1000)


def _split_header(line: str, delimiter: str) -> list[str]:
    return [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter), [])]


def detect_delimiter(header_line: str) -> str:
    """The delimiter that splits the header into the required columns; ErpFileError naming what is missing."""
    best: tuple[int, int, str] | None = None  # (known columns, columns, delimiter): for the error message
    for delimiter in DELIMITERS:
        names = _split_header(header_line, delimiter)
        if all(c in names for c in REQUIRED_COLUMNS):
            return delimiter
        score = (sum(c in names for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)), len(names), delimiter)
        if best is None or score[:2] > best[:2]:
            best = score
    assert best is not None
    names = _split_header(header_line, best[2])
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    raise ErpFileError(f"header line lacks required column(s) {', '.join(missing)} "
                       f"(found {', '.join(repr(n) for n in names) or 'nothing'}; "
                       f"expected {', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}, "
                       "separated by ',' or ';')")


class _LineTracker:
    """Feeds csv.reader physical lines and remembers them, so each record's raw text can be kept."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text, newline="")
        self.consumed: list[str] = []

    def __iter__(self) -> _LineTracker:
        return self

    def __next__(self) -> str:
        line = self._lines.readline()
        if not line:
            raise StopIteration
        self.consumed.append(line)
        return line


def _strip_eol(text: str) -> str:
    return text.rstrip("\r\n")


class StockExport:
    """A parsed stock export: the header is checked on construction (ErpFileError), rows on iteration."""

    def __init__(self, data: bytes | str, *, as_of: datetime, recorded_at: datetime | None = None) -> None:
        self.as_of = normalize_as_of(as_of)
        self.recorded_at = recorded_at or datetime.now(UTC)
        self._as_of_iso = self.as_of.isoformat()
        self.correlation_id = f"erp:stock:{self._as_of_iso}"
        self._tracker = _LineTracker(decode_text(data))
        header = next(self._tracker, None)
        if header is None or not header.strip():
            raise ErpFileError("empty file: expected a header line with sku and on_hand columns")
        self.header_line = _strip_eol(header)
        self.delimiter = detect_delimiter(self.header_line)
        self.columns = _split_header(self.header_line, self.delimiter)
        known = [c for c in self.columns if c]
        twice = sorted({c for c in known if known.count(c) > 1})
        if twice:
            raise ErpFileError(f"header names column(s) {', '.join(twice)} more than once")
        self._index = {name: i for i, name in enumerate(self.columns) if name}

    def __iter__(self) -> Iterator[Row | RowError]:
        reader = csv.reader(self._tracker, delimiter=self.delimiter)
        seen: dict[tuple[str, str], int] = {}
        while True:
            start = len(self._tracker.consumed)
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. a NUL byte; the reader carries on with the next line
                raw = _strip_eol("".join(self._tracker.consumed[start:]))
                yield RowError(start + 1, f"unreadable CSV: {exc}", raw, WrongColumnCount)
                continue
            line_number = start + 1
            raw = _strip_eol("".join(self._tracker.consumed[start:]))
            if not any(f.strip() for f in fields):
                continue
            yield self._row(line_number, raw, fields, seen)

    def _row(self, line_number: int, raw: str, fields: list[str],
             seen: dict[tuple[str, str], int]) -> Row | RowError:
        if len(fields) != len(self.columns):
            return RowError(line_number, f"expected {len(self.columns)} columns, found {len(fields)}", raw,
                            WrongColumnCount)

        index = self._index
        sku = fields[index["sku"]].strip()
        if not sku:
            return RowError(line_number, "missing SKU", raw, MissingSku)
        i = index.get("location")
        location = (fields[i].strip() if i is not None else "") or DEFAULT_LOCATION
        first = seen.get((sku, location))
        if first is not None:
            return RowError(line_number, f"duplicate SKU {sku!r} at location {location!r}: "
                                         f"first seen on line {first}", raw, DuplicateRow, sku)
        seen[(sku, location)] = line_number
        quantities: list[int | None] = []
        for name in ("on_hand", "safety_stock", "incoming"):
            i = index.get(name)
            value = fields[i].strip() if i is not None else ""
            if not value and name != "on_hand":
                quantities.append(None)
            elif value.isascii() and value.isdigit() and len(value) < 10:  # the common case, checked cheaply
                quantities.append(int(value))
            else:
                problem = _quantity_problem(name, value)
                if problem:
                    return RowError(line_number, problem, raw, BadQuantity, sku)
                quantities.append(int(value))
        on_hand, safety_stock, incoming = quantities
        assert on_hand is not None
        return Row(line_number, raw, sku, location, on_hand, safety_stock, incoming)

    def snapshot(self, row: Row) -> StockSnapshot:
        """The StockSnapshot event of one row (the per-SKU form; bulk publishing uses `SnapshotBatcher`)."""
        meta = make_meta(source=SOURCE, event_type="StockSnapshot",
                         identity=f"{row.sku}:{row.location}:{self._as_of_iso}", occurred_at=self.as_of,
                         received_at=self.recorded_at, source_event_id=None, correlation_id=self.correlation_id)
        return StockSnapshot(meta=meta, sku=row.sku, location=row.location, on_hand=row.on_hand,
                             safety_stock=row.safety_stock, incoming=row.incoming, as_of=self.as_of)


def _quantity_problem(name: str, value: str) -> str | None:
    if not value:
        return f"missing {name}"
    if not _INTEGER.fullmatch(value):
        return f"{name} is not a whole number: {value!r}"
    number = int(value)
    if number < 0:
        return f"{name} is negative: {value!r}"
    if number > MAX_QUANTITY:
        return f"{name} is too large: {value!r}"
    return None


def parse_stock_export(data: bytes | str, *, as_of: datetime,
                       recorded_at: datetime | None = None) -> Iterator[StockSnapshot | RowError]:
    """Convenience: the header is checked at once (ErpFileError), then a StockSnapshot or RowError per row."""
    export = StockExport(data, as_of=as_of, recorded_at=recorded_at)
    return (export.snapshot(item) if isinstance(item, Row) else item for item in export)


@dataclass
class Batch:
    """One StockSnapshotBatch to publish: where it goes, its rows, and its Avro datum."""

    partition: int
    key: bytes
    rows: list[Row]
    datum: dict[str, Any] = field(repr=False)

    @property
    def record_name(self) -> str:
        return str(StockSnapshotBatch.AVRO_NAME)


class SnapshotBatcher:
    """Groups an export's valid rows into StockSnapshotBatch data per (partition, location).

    `add` returns the batches that became full, `flush` the rest; the datum is the Avro dict of a
    StockSnapshotBatch (built directly: a million pydantic line models would cost seconds)."""

    def __init__(self, export: StockExport, partitions: int, max_lines: int = BATCH_LINES) -> None:
        if partitions < 1 or max_lines < 1:
            raise ValueError("partitions and max_lines must be positive")
        self.export = export
        self.partitions = partitions
        self.max_lines = max_lines
        self._open: dict[tuple[int, str], list[Row]] = {}

    def add(self, row: Row) -> list[Batch]:
        partition = partition_for(row.sku.encode(), self.partitions)
        rows = self._open.setdefault((partition, row.location), [])
        rows.append(row)
        if len(rows) < self.max_lines:
            return []
        del self._open[(partition, row.location)]
        return [self._batch(partition, row.location, rows)]

    def flush(self) -> list[Batch]:
        out = [self._batch(partition, location, rows) for (partition, location), rows in self._open.items()]
        self._open.clear()
        return out

    def _batch(self, partition: int, location: str, rows: list[Row]) -> Batch:
        export = self.export
        identity = (f"batch:{location}:{export.as_of.isoformat()}:{partition}:{rows[0].sku}:{rows[-1].sku}:"
                    f"{len(rows)}")
        meta = make_meta(source=SOURCE, event_type="StockSnapshotBatch", identity=identity,
                         occurred_at=export.as_of, received_at=export.recorded_at, source_event_id=None,
                         correlation_id=export.correlation_id)
        datum = {"meta": meta.model_dump(mode="python"), "location": location, "as_of": export.as_of,
                 "lines": [{"sku": r.sku, "on_hand": r.on_hand, "safety_stock": r.safety_stock,
                            "incoming": r.incoming} for r in rows]}
        return Batch(partition=partition, key=rows[0].sku.encode(), rows=rows, datum=datum)
