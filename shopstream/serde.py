"""Avro on the wire with Confluent framing: magic byte 0, 4-byte big-endian schema id, Avro body.

Subjects follow Confluent's TopicRecordNameStrategy (`<topic>-<record full name>`) because one
topic carries several event types (shop.orders: OrderPlaced, OrderUpdated, OrderCancelled).
Decoding reads with the writer schema fetched by id and resolves into this build's reader schema,
so a consumer keeps working while producers roll out a BACKWARD-compatible new version.

Encoding a model goes through a writer compiled from its record's schema (`codecs.model_writer`:
the same bytes as fastavro at a fraction of the cost), checked once per record against fastavro on
the first model it writes; records it cannot compile keep fastavro. `encode_datum` (plain dicts)
stays on fastavro.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pydantic import BaseModel, ValidationError

from shopstream import schemas
from shopstream.codecs.avro import FRAME, MAGIC, frame
from shopstream.codecs.model_writer import Writer, compile_writer
from shopstream.codecs.selfcheck import verify_writer
from shopstream.schemas.models import RECORDS


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


class RegistryRefused(RegistryUnavailable):
    """The registry refused our own schema (401/403: credentials, 409/422: compatibility): our fault, not
    the record's, so it is handled like an outage (webhooks answer 503, workers retry) and never parks input."""


def make_registry_client(url: str) -> SchemaRegistryClient:
    """A Confluent SchemaRegistryClient (it caches ids and schemas itself)."""
    return SchemaRegistryClient({"url": url})


class AvroSerde:
    """Encode pydantic event models to framed Avro and back, through a Confluent-compatible registry."""

    def __init__(self, registry: SchemaRegistryClient) -> None:
        self._registry = registry
        self._ids: dict[tuple[str, str], int] = {}
        self._writers: dict[int, tuple[str, Any]] = {}
        # decode_datum, by (schema id, name as given, id(projection or None)): the plain (writer, reader|None)
        # pair, and the projection itself, held so that its id stays unique while the entry lives.
        self._plain: dict[tuple[int, str, int], tuple[Any, Any, dict[str, Any] | None]] = {}
        # encode: the compiled writer per record name (None: fastavro), once it was checked on a first model.
        self._model_writers: dict[str, Writer | None] = {}
        self._frames: dict[int, bytes] = {}
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
                # The schema is ours, not the sender's: a refusal is a credential or deployment fault.
                raise RegistryRefused(f"registry refused {record_name} for {topic} "
                                      f"(HTTP {exc.http_status_code}): {exc}") from exc
            raise RegistryUnavailable(str(exc)) from exc
        except Exception as exc:  # connection refused, timeouts (httpx raises its own types)
            raise RegistryUnavailable(f"schema registry unreachable: {exc}") from exc
        with self._lock:
            self._ids[key] = schema_id
        return schema_id

    def encode(self, topic: str, record: BaseModel) -> bytes:
        """Framed Avro bytes for `record` on `topic`."""
        name: str = record.AVRO_NAME  # type: ignore[attr-defined]
        schema_id = self.schema_id(topic, name)
        head = self._frames.get(schema_id)
        if head is None:
            head = self._frames[schema_id] = frame(schema_id)
        writer = self._model_writers[name] if name in self._model_writers else self._checked_writer(name, record)
        if writer is None:
            return self.encode_datum(topic, name, schemas.to_avro(record))
        try:
            return head + writer(record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerdeError(f"{name} cannot be written: {exc}") from exc

    def _checked_writer(self, name: str, sample: BaseModel) -> Writer | None:
        """The compiled writer of record `name`, after it wrote `sample` exactly as fastavro does.

        A difference raises `selfcheck.CodecMismatch` (a compiler bug: nothing is written with it)."""
        writer = compile_writer(schemas.schema_for(name))
        if writer is not None:
            try:
                fast = writer(sample)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise SerdeError(f"{name} cannot be written: {exc}") from exc
            verify_writer("model_writer", schemas.fullname(name), schemas.parsed_schema(name),
                          [(schemas.to_avro(sample), fast)])
        with self._lock:
            self._model_writers[name] = writer
        return writer

    def encode_datum(self, topic: str, name: str, datum: dict[str, Any]) -> bytes:
        """Framed Avro bytes for a plain dict in the shape of record `name` (fastavro checks the types).

        For hot paths where building the pydantic model costs more than the rest of the work (bulk ATP);
        everything else should encode models."""
        schema_id = self.schema_id(topic, name)
        buf = io.BytesIO()
        buf.write(frame(schema_id))
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
        try:
            raw = json.loads(registered.schema_str or "null")
            name = _record_name(raw)
            parsed = fastavro.parse_schema(raw, named_schemas={})
        except (ValueError, TypeError, KeyError, fastavro.schema.SchemaParseException) as exc:
            raise InvalidRecord(f"schema id {schema_id} does not parse: {exc}") from exc
        with self._lock:
            self._writers[schema_id] = (name, parsed)
        return name, parsed

    def record_name(self, data: bytes | None) -> str:
        """The full name of the record framed Avro bytes hold, from their schema id (nothing decoded)."""
        return self._writer(unframe(data)[0])[0]

    def decode(self, data: bytes | None) -> BaseModel:
        """The event model for framed Avro bytes; SerdeError when they are not a known record."""
        schema_id, body_bytes = unframe(data)
        name, writer = self._writer(schema_id)
        if name not in RECORDS:
            raise UnknownRecord(f"schema id {schema_id} is {name or 'not a record'}; no model for it")
        try:
            body = fastavro.schemaless_reader(io.BytesIO(body_bytes), writer,
                                              schemas.parsed_schema(name))
            return schemas.from_avro(name, body)  # type: ignore[arg-type]
        except (ValidationError, ValueError, EOFError, TypeError, KeyError, IndexError,
                fastavro.read.SchemaResolutionError) as exc:
            raise InvalidRecord(f"{name} (schema id {schema_id}) does not decode: {exc}") from exc

    def decode_datum(self, data: bytes | None, name: str, reader: dict[str, Any] | None = None) -> dict[str, Any]:
        """The plain dict of framed Avro bytes that must hold record `name`, without building the model.

        For hot paths where the pydantic model costs more than the rest of the work (the Redis sink
        decodes a million AtpLevel records per bulk snapshot). Resolved into this build's schema like
        `decode`, but not validated by the model, and logical types are left as their Avro primitives:
        timestamp-millis as epoch milliseconds (int), uuid as str, decimal as bytes — that halves
        fastavro's cost. `encode_datum` accepts such a dict back. Raises like `decode`, and
        UnknownRecord when the writer's record is not `name`.

        `reader`: a projection, a plain Avro record schema named `name` with a subset of its fields
        (and defaults for fields an older writer may lack); the record is resolved into it instead,
        so fastavro skips the other fields without building them (the shop sync reads 6 fields of an
        AtpLevel this way). Pass one constant dict: it is parsed once per schema id and kept (by
        identity, so do not change it afterwards). ValueError when it does not fit `name`."""
        schema_id, body_bytes = unframe(data)
        key = (schema_id, name, id(reader))
        plain = self._plain.get(key)
        if plain is None:
            plain = self._plain_pair(schema_id, name, reader)
            with self._lock:
                if len(self._plain) >= _PLAIN_CACHE_MAX:  # only when callers pass a new projection each time
                    self._plain.clear()
                self._plain[key] = plain
        try:
            datum = fastavro.schemaless_reader(io.BytesIO(body_bytes), plain[0], plain[1])
        except (ValueError, EOFError, TypeError, KeyError, IndexError,
                fastavro.read.SchemaResolutionError) as exc:
            raise InvalidRecord(f"{schemas.fullname(name)} (schema id {schema_id}) does not decode: {exc}") from exc
        if not isinstance(datum, dict):
            raise InvalidRecord(f"{schemas.fullname(name)} (schema id {schema_id}) did not decode to a record")
        return datum

    def _plain_pair(self, schema_id: int, name: str,
                    reader: dict[str, Any] | None) -> tuple[Any, Any, dict[str, Any] | None]:
        """decode_datum's (writer, reader or None, projection) for a schema id, all without logical types."""
        full = schemas.fullname(name)
        writer_name, writer = self._writer(schema_id)
        if writer_name != full:
            raise UnknownRecord(f"schema id {schema_id} is {writer_name or 'not a record'}, not {full}")
        if reader is None:
            plain_reader = _plain_schema(schemas.parsed_schema(full))
        else:
            plain_reader = _plain_schema(reader)
            if _record_name(plain_reader) != full:
                raise ValueError(f"projection names {_record_name(plain_reader) or 'no record'}, not {full}")
            known = {f["name"] for f in schemas.schema_for(full)["fields"]}
            unknown = [f.get("name") for f in plain_reader.get("fields", []) if f.get("name") not in known]
            if unknown:
                raise ValueError(f"projection of {full} names fields it does not have: {unknown}")
        plain_writer = _plain_schema(writer)
        return (fastavro.parse_schema(plain_writer, named_schemas={}),
                None if plain_writer == plain_reader else fastavro.parse_schema(plain_reader, named_schemas={}),
                reader)


def unframe(data: bytes | None) -> tuple[int, bytes]:
    """(schema id, Avro body) of Confluent-framed bytes; NotAvroFramed when they are not framed."""
    if not data or len(data) < FRAME.size:
        raise NotAvroFramed("empty or truncated value")
    magic, schema_id = FRAME.unpack_from(data)
    if magic != MAGIC:
        raise NotAvroFramed(f"first byte is {magic}, not the Confluent magic byte 0")
    return int(schema_id), data[FRAME.size:]


#: decode_datum's cache holds (schema id, name, projection) combinations; this many means misuse.
_PLAIN_CACHE_MAX = 1024


def _record_name(raw: Any) -> str:
    """The full name of a record schema (JSON or parsed); "" when it is not a named type."""
    if not isinstance(raw, dict):
        return ""
    name = str(raw.get("name", ""))
    if "." not in name and raw.get("namespace"):
        name = f"{raw['namespace']}.{name}"
    return name


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
