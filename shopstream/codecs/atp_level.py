"""AtpLevel written field by field for the inventory worker's bulk path, the same bytes as fastavro.

Why: on a bulk snapshot of a million SKUs the inventory worker emits one AtpLevel per changed SKU,
and py-spy showed fastavro's generic `schemaless_writer` (~25 µs per record: it walks the parsed
schema and dispatches per field) and `uuid.uuid5` for the event id (~7 µs: it builds a `UUID`
object only to format it) as about 35 % of the worker's CPU. This module writes the one record
shape directly, field by field in schema order.

What it guarantees: `AtpLevelEncoder(schema_id, ...).encode(levels, cause)` returns the Confluent
frame with that schema id followed by exactly the bytes fastavro writes for
`atp_level_datum(levels, cause, ...)` (tests/unit/test_atp_level_codec.py checks it as a hypothesis
property). When built it checks itself on samples (`selfcheck.verify_writer`) and raises
`CodecMismatch` if an edit of schemas/AtpLevel.avsc (or EventMeta.avsc, AtpLocation.avsc) changed
the bytes: the worker does not start until this module is updated.

Where it deliberately differs from fastavro: only on values the schema cannot hold. A figure
outside the Avro int range (or a version outside the long range) raises ValueError, where fastavro
would write an int field's out-of-range value as a long (bytes no conforming reader accepts as an
int). A naive datetime raises ValueError, where fastavro would read it in the machine's local time
zone (the AtpLevel model rejects naive datetimes too).

Input: any objects with the attributes of the inventory core's `Levels` / `LocationLevel` and of
`EventMeta` (protocols below), so the kernel does not import the processor.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from hashlib import sha1
from typing import Any, Final, NamedTuple, Protocol

from shopstream import schemas
from shopstream.codecs.avro import (
    FRAME,
    UUID_VARIANT,
    avro_int,
    avro_long,
    avro_optional_string,
    avro_string,
    frame,
    timestamp_millis,
)
from shopstream.codecs.selfcheck import verify_writer
from shopstream.schemas.models import AtpLevel, EventMeta

__all__ = ["ATP_LEVEL", "AtpLevelEncoder", "atp_level_datum"]

ATP_LEVEL: Final = str(AtpLevel.AVRO_NAME)
_EVENT_TYPE: Final = "AtpLevel"
_SOURCE: Final = "shopstream.inventory"


class LocationLike(Protocol):
    """What the writer reads of a location's figures (the inventory core's `LocationLevel`)."""

    @property
    def location(self) -> str: ...
    @property
    def on_hand(self) -> int: ...
    @property
    def reserved(self) -> int: ...
    @property
    def safety_stock(self) -> int: ...
    @property
    def incoming(self) -> int: ...
    @property
    def as_of(self) -> datetime | None: ...


class LevelsLike(Protocol):
    """What the writer reads of a SKU's figures (the inventory core's `Levels`)."""

    @property
    def sku(self) -> str: ...
    @property
    def on_hand(self) -> int: ...
    @property
    def reserved(self) -> int: ...
    @property
    def safety_stock(self) -> int: ...
    @property
    def incoming(self) -> int: ...
    @property
    def available(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def updated_at(self) -> datetime | None: ...
    @property
    def locations(self) -> Sequence[LocationLike]: ...


class CauseLike(Protocol):
    """What the writer reads of the cause's EventMeta."""

    @property
    def event_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def correlation_id(self) -> str | None: ...


def atp_level_datum(levels: LevelsLike, cause: CauseLike, *, event_ns: uuid.UUID,
                    never_counted: datetime) -> dict[str, Any]:
    """The AtpLevel of a SKU's figures (after a change caused by `cause`) as the Avro dict fastavro writes."""
    updated_at = levels.updated_at or cause.occurred_at
    return {
        "meta": {"event_id": str(uuid.uuid5(event_ns, f"{levels.sku}:{levels.version}")), "event_type": _EVENT_TYPE,
                 "occurred_at": updated_at, "recorded_at": cause.recorded_at, "source": _SOURCE,
                 "source_event_id": None, "correlation_id": cause.correlation_id, "causation_id": cause.event_id},
        "sku": levels.sku, "on_hand": levels.on_hand, "reserved": levels.reserved,
        "safety_stock": levels.safety_stock, "incoming": levels.incoming, "available": levels.available,
        "version": levels.version, "updated_at": updated_at,
        "locations": [{"location": loc.location, "on_hand": loc.on_hand, "reserved": loc.reserved,
                       "safety_stock": loc.safety_stock, "incoming": loc.incoming,
                       "as_of": loc.as_of or never_counted}
                      for loc in levels.locations],
    }


_EVENT_TYPE_BYTES: Final = avro_string(_EVENT_TYPE)


class AtpLevelEncoder:
    """Framed Avro bytes of the AtpLevel `atp_level_datum(levels, cause, ...)` describes, without the dict or fastavro.

    `schema_id`: the registry id of the AtpLevel schema on the output topic. `event_ns` and
    `never_counted`: the namespace of the event ids (uuid5 of "<sku>:<version>") and a location's
    `as_of` before any ERP count. `schema`: the AtpLevel schema the bytes must follow, default this
    build's (`schemas.parsed_schema`, the one registered under that id); CodecMismatch when the
    writer's samples do not come out as fastavro writes them under it."""

    __slots__ = ("_head", "_never_counted", "_ns_bytes", "_source_and_null", "schema_id")

    def __init__(self, schema_id: int, *, event_ns: uuid.UUID, never_counted: datetime,
                 schema: Any = None) -> None:
        timestamp_millis(never_counted)  # fail here, not on the first record, when it is unusable
        # frame, then the start of meta: event_id is always a 36-character UUID string
        self._head = frame(schema_id) + avro_long(36)
        self.schema_id = schema_id
        self._ns_bytes = event_ns.bytes
        self._never_counted = never_counted
        # meta.source and the null meta.source_event_id, written together after meta.recorded_at
        self._source_and_null = avro_string(_SOURCE) + b"\x00"
        verify_writer(f"{__name__}.AtpLevelEncoder", ATP_LEVEL,
                      schemas.parsed_schema(ATP_LEVEL) if schema is None else schema,
                      [(atp_level_datum(lv, c, event_ns=event_ns, never_counted=never_counted),
                        self.encode(lv, c)[FRAME.size:]) for lv, c in _samples()])

    def with_schema_id(self, schema_id: int) -> AtpLevelEncoder:
        """This writer framed with another schema id, without checking it again (the id is not in the body).

        Lets a worker build (and so check) the writer at start, before the registry gave the id."""
        other = copy.copy(self)
        other._head = frame(schema_id) + avro_long(36)
        other.schema_id = schema_id
        return other

    def encode(self, levels: LevelsLike, cause: CauseLike) -> bytes:
        """The framed AtpLevel of a SKU's figures after a change caused by `cause` (see the class)."""
        updated_at = levels.updated_at or cause.occurred_at
        updated = timestamp_millis(updated_at)
        sku = levels.sku
        # codecs.avro.event_uuid5(ns, f"{sku}:{version}") inlined: the call alone cost ~0.09 µs of the
        # ~6.5 µs per record (timeit, 100k records); the property test against uuid.uuid5 covers it
        x = sha1(self._ns_bytes + f"{sku}:{levels.version}".encode()).hexdigest()
        parts = [
            self._head,
            f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{UUID_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}".encode(),
            _EVENT_TYPE_BYTES,
            updated,
            timestamp_millis(cause.recorded_at),
            self._source_and_null,
            avro_optional_string(cause.correlation_id),
            avro_optional_string(cause.event_id),
            avro_string(sku),
            avro_int(levels.on_hand),
            avro_int(levels.reserved),
            avro_int(levels.safety_stock),
            avro_int(levels.incoming),
            avro_int(levels.available),
            avro_long(levels.version),
            updated,
        ]
        locations = levels.locations
        if locations:
            # fastavro writes a non-empty array as one block: its count, the items, then the 0 that ends it
            parts.append(avro_long(len(locations)))
            never_counted = self._never_counted
            for loc in locations:
                parts += (
                    avro_string(loc.location),
                    avro_int(loc.on_hand),
                    avro_int(loc.reserved),
                    avro_int(loc.safety_stock),
                    avro_int(loc.incoming),
                    timestamp_millis(loc.as_of or never_counted),
                )
        parts.append(b"\x00")
        return b"".join(parts)


class _Location(NamedTuple):
    location: str
    on_hand: int
    reserved: int
    safety_stock: int
    incoming: int
    as_of: datetime | None


class _Levels(NamedTuple):
    sku: str
    on_hand: int
    reserved: int
    safety_stock: int
    incoming: int
    available: int
    version: int
    updated_at: datetime | None
    locations: tuple[_Location, ...]


def _samples() -> list[tuple[_Levels, EventMeta]]:
    """Records that touch every field, both branches of every union, and 1-, 2- and multi-byte varints."""
    t = datetime(2026, 11, 23, 6, 0, 0, 123_456, tzinfo=UTC)
    plain = EventMeta(event_id="0b6f4c1e-3c1a-4d7e-9a51-8e4b6c2d7f30", event_type="StockSnapshot",
                      occurred_at=t, recorded_at=t, source="erp")
    full = plain.model_copy(update={"correlation_id": "corr-ß", "recorded_at": datetime(1969, 7, 20, tzinfo=UTC)})
    return [
        (_Levels("SKU-1", 5, 2, 1, 0, 2, 3, None, ()), plain),
        (_Levels("sku-ÄÖ ü/ 7" * 20, 2**31 - 1, -(2**31), 8191, -8193, 64, 2**62, t,
                 (_Location("W1", 1, 2, 3, 4, t), _Location("lager-ü", -65, 2**31 - 1, 0, 0, None))), full),
    ]
