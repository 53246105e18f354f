"""The shared Avro primitives, the SyncShopStock writer and the self-check policy, byte for byte against fastavro."""

from __future__ import annotations

import copy
import json
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import fastavro
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shopstream import schemas
from shopstream.codecs.avro import (
    avro_int,
    avro_long,
    avro_optional_string,
    avro_string,
    event_uuid5,
    frame,
    timestamp_millis,
)
from shopstream.codecs.selfcheck import CodecMismatch, fastavro_body, verify_writer
from shopstream.codecs.stock_snapshot_batch import StockSnapshotLinesEncoder
from shopstream.codecs.sync_shop_stock import SYNC_SHOP_STOCK, SyncShopStockEncoder, sync_shop_stock_datum
from shopstream.connectors.erp_stock import Row
from shopstream.processors.inventory.shop_sync import ShopStockCommand
from shopstream.processors.inventory.shop_sync_worker import COMMAND_NS, SOURCE, AtpChange
from shopstream.serde import AvroSerde, unframe

INT = st.integers(-(2**31), 2**31 - 1)
LONG = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=40)


def _body(avro_type: Any, value: Any) -> bytes:
    return fastavro_body(fastavro.parse_schema(avro_type), value)


# --- primitives ---------------------------------------------------------------------------------------


@given(LONG)
@example(-8193)
@example(8192)
def test_avro_long_is_fastavros(n: int) -> None:
    assert avro_long(n) == _body("long", n)


@given(INT)
def test_avro_int_is_fastavros(n: int) -> None:
    assert avro_int(n) == _body("int", n)


@pytest.mark.parametrize(("write", "n"), [(avro_int, 2**31), (avro_int, -(2**31) - 1), (avro_long, 2**63)])
def test_out_of_range_figures_are_refused(write: Any, n: int) -> None:
    with pytest.raises(ValueError, match="outside the Avro"):
        write(n)


@given(TEXT | st.integers(8190, 9000).map(lambda n: "é" * n))  # lengths past the small-value table too
def test_avro_string_is_fastavros(text: str) -> None:
    assert avro_string(text) == _body("string", text)


@given(st.none() | TEXT)
def test_avro_optional_string_is_fastavros(text: str | None) -> None:
    assert avro_optional_string(text) == _body(["null", "string"], text)


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])))
def test_timestamp_millis_is_fastavros(value: datetime) -> None:
    assert timestamp_millis(value) == _body({"type": "long", "logicalType": "timestamp-millis"}, value)


def test_frame_is_what_the_serde_reads() -> None:
    assert frame(4242) == struct.pack(">bI", 0, 4242)
    assert unframe(frame(4242) + b"body") == (4242, b"body")
    for bad in (-1, 2**32):
        with pytest.raises(ValueError, match="schema id"):
            frame(bad)


@given(namespace=st.uuids(), name=st.text())
def test_event_uuid5_is_uuid5(namespace: uuid.UUID, name: str) -> None:
    assert event_uuid5(namespace.bytes, name) == str(uuid.uuid5(namespace, name))


# --- SyncShopStock ------------------------------------------------------------------------------------

ENCODER = SyncShopStockEncoder(source=SOURCE, event_ns=COMMAND_NS)
HEADER = frame(77)

causes = st.builds(AtpChange, sku=TEXT, available=INT, version=LONG, updated_at_ms=LONG,
                   event_id=st.uuids().map(str) | TEXT, correlation_id=st.none() | TEXT)
commands = st.builds(ShopStockCommand, sku=TEXT, available=INT, atp_version=LONG, cause=st.none() | causes)


@settings(max_examples=300, deadline=None)
@given(st.lists(commands, min_size=1, max_size=5), LONG)
def test_sync_shop_stock_is_byte_for_byte_fastavro(batch: list[ShopStockCommand[AtpChange]],
                                                   recorded_at_ms: int) -> None:
    schema = schemas.parsed_schema(SYNC_SHOP_STOCK)
    expected = [HEADER + fastavro_body(schema, sync_shop_stock_datum(c, recorded_at_ms, source=SOURCE,
                                                                       event_ns=COMMAND_NS)) for c in batch]
    assert ENCODER.encode_all(HEADER, batch, recorded_at_ms) == expected


def test_sync_shop_stock_decodes_to_the_model() -> None:
    class Registry:
        def get_schema(self, schema_id: int) -> Any:
            class Registered:
                schema_str = json.dumps(schemas.schema_for(SYNC_SHOP_STOCK))
            return Registered()

    command = ShopStockCommand("SKU-1", 3, 9, AtpChange("SKU-1", 3, 9, 1_700_000_000_000, "ev-1", None))
    (data,) = ENCODER.encode_all(HEADER, [command], 1_700_000_000_001)
    record = AvroSerde(Registry()).decode(data)  # type: ignore[arg-type]
    assert (record.sku, record.available, record.atp_version) == ("SKU-1", 3, 9)  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", [("atp_version", ["long", "null"]), ("available", ["null", "int"]),
                                  ("sku", "bytes")])
def test_sync_shop_stock_refuses_a_schema_that_changes_the_bytes(path: tuple[str, Any]) -> None:
    schema = copy.deepcopy(schemas.schema_for(SYNC_SHOP_STOCK))
    name, new_type = path
    next(f for f in schema["fields"] if f["name"] == name)["type"] = new_type
    with pytest.raises(CodecMismatch, match=r"SyncShopStockEncoder.*SyncShopStock.*refusing to start"):
        SyncShopStockEncoder(source=SOURCE, event_ns=COMMAND_NS,
                             schema=fastavro.parse_schema(schema, named_schemas={}))


# --- StockSnapshotBatch lines beyond the small-value table --------------------------------------------


def test_lines_with_long_skus_and_many_lines_are_fastavros() -> None:
    schema = schemas.parsed_schema("io.shopstream.events.StockSnapshotBatch")
    head = {"meta": {"event_id": str(uuid.UUID(int=1)), "event_type": "StockSnapshotBatch",
                     "occurred_at": datetime(2026, 1, 1, tzinfo=UTC), "recorded_at": datetime(2026, 1, 1, tzinfo=UTC),
                     "source": "erp", "source_event_id": None, "correlation_id": None, "causation_id": None},
            "location": "W", "as_of": datetime(2026, 1, 1, tzinfo=UTC)}
    rows = [Row(2, "", "L" * 9000, "W", 1, None, 2)] + [Row(i, "", f"S{i}", "W", i, i, None) for i in range(8300)]
    datum = {**head, "lines": [{"sku": r.sku, "on_hand": r.on_hand, "safety_stock": r.safety_stock,
                                "incoming": r.incoming} for r in rows]}
    encoder = StockSnapshotLinesEncoder()
    assert encoder.splice(fastavro_body(schema, {**head, "lines": []}), rows) == fastavro_body(schema, datum)
    assert encoder.lines([]) == fastavro_body({"type": "array", "items": "int"}, [])


# --- the policy itself --------------------------------------------------------------------------------


def test_verify_writer_names_writer_record_and_schema() -> None:
    schema = schemas.parsed_schema(SYNC_SHOP_STOCK)
    datum = sync_shop_stock_datum(ShopStockCommand("A", 1, 1, None), 0, source=SOURCE, event_ns=COMMAND_NS)
    good = fastavro_body(schema, datum)
    verify_writer("w", SYNC_SHOP_STOCK, schema, [(datum, good)])
    with pytest.raises(CodecMismatch) as err:
        verify_writer("my.Writer", SYNC_SHOP_STOCK, schema, [(datum, good[:-1] + b"\x7f")])
    message = str(err.value)
    assert "my.Writer" in message and SYNC_SHOP_STOCK in message and "fingerprint" in message
    assert f"first difference at byte {len(good) - 1}" in message
    with pytest.raises(CodecMismatch, match="no longer takes the writer's sample 0"):
        verify_writer("w", SYNC_SHOP_STOCK, schema, [({"sku": "A"}, good)])
    with pytest.raises(CodecMismatch, match=r"schema it was given is io\.shopstream\.events\.AtpLevel"):
        verify_writer("w", SYNC_SHOP_STOCK, schemas.parsed_schema("io.shopstream.events.AtpLevel"), [])
