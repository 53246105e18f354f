"""Avro on the wire with Confluent framing: magic byte 0, 4-byte big-endian schema id, Avro body.

Subjects follow Confluent's TopicRecordNameStrategy (`<topic>-<record full name>`) because one
topic carries several event types (shop.orders: OrderPlaced, OrderUpdated, OrderCancelled).
Decoding reads with the writer schema fetched by id and resolves into this build's reader schema,
so a consumer keeps working while producers roll out a BACKWARD-compatible new version.
"""

from __future__ import annotations

import io
import json
import struct
import threading
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pydantic import BaseModel, ValidationError

from shopstream import schemas
from shopstream.schemas.models import RECORDS

MAGIC = 0
_HEADER = struct.Struct(">bI")


class SerdeError(Exception):
    """A record cannot be encoded or decoded; permanent: retrying the same bytes fails the same way."""


class NotAvroFramed(SerdeError):
    """The bytes do not start with the Confluent magic byte and a schema id."""


class UnknownSchemaId(SerdeError):
    """The registry does not know the schema id in the frame."""


class UnknownRecord(SerdeError):
    """The writer schema names a record this build has no model for."""


class InvalidRecord(SerdeError):
    """The Avro body does not decode, or decodes to values the model rejects."""


class RegistryUnavailable(Exception):
    """The schema registry did not answer; transient, worth retrying."""


def make_registry_client(url: str) -> SchemaRegistryClient:
    """A Confluent SchemaRegistryClient (it caches ids and schemas itself)."""
    return SchemaRegistryClient({"url": url})


class AvroSerde:
    """Encode pydantic event models to framed Avro and back, through a Confluent-compatible registry."""

    def __init__(self, registry: SchemaRegistryClient) -> None:
        self._registry = registry
        self._ids: dict[tuple[str, str], int] = {}
        self._writers: dict[int, tuple[str, Any]] = {}
        self._plain: dict[tuple[int, str], tuple[Any, Any]] = {}  # decode_datum: plain (writer, reader|None)
        self._lock = threading.Lock()

    def schema_id(self, topic: str, record_name: str) -> int:
        """Register (or look up) the record's schema under `<topic>-<record>` and return its id."""
        key = (topic, record_name)
        cached = self._ids.get(key)
        if cached is not None:
            return cached
        schema_str = json.dumps(schemas.schema_for(record_name))
        try:
            schema_id = int(self._registry.register_schema(f"{topic}-{record_name}", Schema(schema_str, "AVRO")))
        except SchemaRegistryError as exc:
            if exc.http_status_code and 400 <= exc.http_status_code < 500:
                raise SerdeError(f"registry refused {record_name} for {topic}: {exc}") from exc
            raise RegistryUnavailable(str(exc)) from exc
        except Exception as exc:  # connection refused, timeouts (httpx raises its own types)
            raise RegistryUnavailable(f"schema registry unreachable: {exc}") from exc
        with self._lock:
            self._ids[key] = schema_id
        return schema_id

    def encode(self, topic: str, record: BaseModel) -> bytes:
        """Framed Avro bytes for `record` on `topic`."""
        return self.encode_datum(topic, record.AVRO_NAME, schemas.to_avro(record))  # type: ignore[attr-defined]

    def encode_datum(self, topic: str, name: str, datum: dict[str, Any]) -> bytes:
        """Framed Avro bytes for a plain dict in the shape of record `name` (fastavro checks the types).

        For hot paths where building the pydantic model costs more than the rest of the work (bulk ATP);
        everything else should encode models."""
        schema_id = self.schema_id(topic, name)
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC, schema_id))
        try:
            fastavro.schemaless_writer(buf, schemas.parsed_schema(name), datum)
        except (ValueError, TypeError, KeyError) as exc:
            raise SerdeError(f"{name} cannot be written: {exc}") from exc
        return buf.getvalue()

    def _writer(self, schema_id: int) -> tuple[str, Any]:
        cached = self._writers.get(schema_id)
        if cached is not None:
            return cached
        try:
            registered = self._registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise UnknownSchemaId(f"schema id {schema_id} is not in the registry") from exc
            raise RegistryUnavailable(str(exc)) from exc
        except Exception as exc:
            raise RegistryUnavailable(f"schema registry unreachable: {exc}") from exc
        raw = json.loads(registered.schema_str or "null")
        name = raw.get("name", "") if isinstance(raw, dict) else ""
        if "." not in name and isinstance(raw, dict) and raw.get("namespace"):
            name = f"{raw['namespace']}.{name}"
        parsed = fastavro.parse_schema(raw)
        with self._lock:
            self._writers[schema_id] = (name, parsed)
        return name, parsed

    def decode(self, data: bytes | None) -> BaseModel:
        """The event model for framed Avro bytes; SerdeError when they are not a known record."""
        if not data or len(data) < _HEADER.size:
            raise NotAvroFramed("empty or truncated value")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise NotAvroFramed(f"first byte is {magic}, not the Confluent magic byte 0")
        name, writer = self._writer(schema_id)
        if name not in RECORDS:
            raise UnknownRecord(f"schema id {schema_id} is {name or 'not a record'}; no model for it")
        try:
            body = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size:]), writer,
                                              schemas.parsed_schema(name))
            return schemas.from_avro(name, body)  # type: ignore[arg-type]
        except (ValidationError, ValueError, EOFError, TypeError, KeyError, IndexError,
                fastavro.read.SchemaResolutionError) as exc:
            raise InvalidRecord(f"{name} (schema id {schema_id}) does not decode: {exc}") from exc

    def decode_datum(self, data: bytes | None, name: str) -> dict[str, Any]:
        """The plain dict of framed Avro bytes that must hold record `name`, without building the model.

        For hot paths where the pydantic model costs more than the rest of the work (the Redis sink
        decodes a million AtpLevel records per bulk snapshot). Resolved into this build's schema like
        `decode`, but not validated by the model, and logical types are left as their Avro primitives:
        timestamp-millis as epoch milliseconds (int), uuid as str, decimal as bytes — that halves
        fastavro's cost. `encode_datum` accepts such a dict back. Raises like `decode`, and
        UnknownRecord when the writer's record is not `name`."""
        if not data or len(data) < _HEADER.size:
            raise NotAvroFramed("empty or truncated value")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise NotAvroFramed(f"first byte is {magic}, not the Confluent magic byte 0")
        full = schemas.fullname(name)
        plain = self._plain.get((schema_id, full))
        if plain is None:
            writer_name, writer = self._writer(schema_id)
            if writer_name != full:
                raise UnknownRecord(f"schema id {schema_id} is {writer_name or 'not a record'}, not {full}")
            plain_writer, plain_reader = _plain_schema(writer), _plain_schema(schemas.parsed_schema(full))
            plain = (fastavro.parse_schema(plain_writer),
                     None if plain_writer == plain_reader else fastavro.parse_schema(plain_reader))
            with self._lock:
                self._plain[(schema_id, full)] = plain
        try:
            datum = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size:]), *plain)
        except (ValueError, EOFError, TypeError, KeyError, IndexError,
                fastavro.read.SchemaResolutionError) as exc:
            raise InvalidRecord(f"{full} (schema id {schema_id}) does not decode: {exc}") from exc
        if not isinstance(datum, dict):
            raise InvalidRecord(f"{full} (schema id {schema_id}) did not decode to a record")
        return datum


def _plain_schema(node: Any) -> Any:
    """A (parsed) schema as plain Avro JSON without logical types and without fastavro's bookkeeping."""
    if isinstance(node, list):
        return [_plain_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _plain_schema(v) for k, v in node.items()
           if not k.startswith("__") and k not in ("logicalType", "precision", "scale")}
    if "logicalType" in node and set(out) == {"type"}:
        return out["type"]
    return out
