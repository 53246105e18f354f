"""Avro binary primitives shared by the serde and the fast writers (one copy of each).

The functions return `bytes` so writers can collect parts and join them once per record. The
values most figures are (lengths, stock counts, versions) come from a precomputed table, because a
bulk snapshot writes millions of them.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from hashlib import sha1
from typing import Final

__all__ = ["FRAME", "MAGIC", "SMALL", "SMALL_LIMIT", "UUID_VARIANT", "avro_int", "avro_long", "avro_optional_string",
           "avro_string", "event_uuid5", "frame", "timestamp_millis", "zigzag_varint"]

#: Confluent framing: magic byte 0, then the schema id as 4 big-endian unsigned bytes, then the body.
MAGIC: Final = 0
FRAME: Final = struct.Struct(">bI")

_INT_MIN: Final = -(2**31)
_INT_MAX: Final = 2**31 - 1
_LONG_MIN: Final = -(2**63)
_LONG_MAX: Final = 2**63 - 1


def zigzag_varint(n: int) -> bytes:
    """Avro int/long on the wire: zig-zag, then base-128 varint (no range check: see `avro_int`/`avro_long`)."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


#: encodings of -SMALL_LIMIT..SMALL_LIMIT-1 (1 byte for -64..63, 2 bytes for the rest): writers in a
#: loop may index it directly (`SMALL[n] if -SMALL_LIMIT <= n < SMALL_LIMIT else avro_long(n)`).
SMALL_LIMIT: Final = 8192
SMALL: Final[dict[int, bytes]] = {n: zigzag_varint(n) for n in range(-SMALL_LIMIT, SMALL_LIMIT)}


def avro_int(n: int) -> bytes:
    """Avro `int`; ValueError outside its range (fastavro would write a long no reader accepts as an int)."""
    b = SMALL.get(n)
    if b is not None:
        return b
    if not _INT_MIN <= n <= _INT_MAX:
        raise ValueError(f"{n} is outside the Avro int range")
    return zigzag_varint(n)


def avro_long(n: int) -> bytes:
    """Avro `long`; ValueError outside its range."""
    b = SMALL.get(n)
    if b is not None:
        return b
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise ValueError(f"{n} is outside the Avro long range")
    return zigzag_varint(n)


def avro_string(value: str) -> bytes:
    """Avro `string`: the UTF-8 length as a long, then the bytes."""
    b = value.encode()
    return avro_long(len(b)) + b


def avro_optional_string(value: str | None) -> bytes:
    """Avro `["null", "string"]`: branch 0 for None, branch 1 then the string."""
    if value is None:
        return b"\x00"
    return b"\x02" + avro_string(value)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)
#: encoded timestamps by epoch millis: the varint of a current timestamp is 6 bytes, about the
#: costliest part of a record, and a bulk snapshot repeats few instants (its as_of, the cause's
#: recorded_at) over a million records. Bounded; emptied when full.
_MILLIS_CACHE: Final[dict[int, bytes]] = {}
_MILLIS_CACHE_MAX: Final = 4096


def timestamp_millis(value: datetime) -> bytes:
    """Avro `timestamp-millis` of an aware datetime, as fastavro computes it.

    fastavro: `delta = value - epoch; (delta.days * 86400 + delta.seconds) * 1000 +
    int(delta.microseconds / 1000)`; `delta.microseconds` is in 0..999999, so that is the floor of
    the delta in milliseconds (sub-millisecond digits dropped, towards the past also before 1970),
    which is what `timedelta // timedelta` computes in one step. A naive datetime raises ValueError:
    fastavro would read it in the machine's local time zone."""
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value.isoformat()} is naive; event timestamps must be timezone-aware")
    millis = (value - _EPOCH) // _MILLISECOND
    b = _MILLIS_CACHE.get(millis)
    if b is None:
        b = avro_long(millis)
        if len(_MILLIS_CACHE) >= _MILLIS_CACHE_MAX:
            _MILLIS_CACHE.clear()
        _MILLIS_CACHE[millis] = b
    return b


def frame(schema_id: int) -> bytes:
    """The Confluent frame of a record with that schema id; ValueError when the id does not fit 4 bytes."""
    if not 0 <= schema_id < 2**32:
        raise ValueError(f"schema id {schema_id} does not fit the Confluent frame (4 unsigned bytes)")
    return FRAME.pack(MAGIC, schema_id)


#: the UUID variant nibble (RFC 4122: binary 10xx) for each hex digit the hash may have there
UUID_VARIANT: Final = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def event_uuid5(namespace: bytes, name: str) -> str:
    """`str(uuid.uuid5(UUID(bytes=namespace), name))` without building a UUID object (several times faster).

    The SHA-1 of namespace and UTF-8 name, its first 16 bytes as hex with version 5 and the RFC 4122
    variant set, in the usual 8-4-4-4-12 groups. Event ids derived this way are the same on every
    re-send, which makes re-emissions after a crash duplicates downstream."""
    x = sha1(namespace + name.encode()).hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{UUID_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"
