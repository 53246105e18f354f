"""A specialised Avro writer for `AtpLevel` records, and a faster `uuid.uuid5`, for the inventory worker's bulk path.

Why: on a bulk snapshot of a million SKUs the inventory worker emits one AtpLevel per changed SKU,
and py-spy showed fastavro's generic `schemaless_writer` (~25 µs per record: it walks the parsed
schema and dispatches per field) and `uuid.uuid5` for the event id (~7 µs: it builds a `UUID`
object only to format it) as about 35 % of the worker's CPU. This module writes the one record
shape directly, field by field in schema order, and derives the event id from `hashlib.sha1`
without a `UUID` object.

What it guarantees: `AtpLevelEncoder(schema_id, ...).encode(levels, cause)` returns the same bytes,
byte for byte, as
`AvroSerde.encode_datum(topic, AtpLevel.AVRO_NAME, atp_level_datum(levels, cause))` with that schema
id (Confluent frame: magic byte 0, 4-byte big-endian schema id; then the Avro binary body), and
`event_uuid5(ns, name) == str(uuid.uuid5(ns, name))`. tests/unit/test_atp_level_codec.py checks
both as hypothesis properties against fastavro's real `schemaless_writer` with
`shopstream.schemas.parsed_schema(AtpLevel.AVRO_NAME)` and against `uuid.uuid5`.

The encoder knows one schema: it compares the schema's structure (record names, field names and
order, types, logical types; docs and defaults do not change the bytes) with the one it was written
for when it is built and raises `UnsupportedAtpLevelSchema` on any difference, so an edit of
schemas/AtpLevel.avsc (or EventMeta.avsc, AtpLocation.avsc) cannot silently produce wrong bytes: it
fails at the worker's start until this module is updated.

Where it deliberately differs from fastavro: only on values the schema cannot hold. A figure
outside the Avro int range (or a version outside the long range) raises ValueError, where fastavro
would write an int field's out-of-range value as a long (bytes no conforming reader accepts as an
int). A naive datetime raises ValueError, where fastavro would read it in the machine's local time
zone (the AtpLevel model rejects naive datetimes too).
"""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime, timedelta
from hashlib import sha1
from typing import TYPE_CHECKING, Any, Final

from shopstream import schemas
from shopstream.schemas.models import AtpLevel
from shopstream.serde import avro_long

if TYPE_CHECKING:
    from shopstream.processors.inventory.atp import Levels
    from shopstream.schemas.models import EventMeta

__all__ = ["AtpLevelEncoder", "UnsupportedAtpLevelSchema", "event_uuid5"]

#: the UUID variant nibble (RFC 4122: binary 10xx) for each hex digit the hash may have there
_VARIANT: Final = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def event_uuid5(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))` without building a UUID object (several times faster).

    The SHA-1 of namespace and UTF-8 name, its first 16 bytes as hex with version 5 and the RFC 4122
    variant set, in the usual 8-4-4-4-12 groups."""
    x = sha1(namespace.bytes + name.encode()).hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


# --- Avro binary primitives -----------------------------------------------------------------------

_INT_MIN: Final = -(2**31)
_INT_MAX: Final = 2**31 - 1
_LONG_MIN: Final = -(2**63)
_LONG_MAX: Final = 2**63 - 1




#: precomputed encodings of the small values most figures are: 1 byte for -64..63, 2 for -8192..8191
_SMALL: Final[dict[int, bytes]] = {n: avro_long(n) for n in range(-8192, 8192)}


def _int(n: int) -> bytes:
    """Avro `int`."""
    b = _SMALL.get(n)
    if b is not None:
        return b
    if not _INT_MIN <= n <= _INT_MAX:
        raise ValueError(f"{n} is outside the Avro int range")
    return avro_long(n)


def _long(n: int) -> bytes:
    """Avro `long`."""
    b = _SMALL.get(n)
    if b is not None:
        return b
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise ValueError(f"{n} is outside the Avro long range")
    return avro_long(n)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)
#: encoded timestamps by epoch millis: the varint of a current timestamp is 6 bytes, about the
#: costliest part of a record, and a bulk snapshot repeats few instants (its as_of, the cause's
#: recorded_at) over a million records. Bounded; emptied when full.
_MILLIS_CACHE: Final[dict[int, bytes]] = {}
_MILLIS_CACHE_MAX: Final = 4096


def _timestamp_millis(value: datetime) -> bytes:
    """Avro `timestamp-millis` of an aware datetime, as fastavro computes it.

    fastavro: `delta = value - epoch; (delta.days * 86400 + delta.seconds) * 1000 +
    int(delta.microseconds / 1000)`; `delta.microseconds` is in 0..999999, so that is the floor of
    the delta in milliseconds (sub-millisecond digits dropped, towards the past also before 1970),
    which is what `timedelta // timedelta` computes in one step."""
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value.isoformat()} is naive; AtpLevel timestamps must be timezone-aware")
    millis = (value - _EPOCH) // _MILLISECOND
    b = _MILLIS_CACHE.get(millis)
    if b is None:
        b = _long(millis)
        if len(_MILLIS_CACHE) >= _MILLIS_CACHE_MAX:
            _MILLIS_CACHE.clear()
        _MILLIS_CACHE[millis] = b
    return b


def _string(value: str) -> bytes:
    """Avro `string`: the UTF-8 length as a long, then the bytes."""
    b = value.encode()
    return _long(len(b)) + b


def _optional_string(value: str | None) -> bytes:
    """Avro `["null", "string"]`: branch 0 for None, branch 1 then the string."""
    if value is None:
        return b"\x00"
    return b"\x02" + _string(value)


# --- the schema this encoder writes ---------------------------------------------------------------

_NS: Final = "io.shopstream.events"
_TS: Final = ("long", "timestamp-millis")
_OPTIONAL_STRING: Final = ("union", ("null", "string"))

#: `_shape` of schemas/AtpLevel.avsc (with EventMeta.avsc and AtpLocation.avsc) as `encode` writes it
_WRITTEN_FOR: Final = (
    "record", f"{_NS}.AtpLevel", (
        ("meta", ("record", f"{_NS}.EventMeta", (
            ("event_id", ("string", "uuid")),
            ("event_type", "string"),
            ("occurred_at", _TS),
            ("recorded_at", _TS),
            ("source", "string"),
            ("source_event_id", _OPTIONAL_STRING),
            ("correlation_id", _OPTIONAL_STRING),
            ("causation_id", _OPTIONAL_STRING),
        ))),
        ("sku", "string"),
        ("on_hand", "int"),
        ("reserved", "int"),
        ("safety_stock", "int"),
        ("incoming", "int"),
        ("available", "int"),
        ("version", "long"),
        ("updated_at", _TS),
        ("locations", ("array", ("record", f"{_NS}.AtpLocation", (
            ("location", "string"),
            ("on_hand", "int"),
            ("reserved", "int"),
            ("safety_stock", "int"),
            ("incoming", "int"),
            ("as_of", _TS),
        )))),
    ),
)


class UnsupportedAtpLevelSchema(ValueError):
    """The AtpLevel schema is not the one `AtpLevelEncoder` was written for; its bytes would be wrong."""


def _shape(node: Any, namespace: str = "") -> Any:
    """What of an Avro schema (parsed by fastavro, or plain JSON) decides the binary encoding, as tuples.

    Named types are expanded wherever they appear (a reference is written like its definition), so
    the result does not depend on where a type was first defined. Docs, defaults, aliases and order
    do not change how a record with every field present is written, so they are left out."""
    named: dict[str, Any] = {}

    def walk(node: Any, namespace: str) -> Any:
        if isinstance(node, str):
            full = node if "." in node or not namespace else f"{namespace}.{node}"
            return named.get(full, named.get(node, node))
        if isinstance(node, list):
            return ("union", tuple(walk(branch, namespace) for branch in node))
        if not isinstance(node, dict):
            return ("unknown", repr(node))
        kind = node.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            name = str(node.get("name", ""))
            ns = str(node.get("namespace") or namespace)
            full = name if "." in name or not ns else f"{ns}.{name}"
            ns = full.rpartition(".")[0]
            if kind in ("record", "error"):
                placeholder: list[Any] = []
                named[full] = placeholder  # a recursive reference stays a (never equal) list
                result: Any = (kind, full, tuple((str(f.get("name")), walk(f.get("type"), ns))
                                                 for f in node.get("fields", [])))
            else:
                result = (kind, full, repr(sorted((k, v) for k, v in node.items() if not k.startswith("__"))))
            named[full] = result
            return result
        if kind == "array":
            return ("array", walk(node.get("items"), namespace))
        if kind == "map":
            return ("map", walk(node.get("values"), namespace))
        if "logicalType" in node:
            return (walk(kind, namespace), node["logicalType"])
        return walk(kind, namespace)

    return walk(node, namespace)


# --- the encoder ----------------------------------------------------------------------------------

_FRAME: Final = struct.Struct(">bI")
_EVENT_TYPE: Final = "AtpLevel"
_SOURCE: Final = "shopstream.inventory"
_EVENT_TYPE_BYTES: Final = _string(_EVENT_TYPE)


class AtpLevelEncoder:
    """Framed Avro bytes of the AtpLevel `atp_level_datum(levels, cause)` describes, without the dict or fastavro.

    `schema_id`: the registry id of the AtpLevel schema on the output topic
    (`AvroSerde.schema_id(topic, AtpLevel.AVRO_NAME)`). `event_ns` and `never_counted`: the values
    `atp_level_datum` uses (app.ATP_NS: the namespace of the event ids; app.NEVER_COUNTED: a
    location's `as_of` before any ERP count). `schema`: the AtpLevel schema the bytes must follow,
    default this build's (`schemas.parsed_schema(AtpLevel.AVRO_NAME)`, the one registered under that
    id); UnsupportedAtpLevelSchema when it is not the one this encoder writes."""

    __slots__ = ("_head", "_never_counted", "_ns_bytes", "_source_and_null", "schema_id")

    def __init__(self, schema_id: int, *, event_ns: uuid.UUID, never_counted: datetime,
                 schema: Any = None) -> None:
        shape = _shape(schemas.parsed_schema(AtpLevel.AVRO_NAME) if schema is None else schema)
        if shape != _WRITTEN_FOR:
            raise UnsupportedAtpLevelSchema(
                f"the {AtpLevel.AVRO_NAME} schema differs from the one AtpLevelEncoder was written for "
                f"({__name__}): update the encoder and its tests")
        if not 0 <= schema_id < 2**32:
            raise ValueError(f"schema id {schema_id} does not fit the Confluent frame (4 unsigned bytes)")
        _timestamp_millis(never_counted)  # fail here, not on the first record, when it is unusable
        self.schema_id = schema_id
        # frame, then the start of meta: event_id is always a 36-character UUID string
        self._head = _FRAME.pack(0, schema_id) + _long(36)
        self._ns_bytes = event_ns.bytes
        self._never_counted = never_counted
        # meta.source and the null meta.source_event_id, written together after meta.recorded_at
        self._source_and_null = _string(_SOURCE) + b"\x00"

    def encode(self, levels: Levels, cause: EventMeta) -> bytes:
        """The framed AtpLevel of a SKU's figures after a change caused by `cause` (see the class)."""
        updated_at = levels.updated_at or cause.occurred_at
        updated = _timestamp_millis(updated_at)
        sku = levels.sku
        # event_uuid5(event_ns, f"{sku}:{version}") inlined, with the namespace's bytes computed once
        x = sha1(self._ns_bytes + f"{sku}:{levels.version}".encode()).hexdigest()
        parts = [
            self._head,
            f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}".encode(),
            _EVENT_TYPE_BYTES,
            updated,
            _timestamp_millis(cause.recorded_at),
            self._source_and_null,
            _optional_string(cause.correlation_id),
            _optional_string(cause.event_id),
            _string(sku),
            _int(levels.on_hand),
            _int(levels.reserved),
            _int(levels.safety_stock),
            _int(levels.incoming),
            _int(levels.available),
            _long(levels.version),
            updated,
        ]
        locations = levels.locations
        if locations:
            # fastavro writes a non-empty array as one block: its count, the items, then the 0 that ends it
            parts.append(_long(len(locations)))
            never_counted = self._never_counted
            for loc in locations:
                parts += (
                    _string(loc.location),
                    _int(loc.on_hand),
                    _int(loc.reserved),
                    _int(loc.safety_stock),
                    _int(loc.incoming),
                    _timestamp_millis(loc.as_of or never_counted),
                )
        parts.append(b"\x00")
        return b"".join(parts)

