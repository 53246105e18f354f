"""`AvroSerde.decode_datum` with a reader projection: only the projected fields, the same refusals.

The registry and the framing helper are the in-memory ones of the full-record tests
(`test_atp_view_decode.py`)."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from shopstream import schemas
from shopstream.serde import AvroSerde, InvalidRecord, NotAvroFramed, UnknownRecord, UnknownSchemaId
from tests.unit.test_atp_view import make_level
from tests.unit.test_atp_view_decode import ATP_ID, OLD_ATP_ID, ORDER_ID, FakeRegistry, _old_atp_schema, framed

PROJECTION: dict[str, Any] = {
    "type": "record", "name": "AtpLevel", "namespace": "io.shopstream.events", "fields": [
        {"name": "meta", "type": {"type": "record", "name": "EventMeta", "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}},
        {"name": "sku", "type": "string"},
        {"name": "available", "type": "int"},
    ]}


def serde_and_registry() -> tuple[AvroSerde, FakeRegistry]:
    registry = FakeRegistry()
    return AvroSerde(registry), registry  # type: ignore[arg-type]


def atp(sku: str = "A-1", available: int = 4) -> bytes:
    return framed(ATP_ID, schemas.schema_for("AtpLevel"), schemas.to_avro(make_level(sku, available)))


def test_only_the_projected_fields_are_read() -> None:
    serde, registry = serde_and_registry()
    data = atp()
    full = serde.decode_datum(data, "AtpLevel")
    datum = serde.decode_datum(data, "AtpLevel", PROJECTION)
    assert datum == {"meta": {"event_id": full["meta"]["event_id"], "occurred_at": full["meta"]["occurred_at"]},
                     "sku": "A-1", "available": full["available"]}
    assert "locations" not in datum and "correlation_id" not in datum["meta"]
    assert isinstance(datum["meta"]["occurred_at"], int)  # logical types are dropped from the projection too
    # Cached per (schema id, name, projection): the full read is unchanged, the writer is fetched once.
    assert serde.decode_datum(data, "AtpLevel") == full
    assert serde.decode_datum(atp("B-2", 7), "io.shopstream.events.AtpLevel", PROJECTION)["sku"] == "B-2"
    assert registry.calls == 1


def test_an_older_writer_resolves_into_the_projection() -> None:
    serde, _ = serde_and_registry()
    avro = schemas.to_avro(make_level("A-1", 2))
    del avro["locations"]
    projection = {**PROJECTION, "fields": [*PROJECTION["fields"],
                                           {"name": "locations", "type": {"type": "array", "items": "string"},
                                            "default": []}]}
    datum = serde.decode_datum(framed(OLD_ATP_ID, _old_atp_schema(), avro), "AtpLevel", projection)
    assert (datum["sku"], datum["locations"]) == ("A-1", [])


def test_refusals_are_those_of_the_full_read() -> None:
    serde, _ = serde_and_registry()
    good = atp()
    with pytest.raises(NotAvroFramed):
        serde.decode_datum(b"definitely not avro", "AtpLevel", PROJECTION)
    with pytest.raises(NotAvroFramed):
        serde.decode_datum(good[:3], "AtpLevel", PROJECTION)
    with pytest.raises(UnknownSchemaId):
        serde.decode_datum(struct.pack(">bI", 0, 999) + good[5:], "AtpLevel", PROJECTION)
    with pytest.raises(UnknownRecord):
        serde.decode_datum(struct.pack(">bI", 0, ORDER_ID) + good[5:], "AtpLevel", PROJECTION)
    for cut in (6, 20, 40):
        with pytest.raises(InvalidRecord):
            serde.decode_datum(good[:cut], "AtpLevel", PROJECTION)  # truncated body


def test_a_projection_that_does_not_fit_the_record_is_a_programming_error() -> None:
    serde, _ = serde_and_registry()
    with pytest.raises(ValueError, match=r"not io\.shopstream\.events\.AtpLevel"):
        serde.decode_datum(atp(), "AtpLevel", {**PROJECTION, "name": "OrderState"})
    with pytest.raises(ValueError, match="skus"):
        serde.decode_datum(atp(), "AtpLevel", {**PROJECTION, "fields": [{"name": "skus", "type": "string"}]})


def test_the_anomalies_atp_projection_gives_the_fact_the_full_model_gives() -> None:
    """The facts stage reads ATP levels through a projection (a 1M-SKU export): the same Fact as the model's."""
    from shopstream.processors.anomalies.facts import ATP_PROJECTION, atp_fact, from_event

    serde, _ = serde_and_registry()
    for available in (-3, 0, 12):
        data = atp("S-9", available)
        assert atp_fact(serde.decode_datum(data, "AtpLevel", ATP_PROJECTION)) == from_event(serde.decode(data))
