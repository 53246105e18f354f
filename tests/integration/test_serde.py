"""AvroSerde against the embedded registry over HTTP: Confluent framing, subjects, and its error classes."""

from __future__ import annotations

import json
import socket
import struct
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from shopstream.connectors.shopify import ShopifyConnector, sign
from shopstream.dev.shopify_samples import shopify_order
from shopstream.schemas.models import OrderPlaced
from shopstream.serde import (
    AvroSerde,
    InvalidRecord,
    NotAvroFramed,
    RegistryUnavailable,
    UnknownRecord,
    UnknownSchemaId,
    make_registry_client,
)

SECRET = "serde-test"


def order_placed(order_id: int = 5001) -> OrderPlaced:
    """A real OrderPlaced, as the Shopify connector builds it from a real-shaped payload."""
    body = json.dumps(shopify_order(order_id, created_at=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
                                    lines=[("TSHIRT-BLK-M", 2, "19.90"), ("MUG-WHT", 1, "9.50")])).encode()
    headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": sign(SECRET, body),
               "X-Shopify-Webhook-Id": "wh-1"}
    (out,) = ShopifyConnector(SECRET).translate(headers, body, datetime(2024, 5, 1, 9, 30, 5, tzinfo=UTC))
    assert isinstance(out.record, OrderPlaced)
    return out.record


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def topic(unique: str) -> str:
    return f"t{unique}.shop.orders"


@pytest.fixture
def registry(registry_url: str) -> SchemaRegistryClient:
    return make_registry_client(registry_url)


def test_round_trip(registry: SchemaRegistryClient, topic: str) -> None:
    serde = AvroSerde(registry)
    record = order_placed()
    data = serde.encode(topic, record)
    decoded = serde.decode(data)
    assert type(decoded) is OrderPlaced
    assert decoded == record
    assert isinstance(decoded, OrderPlaced)
    assert decoded.total.amount == Decimal("54.20")
    assert [ln.unit_price.amount for ln in decoded.lines] == [Decimal("19.90"), Decimal("9.50")]


def test_a_fresh_serde_decodes_what_another_encoded(registry_url: str, topic: str) -> None:
    """The writer schema comes from the registry by id, not from the encoder's cache."""
    data = AvroSerde(make_registry_client(registry_url)).encode(topic, order_placed(5002))
    decoded = AvroSerde(make_registry_client(registry_url)).decode(data)
    assert decoded == order_placed(5002)


def test_subject_is_topic_record_name(registry: SchemaRegistryClient, topic: str) -> None:
    serde = AvroSerde(registry)
    data = serde.encode(topic, order_placed())
    subject = f"{topic}-io.shopstream.events.OrderPlaced"
    assert subject in registry.get_subjects()
    assert [s for s in registry.get_subjects() if s.startswith(topic)] == [subject]
    latest = registry.get_latest_version(subject)
    _, schema_id = struct.unpack(">bI", data[:5])
    assert latest.schema_id == schema_id
    assert json.loads(latest.schema.schema_str or "null")["name"] in ("OrderPlaced", "io.shopstream.events.OrderPlaced")
    # Encoding again reuses the registered id (no new version).
    assert serde.encode(topic, order_placed(5003))[:5] == data[:5]
    assert registry.get_versions(subject) == [1]


def test_bytes_are_confluent_framed_and_readable_by_confluents_deserializer(registry: SchemaRegistryClient,
                                                                           registry_url: str, topic: str) -> None:
    record = order_placed()
    data = AvroSerde(registry).encode(topic, record)
    assert data[0] == 0  # magic byte
    (schema_id,) = struct.unpack(">I", data[1:5])
    assert schema_id == registry.get_latest_version(f"{topic}-io.shopstream.events.OrderPlaced").schema_id

    other_client = SchemaRegistryClient({"url": registry_url})
    value: dict[str, Any] = AvroDeserializer(other_client)(data, SerializationContext(topic, MessageField.VALUE))
    assert value["order_id"] == record.order_id
    assert value["currency"] == "EUR"
    assert value["total"]["amount"] == Decimal("54.20")
    assert [ln["sku"] for ln in value["lines"]] == ["TSHIRT-BLK-M", "MUG-WHT"]
    assert str(value["meta"]["event_id"]) == record.meta.event_id
    placed_at = value["placed_at"]
    assert placed_at == record.placed_at


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x01", b'{"order_id": "1"}', b"\x01\x00\x00\x00\x01abc", None])
def test_non_framed_bytes_raise_not_avro_framed(registry: SchemaRegistryClient, data: bytes | None) -> None:
    with pytest.raises(NotAvroFramed):
        AvroSerde(registry).decode(data)


def test_unknown_schema_id(registry: SchemaRegistryClient) -> None:
    frame = struct.pack(">bI", 0, 987_654) + b"\x02\x04ab"
    with pytest.raises(UnknownSchemaId, match="987654"):
        AvroSerde(registry).decode(frame)


def test_schema_of_a_record_without_model_raises_unknown_record(registry: SchemaRegistryClient,
                                                                topic: str) -> None:
    foreign = {"type": "record", "name": "Thing", "namespace": "com.example",
               "fields": [{"name": "x", "type": "int"}]}
    schema_id = registry.register_schema(f"{topic}-com.example.Thing", Schema(json.dumps(foreign), "AVRO"))
    with pytest.raises(UnknownRecord, match=r"com\.example\.Thing"):
        AvroSerde(registry).decode(struct.pack(">bI", 0, schema_id) + b"\x02")


def test_truncated_body_raises_invalid_record(registry: SchemaRegistryClient, topic: str) -> None:
    data = AvroSerde(registry).encode(topic, order_placed())
    with pytest.raises(InvalidRecord, match="OrderPlaced"):
        AvroSerde(registry).decode(data[:40])


def test_registry_down_raises_registry_unavailable(registry: SchemaRegistryClient, topic: str) -> None:
    down = make_registry_client(f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable):
        AvroSerde(down).encode(topic, order_placed())
    # Decoding valid framed bytes needs the writer schema: also transient, not a dead letter.
    data = AvroSerde(registry).encode(topic, order_placed())
    with pytest.raises(RegistryUnavailable):
        AvroSerde(down).decode(data)
    assert time.monotonic() - started < 30
    # RegistryUnavailable is transient (retried), unlike SerdeError (parked).
    from shopstream.processing import is_transient
    from shopstream.serde import SerdeError
    assert not issubclass(RegistryUnavailable, SerdeError)
    assert is_transient(RegistryUnavailable("x"))
