"""An ERP stock export's valid rows grouped into StockSnapshotBatch records, and their Avro bytes.

`SnapshotBatcher` places each row of a `StockExport` by (partition of `inventory.stock`, location) and
hands out full batches of up to `BATCH_LINES` lines; `encode_batch` writes a batch's record with the
lines spliced in directly. Batching rules and event ids: `erp_stock.py`'s module docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shopstream.codecs.stock_snapshot_batch import StockSnapshotLinesEncoder, snapshot_batch_datum
from shopstream.connectors.base import make_meta
from shopstream.connectors.erp_stock import BATCH_LINES, SOURCE, Row, StockExport
from shopstream.kafka import partition_for
from shopstream.schemas.models import StockSnapshotBatch


@dataclass
class Batch:
    """One StockSnapshotBatch to publish: where it goes, its rows, and what its datum is made of.

    `changed` are the rows the caller marked as changed (`SnapshotBatcher.add`): the ingest records
    only those in its digest once the batch is confirmed."""

    partition: int
    key: bytes
    location: str
    rows: list[Row]
    changed: list[Row]
    meta: dict[str, Any] = field(repr=False)  # EventMeta as an Avro datum
    as_of: datetime

    @property
    def record_name(self) -> str:
        return str(StockSnapshotBatch.AVRO_NAME)

    @property
    def datum(self) -> dict[str, Any]:
        """The Avro datum of the StockSnapshotBatch (a dict per line: the generic form `encode_batch` avoids)."""
        return snapshot_batch_datum(self.head, self.rows)

    @property
    def head(self) -> dict[str, Any]:
        """The datum without its lines (`lines` empty)."""
        return {"meta": self.meta, "location": self.location, "as_of": self.as_of, "lines": []}


class SnapshotBatcher:
    """Groups an export's valid rows into StockSnapshotBatch data per (partition, location).

    `add` returns the batches that became full, `flush` the rest; no pydantic model is built per line
    (a million line models would cost seconds) and no dict either (`encode_batch` writes the lines)."""

    def __init__(self, export: StockExport, partitions: int, max_lines: int = BATCH_LINES) -> None:
        if partitions < 1 or max_lines < 1:
            raise ValueError("partitions and max_lines must be positive")
        self.export = export
        self.partitions = partitions
        self.max_lines = max_lines
        self._open: dict[tuple[int, str], tuple[list[Row], list[Row]]] = {}  # → (rows, changed rows)

    def add(self, row: Row, changed: bool = True) -> list[Batch]:
        """Place the row; `changed` False: its figures are those last published (not in `Batch.changed`)."""
        partition = partition_for(row.sku.encode(), self.partitions)
        slot = (partition, row.location)
        open_rows = self._open.get(slot)
        if open_rows is None:
            open_rows = self._open[slot] = ([], [])
        rows, changed_rows = open_rows
        rows.append(row)
        if changed:
            changed_rows.append(row)
        if len(rows) < self.max_lines:
            return []
        del self._open[slot]
        return [self._batch(partition, row.location, rows, changed_rows)]

    def flush(self) -> list[Batch]:
        out = [self._batch(partition, location, rows, changed)
               for (partition, location), (rows, changed) in self._open.items()]
        self._open.clear()
        return out

    def _batch(self, partition: int, location: str, rows: list[Row], changed: list[Row]) -> Batch:
        export = self.export
        identity = (f"batch:{location}:{export.as_of.isoformat()}:{partition}:{rows[0].sku}:{rows[-1].sku}:"
                    f"{len(rows)}")
        meta = make_meta(source=SOURCE, event_type="StockSnapshotBatch", identity=identity,
                         occurred_at=export.as_of, received_at=export.recorded_at, source_event_id=None,
                         correlation_id=export.correlation_id)
        return Batch(partition=partition, key=rows[0].sku.encode(), location=location, rows=rows, changed=changed,
                     meta=meta.model_dump(mode="python"), as_of=export.as_of)


# ------------------------------------------------------------------------------------------ Avro lines


def encode_batch(batch: Batch, write: Callable[[dict[str, Any]], bytes], lines: StockSnapshotLinesEncoder) -> bytes:
    """The batch's record: `write` (a StockSnapshotBatch datum → bytes, e.g. the serde's framed encoder)
    writes the datum without lines, which ends with the empty array's 0 byte; `lines` (built once, at
    the ingest's start: it checks itself against fastavro) writes the lines directly in that byte's place."""
    return lines.splice(write(batch.head), batch.rows)
