"""`AvroSerde.decode_datum`, the sink's fast AtpLevel decoding: plain dicts, resolution, refusals.

The registry is an in-memory stand-in for the two calls the serde makes (no I/O)."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from shopstream import schemas
from shopstream.serde import AvroSerde, InvalidRecord, NotAvroFramed, UnknownRecord, UnknownSchemaId
from shopstream.views.atp import atp_document, level_datum
from tests.unit.test_atp_view import make_level

ATP_ID, OLD_ATP_ID, ORDER_ID = 21, 22, 23


def _old_atp_schema() -> dict[str, Any]:
    """AtpLevel as an earlier producer may have written it: without `locations`."""
    raw = schemas.schema_for("AtpLevel")
    return {**raw, "fields": [f for f in raw["fields"] if f["name"] != "locations"]}


@dataclass
class FakeSchema:
    schema_str: str


class FakeRegistry:
    def __init__(self) -> None:
        self.schemas = {ATP_ID: json.dumps(schemas.schema_for("AtpLevel")),
                        OLD_ATP_ID: json.dumps(_old_atp_schema()),
                        ORDER_ID: json.dumps(schemas.schema_for("OrderState"))}
        self.calls = 0

    def get_schema(self, schema_id: int) -> FakeSchema:
        self.calls += 1
        if schema_id not in self.schemas:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return FakeSchema(self.schemas[schema_id])


def framed(schema_id: int, schema: Any, datum: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), datum)
    return buf.getvalue()


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def serde(registry: FakeRegistry) -> AvroSerde:
    return AvroSerde(registry)  # type: ignore[arg-type]


def test_decodes_to_the_plain_shape(serde: AvroSerde, registry: FakeRegistry) -> None:
    level = make_level("A-1", 4)
    data = framed(ATP_ID, schemas.schema_for("AtpLevel"), schemas.to_avro(level))
    datum = serde.decode_datum(data, "AtpLevel")
    expected = level_datum(level)
    assert {k: v for k, v in datum.items() if k != "meta"} == {k: v for k, v in expected.items() if k != "meta"}
    assert datum["meta"]["event_id"] == level.meta.event_id  # uuid stays a string
    assert isinstance(datum["meta"]["occurred_at"], int)     # timestamps stay epoch ms
    assert atp_document(datum) == atp_document(expected)
    # Full name works too; the writer schema is fetched once.
    assert serde.decode_datum(data, "io.shopstream.events.AtpLevel") == datum
    assert registry.calls == 1


def test_older_writer_schema_resolves_with_defaults(serde: AvroSerde) -> None:
    avro = schemas.to_avro(make_level("A-1", 2))
    del avro["locations"]
    datum = serde.decode_datum(framed(OLD_ATP_ID, _old_atp_schema(), avro), "AtpLevel")
    assert datum["locations"] == [] and datum["version"] == 2


def test_refusals(serde: AvroSerde) -> None:
    good = framed(ATP_ID, schemas.schema_for("AtpLevel"), schemas.to_avro(make_level("A-1", 1)))
    with pytest.raises(NotAvroFramed):
        serde.decode_datum(b"definitely not avro", "AtpLevel")
    with pytest.raises(NotAvroFramed):
        serde.decode_datum(None, "AtpLevel")
    with pytest.raises(UnknownSchemaId):
        serde.decode_datum(struct.pack(">bI", 0, 999) + good[5:], "AtpLevel")
    with pytest.raises(UnknownRecord):
        serde.decode_datum(struct.pack(">bI", 0, ORDER_ID) + good[5:], "AtpLevel")
    with pytest.raises(InvalidRecord):
        serde.decode_datum(good[:20], "AtpLevel")  # truncated body
