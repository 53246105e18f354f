"""Bulk ERP snapshots: murmur2 placement, StockSnapshotBatch grouping and encoding (pure, no broker)."""

from __future__ import annotations

import copy
import io
from datetime import UTC, datetime

import fastavro
import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from shopstream import schemas
from shopstream.codecs.selfcheck import CodecMismatch
from shopstream.codecs.stock_snapshot_batch import StockSnapshotLinesEncoder
from shopstream.connectors.erp_batches import SnapshotBatcher, encode_batch
from shopstream.connectors.erp_stock import MAX_QUANTITY, Row, StockExport
from shopstream.kafka import murmur2, partition_for
from shopstream.schemas import from_avro
from shopstream.schemas.models import StockSnapshotBatch

AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
RECORDED = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)


@given(st.binary(max_size=64))
def test_murmur2_equals_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_partition_for_matches_the_java_client_examples() -> None:
    # aiokafka's DefaultPartitioner is the reference the Faust side uses.
    for key in (b"", b"a", b"SKU-0000001", "Größe-XL".encode()):
        assert partition_for(key, 4) == (aiokafka_murmur2(key) & 0x7FFFFFFF) % 4


def export(text: str) -> StockExport:
    return StockExport(text, as_of=AS_OF, recorded_at=RECORDED)


def rows(ex: StockExport) -> list[Row]:
    out = [item for item in ex if isinstance(item, Row)]
    assert out
    return out


def test_batches_group_by_partition_and_location_and_keep_file_order() -> None:
    text = "sku,on_hand,location,safety_stock\n" + "".join(
        f"SKU-{i},{i},{'WH1' if i % 3 else 'WH2'},{i % 2 or ''}\n" for i in range(50))
    ex = export(text)
    batcher = SnapshotBatcher(ex, partitions=4, max_lines=7)
    batches = [b for row in rows(ex) for b in batcher.add(row)] + batcher.flush()
    assert sum(len(b.rows) for b in batches) == 50
    for batch in batches:
        assert 1 <= len(batch.rows) <= 7
        assert {partition_for(r.sku.encode(), 4) for r in batch.rows} == {batch.partition}
        assert {r.location for r in batch.rows} == {batch.datum["location"]}
        assert batch.key == batch.rows[0].sku.encode()
        assert partition_for(batch.key, 4) == batch.partition
        lines = [r.line_number for r in batch.rows]
        assert lines == sorted(lines)
        record = from_avro(batch.record_name, batch.datum)  # the datum is a valid StockSnapshotBatch
        assert isinstance(record, StockSnapshotBatch)
        assert record.as_of == AS_OF and record.meta.event_type == "StockSnapshotBatch"
        assert [(line.sku, line.on_hand, line.safety_stock) for line in record.lines] == [
            (r.sku, r.on_hand, r.safety_stock) for r in batch.rows]
    # Only the last batch of each (partition, location) may be short.
    full = [b for b in batches if len(b.rows) == 7]
    assert len(batches) - len(full) <= len({(b.partition, b.datum["location"]) for b in batches})


def test_batch_ids_are_deterministic_and_distinct() -> None:
    text = "sku,on_hand\n" + "".join(f"SKU-{i},{i}\n" for i in range(30))

    def ids() -> list[str]:
        ex = export(text)
        batcher = SnapshotBatcher(ex, partitions=4, max_lines=5)
        return [b.datum["meta"]["event_id"] for row in rows(ex) for b in batcher.add(row)] + [
            b.datum["meta"]["event_id"] for b in batcher.flush()]

    first = ids()
    assert first == ids()
    assert len(set(first)) == len(first)


def test_batcher_refuses_nonsense_sizes() -> None:
    with pytest.raises(ValueError):
        SnapshotBatcher(export("sku,on_hand\nA,1\n"), partitions=0)
    with pytest.raises(ValueError):
        SnapshotBatcher(export("sku,on_hand\nA,1\n"), partitions=4, max_lines=0)


def _fastavro_bytes(datum: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.parsed_schema(str(StockSnapshotBatch.AVRO_NAME)), datum)
    return buf.getvalue()


LINES = StockSnapshotLinesEncoder()  # checks itself against fastavro, as the ingest does at its start
_quantity = st.integers(min_value=0, max_value=MAX_QUANTITY)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=40), _quantity, st.none() | _quantity,
                          st.none() | _quantity), min_size=1, max_size=1100))
def test_directly_written_lines_are_fastavros_bytes(lines: list[tuple[str, int, int | None, int | None]]) -> None:
    rows = [Row(i + 2, "", sku, "WH1", *figures) for i, (sku, *figures) in enumerate(lines)]
    batches = []
    batcher = SnapshotBatcher(export("sku,on_hand\nA,1\n"), partitions=1, max_lines=len(rows))
    for row in rows:
        batches += batcher.add(row)
    (batch,) = batches
    assert encode_batch(batch, _fastavro_bytes, LINES) == _fastavro_bytes(batch.datum)


def test_lines_writer_refuses_a_schema_that_changes_the_bytes() -> None:
    schema = copy.deepcopy(schemas.schema_for(str(StockSnapshotBatch.AVRO_NAME)))
    line = schema["fields"][-1]["type"]["items"]
    line["fields"][1]["type"] = ["null", "int"]  # on_hand becomes optional: a branch byte per line
    with pytest.raises(CodecMismatch, match=r"StockSnapshotBatch .*refusing to start"):
        StockSnapshotLinesEncoder(fastavro.parse_schema(schema, named_schemas={}))


def test_batches_carry_the_rows_marked_changed() -> None:
    ex = export("sku,on_hand\n" + "".join(f"SKU-{i},{i}\n" for i in range(10)))
    batcher = SnapshotBatcher(ex, partitions=1, max_lines=4)
    batches = [b for row in rows(ex) for b in batcher.add(row, changed=row.on_hand % 3 != 0)] + batcher.flush()
    assert [[r.on_hand for r in b.rows] for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [[r.on_hand for r in b.changed] for b in batches] == [[1, 2], [4, 5, 7], [8]]
