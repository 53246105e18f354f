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

Publishing in bulk (`SnapshotBatcher`, in `erp_batches.py`): the stream processor pays per message, so valid rows travel
as StockSnapshotBatch records of up to `max_lines` lines that share one location and one partition of
`inventory.stock` (the partition murmur2 gives the SKU, as for a single StockSnapshot keyed by it);
the record key is the first line's SKU, which lands on that same partition. The inventory processor
applies each line exactly like a StockSnapshot of that SKU, so per-SKU rules are unchanged.

Event ids: a single StockSnapshot has `make_meta(source="erp", identity=f"{sku}:{location}:{as_of}")`,
a batch `identity=f"batch:{location}:{as_of}:{partition}:{first sku}:{last sku}:{lines}"`, with
`as_of` in UTC at millisecond precision. Batching is deterministic (file order), so re-ingesting the
same file with the same `--as-of` yields the same event ids, and every line is a duplicate downstream
anyway (same as_of, same figures). A corrected file must therefore carry a later as-of time.

Cost (a million-row export is the normal case): a line without a quote character is split on the
delimiter directly, which is exactly what csv.reader makes of it, at a fraction of its cost; only
lines with quotes (and the lines a quoted field spans) go through csv.reader. A row whose fields are
plain ASCII digits is accepted on a short path; everything else takes the full checks. A batch's
lines are written in Avro's binary form directly (`encode_batch`, with `shopstream.codecs.stock_snapshot_batch`,
which checks itself against fastavro when built and refuses to start on any difference).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from shopstream.connectors.base import PayloadError, make_meta
from shopstream.connectors.csv_lines import MAX_QUOTED_LINES, Lines, QuotedLines, RunawayQuote, strip_eol
from shopstream.schemas.models import StockSnapshot
from shopstream.topology import names

SOURCE = "erp"
STOCK_TOPIC = names.INVENTORY_STOCK
DEFAULT_LOCATION = "default"
REQUIRED_COLUMNS = ("sku", "on_hand")
OPTIONAL_COLUMNS = ("location", "safety_stock", "incoming")
DELIMITERS = (",", ";", "\t")
MAX_QUANTITY = 2**31 - 1  # Avro int
BATCH_LINES = 1000  # lines per StockSnapshotBatch: ~30 kB records, far below the broker's 1 MB default
MAX_SKU = 255  # the read API's limit: a longer SKU could be stocked but never looked up

_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: full-width digits are no figure an ERP meant


class ErpFileError(PayloadError):
    """The file as a whole cannot be read as a stock export (no row is published)."""


class RowRejected(PayloadError):
    """A data row was rejected; subclasses name the kind (they become the DLQ error class)."""


class MissingSku(RowRejected):
    pass


class BadQuantity(RowRejected):
    pass


class InvalidSku(RowRejected):
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


class Row(NamedTuple):
    """A valid row: the figures of one SKU at one location.

    A NamedTuple: immutable, and built in less than half a frozen dataclass's time (a million per export)."""

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


class StockExport:
    """A parsed stock export: the header is checked on construction (ErpFileError), rows on iteration."""

    def __init__(self, data: bytes | str, *, as_of: datetime, recorded_at: datetime | None = None) -> None:
        self.as_of = normalize_as_of(as_of)
        self.recorded_at = recorded_at or datetime.now(UTC)
        self._as_of_iso = self.as_of.isoformat()
        self.correlation_id = f"erp:stock:{self._as_of_iso}"
        self._lines = io.StringIO(decode_text(data), newline="")  # lines keep their endings, as written
        header = self._lines.readline()
        if not header.strip():
            raise ErpFileError("empty file: expected a header line with sku and on_hand columns")
        self.header_line = strip_eol(header)
        self.delimiter = detect_delimiter(self.header_line)
        self.columns = _split_header(self.header_line, self.delimiter)
        known = [c for c in self.columns if c]
        twice = sorted({c for c in known if known.count(c) > 1})
        if twice:
            raise ErpFileError(f"header names column(s) {', '.join(twice)} more than once")
        self._index = {name: i for i, name in enumerate(self.columns) if name}

    def __iter__(self) -> Iterator[Row | RowError]:
        lines = Lines(self._lines)
        delimiter = self.delimiter
        quoted = QuotedLines(lines)
        reader = csv.reader(quoted, delimiter=delimiter)
        longest = csv.field_size_limit()  # a longer line may hold a field csv.reader refuses
        width = len(self.columns)
        index = self._index
        sku_at, on_hand_at = index["sku"], index["on_hand"]
        location_at, safety_at, incoming_at = index.get("location"), index.get("safety_stock"), index.get("incoming")
        # First line of each SKU, per location: str keys and int values only, so the cyclic GC
        # leaves these dicts alone. Keyed by (sku, location) tuples, the one dict was put back under
        # GC tracking by every new key and traversed whole (1M entries) by every young collection:
        # GC time in a 1M-row ingest fell from ~6 s to ~2 s.
        seen: dict[str, dict[str, int]] = {}
        line_number = 1  # the header
        for line in lines:
            line_number += 1
            if '"' in line or len(line) > longest:
                start = line_number
                quoted.push(line)
                problem = None
                try:
                    fields = next(reader)
                except csv.Error as exc:  # e.g. a field beyond the limit; the reader carries on with the next line
                    problem = f"unreadable CSV: {exc}"
                except (RunawayQuote, StopIteration):  # unterminated quote: reject this line, read on after it
                    problem = f"unterminated quote (no closing \" within {MAX_QUOTED_LINES} lines)"
                    lines.give_back(quoted.taken[1:])
                    del quoted.taken[1:]
                raw = strip_eol("".join(quoted.taken))
                line_number += len(quoted.taken) - 1
                quoted.taken.clear()
                if problem is not None:
                    yield RowError(start, problem, raw, WrongColumnCount)
                    continue
                item = self._row(start, raw, fields, seen)
                if item is not None:
                    yield item
                continue
            raw = line.rstrip("\r\n")
            fields = raw.split(delimiter)
            # The short path: the right number of fields, plain ASCII, a SKU, quantities that are
            # digits only (or empty where allowed) and short enough to be valid, and a new SKU+location.
            # Anything else (blank rows, errors, non-ASCII text) takes `_row`'s full checks.
            if len(fields) == width and raw.isascii():
                sku = fields[sku_at].strip()
                on_hand = fields[on_hand_at].strip()
                safety = fields[safety_at].strip() if safety_at is not None else ""
                incoming = fields[incoming_at].strip() if incoming_at is not None else ""
                if (sku and len(sku) <= MAX_SKU and on_hand.isdigit() and len(on_hand) < 10
                        and (not safety or (safety.isdigit() and len(safety) < 10))
                        and (not incoming or (incoming.isdigit() and len(incoming) < 10))):
                    location = (fields[location_at].strip() if location_at is not None else "") or DEFAULT_LOCATION
                    skus = seen.get(location)
                    if skus is None:
                        skus = seen[location] = {}
                    if skus.setdefault(sku, line_number) == line_number:
                        yield Row(line_number, raw, sku, location, int(on_hand), int(safety) if safety else None,
                                  int(incoming) if incoming else None)
                        continue
            item = self._row(line_number, raw, fields, seen)
            if item is not None:
                yield item

    def _row(self, line_number: int, raw: str, fields: list[str],
             seen: dict[str, dict[str, int]]) -> Row | RowError | None:
        """The row with every check (None: a blank row, skipped)."""
        if not any(f.strip() for f in fields):
            return None
        if len(fields) != len(self.columns):
            return RowError(line_number, f"expected {len(self.columns)} columns, found {len(fields)}", raw,
                            WrongColumnCount)

        index = self._index
        sku = fields[index["sku"]].strip()
        if not sku:
            return RowError(line_number, "missing SKU", raw, MissingSku)
        if len(sku) > MAX_SKU:
            return RowError(line_number, f"SKU longer than {MAX_SKU} characters", raw, InvalidSku, sku[:MAX_SKU])
        i = index.get("location")
        location = (fields[i].strip() if i is not None else "") or DEFAULT_LOCATION
        first = seen.setdefault(location, {}).setdefault(sku, line_number)
        if first != line_number:
            return RowError(line_number, f"duplicate SKU {sku!r} at location {location!r}: "
                                         f"first seen on line {first}", raw, DuplicateRow, sku)
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
