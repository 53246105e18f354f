"""Avro bodies of generated pydantic models, written by a writer compiled from the record's schema.

`AvroSerde.encode` used to dump the model to a dict (`model_dump`) and hand it to fastavro's generic
writer: ~230 µs for an OrderState on this machine, most of it fastavro's per-value logical-type
conversions (~9 µs per decimal) and the dump. The orders worker encodes 4-5 records per order, so
that was the largest single cost of an order (issue 14's profile). `compile_writer` walks the
record's schema once and returns a function that reads the model's attributes directly and joins the
Avro bytes (codecs.avro primitives), a several-fold cut.

Same bytes as fastavro by construction — the writer is derived from the schema itself, not written
by hand for one version of it, so a schema change changes the writer — and checked: every
top-level record's examples are compared with fastavro in tests/unit/test_model_writer.py, and
`AvroSerde` checks each compiled writer once against fastavro on the first record it encodes
(`selfcheck.verify_writer`; a difference refuses to encode rather than write bytes no reader
expects). Values the schema does not take raise ValueError/TypeError like fastavro does (an int out
of range, an unknown enum symbol, a decimal with more digits than its precision or scale).

Schemas it does not compile (a union other than null + one type, `fixed`, or a logical type it
does not know) give None: the serde keeps fastavro for those records.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from shopstream.codecs.avro import avro_long, avro_string, timestamp_millis

__all__ = ["Unsupported", "Writer", "compile_writer"]

#: Appends the Avro encoding of a value to a list of byte strings.
Part = Callable[[Any, list[bytes]], None]
#: Avro body of a model.
Writer = Callable[[Any], bytes]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


class Unsupported(Exception):
    """The schema uses something this compiler does not write (the serde falls back to fastavro)."""


def compile_writer(schema: dict[str, Any]) -> Writer | None:
    """A writer of `schema` (a record, as `schemas.schema_for` gives it: named types inlined once), or None."""
    try:
        part = _compile(schema, {}, schema.get("namespace", ""))
    except Unsupported:
        return None

    def write(model: Any) -> bytes:
        out: list[bytes] = []
        part(model, out)
        return b"".join(out)

    return write


def _fullname(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _compile(node: Any, named: dict[str, Part], namespace: str) -> Part:
    if isinstance(node, list):
        return _union(node, named, namespace)
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return _PRIMITIVES[node]
        full = _fullname(node, namespace)
        if full not in named:
            raise Unsupported(f"unknown named type {node}")
        return _deferred(named, full)
    kind, logical = node.get("type"), node.get("logicalType")
    if logical is not None:
        if logical == "timestamp-millis" and kind == "long":
            return _timestamp
        if logical == "uuid" and kind == "string":
            return _string
        if logical == "decimal" and kind == "bytes":
            return _decimal(int(node["precision"]), int(node.get("scale", 0)))
        raise Unsupported(f"logical type {logical} on {kind}")
    if kind == "record":
        full = _fullname(node["name"], node.get("namespace", namespace))
        ns = full.rpartition(".")[0]
        fields: list[tuple[str, Part]] = []
        record = _record(fields)
        named[full] = record
        fields.extend((f["name"], _compile(f["type"], named, ns)) for f in node["fields"])
        return record
    if kind == "enum":
        full = _fullname(node["name"], node.get("namespace", namespace))
        named[full] = enum = _enum(node["symbols"])
        return enum
    if kind == "array":
        return _array(_compile(node["items"], named, namespace))
    if kind == "map":
        return _map(_compile(node["values"], named, namespace))
    if isinstance(kind, str) and kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    raise Unsupported(f"type {kind}")


def _deferred(named: dict[str, Part], full: str) -> Part:
    # A reference to a named type compiled earlier (or being compiled: a recursive record).
    def part(value: Any, out: list[bytes]) -> None:
        named[full](value, out)
    return part


def _record(fields: list[tuple[str, Part]]) -> Part:
    def part(value: Any, out: list[bytes]) -> None:
        for name, write in fields:
            write(getattr(value, name), out)
    return part


def _union(branches: list[Any], named: dict[str, Part], namespace: str) -> Part:
    if len(branches) != 2 or "null" not in branches:
        raise Unsupported("a union other than null + one type")
    null_index = branches.index("null")
    other = _compile(branches[1 - null_index], named, namespace)
    null_tag, other_tag = avro_long(null_index), avro_long(1 - null_index)

    def part(value: Any, out: list[bytes]) -> None:
        if value is None:
            out.append(null_tag)
        else:
            out.append(other_tag)
            other(value, out)
    return part


def _enum(symbols: list[str]) -> Part:
    index = {s: avro_long(i) for i, s in enumerate(symbols)}

    def part(value: Any, out: list[bytes]) -> None:
        try:
            out.append(index[value])
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a symbol of the enum {symbols}") from None
    return part


def _array(items: Part) -> Part:
    def part(value: Any, out: list[bytes]) -> None:
        if not isinstance(value, list | tuple):
            raise TypeError(f"an Avro array needs a list, not {type(value).__name__}")
        if value:
            out.append(avro_long(len(value)))
            for item in value:
                items(item, out)
        out.append(b"\x00")
    return part


def _map(values: Part) -> Part:
    def part(value: Any, out: list[bytes]) -> None:
        if not isinstance(value, dict):
            raise TypeError(f"an Avro map needs a dict, not {type(value).__name__}")
        if value:
            out.append(avro_long(len(value)))
            for key, item in value.items():
                _string(key, out)
                values(item, out)
        out.append(b"\x00")
    return part


def _null(value: Any, out: list[bytes]) -> None:
    if value is not None:
        raise TypeError(f"{value!r} is not null")


def _boolean(value: Any, out: list[bytes]) -> None:
    if value is True:
        out.append(b"\x01")
    elif value is False:
        out.append(b"\x00")
    else:
        raise TypeError(f"{value!r} is not a boolean")


def _int(value: Any, out: list[bytes]) -> None:
    if type(value) is not int or not _INT_MIN <= value <= _INT_MAX:
        raise ValueError(f"{value!r} is not an Avro int")
    out.append(avro_long(value))


def _long(value: Any, out: list[bytes]) -> None:
    if type(value) is not int or not _LONG_MIN <= value <= _LONG_MAX:
        raise ValueError(f"{value!r} is not an Avro long")
    out.append(avro_long(value))


def _string(value: Any, out: list[bytes]) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    out.append(avro_string(value))


def _bytes(value: Any, out: list[bytes]) -> None:
    if not isinstance(value, bytes | bytearray):
        raise TypeError(f"{value!r} is not bytes")
    out.append(avro_long(len(value)))
    out.append(bytes(value))


def _float(value: Any, out: list[bytes]) -> None:
    out.append(_FLOAT.pack(value))


def _double(value: Any, out: list[bytes]) -> None:
    out.append(_DOUBLE.pack(value))


def _timestamp(value: Any, out: list[bytes]) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{value!r} is not a datetime")
    out.append(timestamp_millis(value))


def _decimal(precision: int, scale: int) -> Part:
    """fastavro's `prepare_bytes_decimal`: the unscaled value, big-endian two's complement, minimal length."""
    def part(value: Any, out: list[bytes]) -> None:
        if not isinstance(value, Decimal):
            raise TypeError(f"{value!r} is not a Decimal")
        sign, digits, exp = value.as_tuple()
        if len(digits) > precision:
            raise ValueError("The decimal precision is bigger than allowed by schema")
        if not isinstance(exp, int):
            raise ValueError(f"{value} is not a finite decimal")
        delta = exp + scale
        if delta < 0:
            raise ValueError("Scale provided in schema does not match the decimal")
        unscaled = 0
        for digit in digits:
            unscaled = unscaled * 10 + digit
        unscaled *= 10**delta
        size = (unscaled.bit_length() + 8) // 8
        if sign:
            unscaled = -unscaled
        data = unscaled.to_bytes(size, byteorder="big", signed=True)
        out.append(avro_long(len(data)))
        out.append(data)
    return part


_PRIMITIVES: dict[str, Part] = {"null": _null, "boolean": _boolean, "int": _int, "long": _long, "string": _string,
                                "bytes": _bytes, "float": _float, "double": _double}
