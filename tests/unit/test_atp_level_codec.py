"""The AtpLevel fast writer against the reference, fastavro, byte for byte (event_uuid5: tests/unit/test_codecs.py)."""

from __future__ import annotations

import copy
import dataclasses
import io
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shopstream import schemas
from shopstream.codecs.atp_level import AtpLevelEncoder
from shopstream.codecs.selfcheck import CodecMismatch
from shopstream.processors.inventory.app import ATP_NS, NEVER_COUNTED, atp_level_datum
from shopstream.processors.inventory.figures import Levels, LocationLevel
from shopstream.schemas.models import AtpLevel, EventMeta
from shopstream.serde import AvroSerde

SCHEMA_ID = 4242
INT = st.integers(-(2**31), 2**31 - 1)
LONG = st.integers(-(2**63), 2**63 - 1)
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=9, minutes=45))])
# any instant from year 2 to 9998 (so that no zone shifts it out of datetime's range), with microseconds
DATETIMES = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES)
TEXT = st.text(max_size=24)  # any code points but lone surrogates, which UTF-8 cannot encode


def reference(levels: Levels, cause: EventMeta, schema_id: int = SCHEMA_ID) -> bytes:
    """What the worker writes today: the Confluent frame, then fastavro over `atp_level_datum`."""
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, schemas.parsed_schema(AtpLevel.AVRO_NAME), atp_level_datum(levels, cause))
    return buf.getvalue()


def encoder(schema_id: int = SCHEMA_ID) -> AtpLevelEncoder:
    return AtpLevelEncoder(schema_id, event_ns=ATP_NS, never_counted=NEVER_COUNTED)


locations = st.builds(
    LocationLevel, location=TEXT, online=st.booleans(), on_hand=INT, reserved=INT, safety_stock=INT,
    incoming=INT, as_of=st.none() | DATETIMES)

levels_st = st.builds(
    Levels, sku=TEXT, on_hand=INT, reserved=INT, safety_stock=INT, incoming=INT, available=INT, version=LONG,
    updated_at=st.none() | DATETIMES, locations=st.lists(locations, max_size=5).map(tuple))

# The worker's causes are validated models (UTC, whole milliseconds); `model_construct` also lets
# through what validation would normalise (other offsets, microseconds) to test the conversion itself.
causes = st.builds(
    EventMeta.model_construct, event_id=st.uuids().map(str), event_type=st.just("StockSnapshot"),
    occurred_at=DATETIMES, recorded_at=DATETIMES, source=st.just("erp"), source_event_id=st.none() | TEXT,
    correlation_id=st.none() | TEXT, causation_id=st.none() | st.uuids().map(str))
validated_causes = causes.map(lambda meta: EventMeta.model_validate(meta.model_dump()))

T = datetime(2024, 5, 1, 12, 0, 0, 999_999, tzinfo=UTC)
SIMPLE_CAUSE = EventMeta(event_id=str(uuid.UUID(int=7)), event_type="StockSnapshot", occurred_at=T, recorded_at=T,
                         source="erp")
SIMPLE = Levels(sku="SKU-1", on_hand=5, reserved=2, safety_stock=1, incoming=0, available=2, version=3,
                updated_at=None, locations=())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(levels=levels_st, cause=causes | validated_causes)
@example(levels=SIMPLE, cause=SIMPLE_CAUSE)
@example(  # before the epoch, sub-millisecond: fastavro floors towards the past
    levels=Levels(sku="ü€𝄞", on_hand=-(2**31), reserved=2**31 - 1, safety_stock=-1, incoming=64, available=-65,
                  version=-(2**63), updated_at=datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
                  locations=(LocationLevel("W1", True, 8191, 8192, -8192, -8193, None),
                             LocationLevel("", False, 0, 0, 0, 0,
                                           datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=1)))))),
    cause=SIMPLE_CAUSE.model_copy(update={"correlation_id": "corr-1"}))
def test_encode_is_byte_for_byte_fastavro(levels: Levels, cause: EventMeta) -> None:
    assert encoder().encode(levels, cause) == reference(levels, cause)


@given(levels=levels_st, cause=validated_causes, schema_id=st.integers(0, 2**32 - 1))
@settings(max_examples=50, deadline=None)
def test_encode_equals_serde_encode_datum(levels: Levels, cause: EventMeta, schema_id: int) -> None:
    class Registry:  # what AvroSerde.schema_id needs of a SchemaRegistryClient
        def register_schema(self, subject: str, schema: Any) -> int:
            assert subject == f"inventory.atp-{AtpLevel.AVRO_NAME}"
            return schema_id

    serde = AvroSerde(Registry())  # type: ignore[arg-type]
    expected = serde.encode_datum("inventory.atp", AtpLevel.AVRO_NAME, atp_level_datum(levels, cause))
    assert encoder(schema_id).encode(levels, cause) == expected


def test_encoded_record_decodes_to_the_model() -> None:
    levels = Levels(sku="SKU-1", on_hand=5, reserved=2, safety_stock=1, incoming=3, available=2, version=3,
                    updated_at=T, locations=(LocationLevel("A", True, 5, 2, 1, 3, None),))
    data = encoder().encode(levels, SIMPLE_CAUSE)
    assert data[:5] == struct.pack(">bI", 0, SCHEMA_ID)
    body = fastavro.schemaless_reader(io.BytesIO(data[5:]), schemas.parsed_schema(AtpLevel.AVRO_NAME), None)
    assert AtpLevel.model_validate(body) == AtpLevel.model_validate(atp_level_datum(levels, SIMPLE_CAUSE))


# --- what the encoder refuses ----------------------------------------------------------------------


def _schema() -> dict[str, Any]:
    return copy.deepcopy(schemas.schema_for(AtpLevel.AVRO_NAME))


def _field(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in record["fields"] if f["name"] == name)


def _add_field(s: dict[str, Any]) -> None:
    s["fields"].append({"name": "reorder_point", "type": ["null", "int"], "default": None})


def _drop_field(s: dict[str, Any]) -> None:
    s["fields"] = [f for f in s["fields"] if f["name"] != "incoming"]


def _swap_fields(s: dict[str, Any]) -> None:
    s["fields"][2], s["fields"][3] = s["fields"][3], s["fields"][2]


def _rename_field(s: dict[str, Any]) -> None:
    _field(s, "reserved")["name"] = "allocated"


def _widen_int(s: dict[str, Any]) -> None:
    _field(s, "on_hand")["type"] = "long"


def _nullable_updated_at(s: dict[str, Any]) -> None:
    _field(s, "updated_at")["type"] = ["null", {"type": "long", "logicalType": "timestamp-millis"}]


def _micros(s: dict[str, Any]) -> None:
    _field(s, "updated_at")["type"] = {"type": "long", "logicalType": "timestamp-micros"}


def _meta_field(s: dict[str, Any]) -> None:
    _field(s, "meta")["type"]["fields"].append({"name": "tenant", "type": ["null", "string"], "default": None})


def _meta_union_order(s: dict[str, Any]) -> None:
    _field(_field(s, "meta")["type"], "correlation_id")["type"] = ["string", "null"]


def _location_field(s: dict[str, Any]) -> None:
    _field(_field(s, "locations")["type"]["items"], "as_of")["type"] = [
        "null", {"type": "long", "logicalType": "timestamp-millis"}]


def _locations_map(s: dict[str, Any]) -> None:
    locs = _field(s, "locations")
    locs["type"], locs["default"] = {"type": "map", "values": locs["type"]["items"]}, {}


def _renamed_record(s: dict[str, Any]) -> None:
    s["name"] = "AtpLevelV2"


@pytest.mark.parametrize("change", [_add_field, _drop_field, _swap_fields, _rename_field,
                                    _nullable_updated_at, _micros, _meta_field, _meta_union_order,
                                    _location_field, _locations_map, _renamed_record])
def test_refuses_a_schema_it_was_not_written_for(change: Any) -> None:
    schema = _schema()
    change(schema)
    with pytest.raises(CodecMismatch, match=r"AtpLevel.*refusing to start"):
        AtpLevelEncoder(SCHEMA_ID, event_ns=ATP_NS, never_counted=NEVER_COUNTED,
                        schema=fastavro.parse_schema(schema, named_schemas={}))


def test_accepts_the_current_schema_in_any_form_and_changes_that_keep_the_bytes() -> None:
    # int -> long writes every int the same: the self-check compares bytes, so the writer stays valid
    widened = _schema()
    _widen_int(widened)
    docs = _schema()
    docs["doc"] = "reworded"
    _field(docs, "locations")["default"] = []
    _field(_field(docs, "meta")["type"], "source_event_id").pop("default")
    for schema in (None, schemas.parsed_schema(AtpLevel.AVRO_NAME), schemas.schema_for(AtpLevel.AVRO_NAME), docs,
                   fastavro.parse_schema(docs, named_schemas={}), fastavro.parse_schema(widened, named_schemas={})):
        AtpLevelEncoder(SCHEMA_ID, event_ns=ATP_NS, never_counted=NEVER_COUNTED, schema=schema)


# --- values the schema cannot hold -----------------------------------------------------------------


@pytest.mark.parametrize("update", [{"on_hand": 2**31}, {"available": -(2**31) - 1}, {"version": 2**63},
                                   {"version": -(2**63) - 1},
                                   {"locations": (LocationLevel("A", True, 0, 2**31, 0, 0, None),)}])
def test_refuses_figures_outside_the_avro_ranges(update: dict[str, Any]) -> None:
    levels = dataclasses.replace(SIMPLE, **update)
    with pytest.raises(ValueError, match="outside the Avro"):
        encoder().encode(levels, SIMPLE_CAUSE)


def test_refuses_naive_timestamps() -> None:
    levels = dataclasses.replace(SIMPLE, updated_at=datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="naive"):
        encoder().encode(levels, SIMPLE_CAUSE)
    with pytest.raises(ValueError, match="naive"):
        AtpLevelEncoder(SCHEMA_ID, event_ns=ATP_NS, never_counted=datetime(1970, 1, 1))


@pytest.mark.parametrize("schema_id", [-1, 2**32])
def test_refuses_schema_ids_the_frame_cannot_hold(schema_id: int) -> None:
    with pytest.raises(ValueError, match="schema id"):
        encoder(schema_id)


def test_with_schema_id_changes_only_the_frame() -> None:
    # the worker checks the writer at start and binds the registry's id later
    assert encoder(0).with_schema_id(77).encode(SIMPLE, SIMPLE_CAUSE) == encoder(77).encode(SIMPLE, SIMPLE_CAUSE)
    with pytest.raises(ValueError, match="schema id"):
        encoder(0).with_schema_id(2**32)
