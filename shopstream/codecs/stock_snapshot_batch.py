"""The `lines` of a StockSnapshotBatch written directly for the ERP ingest, the same bytes as fastavro.

fastavro's generic writer took ~5 µs per line (a dict per line, union branches resolved per value);
written here a line costs well under 1 µs, and a daily export has a million lines. The rest of the
record (meta, location, as_of) is written once per batch by the serde; the record without lines ends
with the empty array's 0 byte, which the directly written lines replace (`splice`).

`StockSnapshotLinesEncoder()` checks itself on samples when built (`selfcheck.verify_writer`) and
raises `CodecMismatch` when schemas/StockSnapshotBatch.avsc or StockSnapshotLine.avsc changed the
bytes; tests/unit/test_snapshot_batches.py checks the bytes as a hypothesis property. Input: any
objects with the attributes of the ERP export's `Row` (protocol below).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple, Protocol

from shopstream import schemas
from shopstream.codecs.avro import SMALL, SMALL_LIMIT, avro_int, avro_long
from shopstream.codecs.selfcheck import fastavro_body, verify_writer
from shopstream.schemas.models import EventMeta, StockSnapshotBatch

__all__ = ["STOCK_SNAPSHOT_BATCH", "StockSnapshotLinesEncoder", "snapshot_batch_datum"]

STOCK_SNAPSHOT_BATCH: Final = str(StockSnapshotBatch.AVRO_NAME)


class LineLike(Protocol):
    """What the writer reads of a line (the ERP export's `Row`)."""

    @property
    def sku(self) -> str: ...
    @property
    def on_hand(self) -> int: ...
    @property
    def safety_stock(self) -> int | None: ...
    @property
    def incoming(self) -> int | None: ...


def snapshot_batch_datum(head: dict[str, Any], rows: Sequence[LineLike]) -> dict[str, Any]:
    """The whole StockSnapshotBatch datum: `head` (meta, location, as_of) with a dict per line (the reference)."""
    return {**head, "lines": [{"sku": r.sku, "on_hand": r.on_hand, "safety_stock": r.safety_stock,
                               "incoming": r.incoming} for r in rows]}


@functools.lru_cache(maxsize=65536)  # stock figures repeat a lot across an export
def _figures(on_hand: int, safety_stock: int | None, incoming: int | None) -> bytes:
    """on_hand (int), safety_stock and incoming (["null", "int"] unions: branch index, then the value)."""
    return b"".join((avro_int(on_hand),
                     b"\x00" if safety_stock is None else b"\x02" + avro_int(safety_stock),
                     b"\x00" if incoming is None else b"\x02" + avro_int(incoming)))


class StockSnapshotLinesEncoder:
    """The `lines` array of a StockSnapshotBatch as fastavro writes it; see the module."""

    __slots__ = ()

    def __init__(self, schema: Any = None) -> None:
        schema = schemas.parsed_schema(STOCK_SNAPSHOT_BATCH) if schema is None else schema
        samples = []
        for head, rows in _samples():
            spliced = self.splice(fastavro_body(schema, {**head, "lines": []}), rows)
            samples.append((snapshot_batch_datum(head, rows), spliced))
        verify_writer(f"{__name__}.StockSnapshotLinesEncoder", STOCK_SNAPSHOT_BATCH, schema, samples)

    def splice(self, head: bytes, rows: Sequence[LineLike]) -> bytes:
        """The record `head` (written with `lines` empty, so it ends with the array's 0 byte) with `rows` as lines."""
        if not head.endswith(b"\x00"):
            raise ValueError("the record without lines does not end with the empty array's 0 byte")
        return head[:-1] + self.lines(rows)

    def lines(self, rows: Sequence[LineLike]) -> bytes:
        """The array: one block (item count, items), then the 0 that ends it; just the 0 when empty."""
        if not rows:
            return b"\x00"
        small, limit, figures = SMALL, SMALL_LIMIT, _figures
        n = len(rows)
        parts = [small[n] if n < limit else avro_long(n)]
        append = parts.append
        for row in rows:
            sku = row.sku.encode()
            n = len(sku)
            append(small[n] if n < limit else avro_long(n))
            append(sku)
            append(figures(row.on_hand, row.safety_stock, row.incoming))
        append(b"\x00")
        return b"".join(parts)


class _Line(NamedTuple):
    sku: str
    on_hand: int
    safety_stock: int | None
    incoming: int | None


def _samples() -> list[tuple[dict[str, Any], list[_Line]]]:
    """Batches with every union branch, edge figures, non-ASCII and long SKUs, and a multi-byte line count."""
    as_of = datetime(2026, 11, 23, 6, 0, 0, 123000, tzinfo=UTC)
    meta = EventMeta(event_id="0b6f4c1e-3c1a-4d7e-9a51-8e4b6c2d7f30", event_type="StockSnapshotBatch",
                     occurred_at=as_of, recorded_at=as_of, source="erp", correlation_id="c").model_dump(mode="python")
    head = {"meta": meta, "location": "W", "as_of": as_of}
    return [
        (head, [_Line("A", 0, None, None)]),
        (head, [_Line("SKU-0000001", 12, 3, None), _Line("Größe-XL/ü", 2**31 - 1, None, 7),
                _Line("X" * 300, 64, 0, 2**31 - 1)]),
        (head, [_Line(f"S{i}", i * 977, i if i % 2 else None, i * 31 if i % 3 else None) for i in range(200)]),
    ]
