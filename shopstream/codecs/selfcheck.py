"""The one self-check policy of the fast writers: same bytes as fastavro on samples, or refuse to start.

A fast writer knows one schema by heart. If the schema changes (a field added, a union reordered, a
type widened into other bytes) and the writer is not updated, its output would be records no reader
decodes correctly — silently, on the hottest path. So every writer, when it is built, encodes sample
records that exercise each field (every union branch, edge values, non-ASCII text) and hands them to
`verify_writer` together with the datum fastavro's generic writer takes for the same record; any
difference, or a datum fastavro cannot write, raises `CodecMismatch` and the process does not start.
Refusing is deliberate: a fallback to the generic writer would hide the drift and cost a
multiple of the CPU, which on a 1M-SKU snapshot is the difference between seconds and minutes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

__all__ = ["CodecMismatch", "fastavro_body", "verify_writer"]


class CodecMismatch(RuntimeError):
    """A fast writer's bytes differ from fastavro's under the schema it must follow: it refuses to start."""


def fastavro_body(schema: Any, datum: Any) -> bytes:
    """The Avro body fastavro's generic writer produces for `datum` under a parsed schema (the reference)."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, datum)
    return buf.getvalue()


def _describe(schema: Any) -> str:
    """The schema named for an operator: its record name and Rabin fingerprint (as the registry shows it)."""
    name = _full_name(schema) or "?"
    try:
        return f"{name} (fingerprint {fingerprint(to_parsing_canonical_form(schema), 'CRC-64-AVRO')})"
    except Exception:  # a schema fastavro cannot even canonicalise: show its JSON
        return f"{name} ({json.dumps(schema, default=str)[:200]})"


def _full_name(schema: Any) -> str:
    """The full name of a record schema, parsed (name already full) or plain JSON (name + namespace)."""
    if not isinstance(schema, dict):
        return ""
    name = str(schema.get("name", ""))
    return name if "." in name or not schema.get("namespace") else f"{schema['namespace']}.{name}"


def verify_writer(writer: str, record: str, schema: Any, samples: Iterable[tuple[Any, bytes]]) -> None:
    """Raise CodecMismatch unless, for every (datum, fast bytes) sample, fastavro writes exactly those bytes.

    `writer`: the fast writer's name, for the message; `record`: the full record name it writes;
    `schema`: the parsed schema the bytes must follow (a schema naming another record is refused too:
    the writer would be registered under the wrong subject)."""
    if _full_name(schema) != record:
        raise CodecMismatch(f"{writer} writes {record}, but the schema it was given is {_describe(schema)}; "
                            f"refusing to start")
    for i, (datum, fast) in enumerate(samples):
        try:
            expected = fastavro_body(schema, datum)
        except Exception as exc:  # fastavro raises several unrelated types on a datum the schema rejects
            raise CodecMismatch(
                f"{writer}: the {record} schema {_describe(schema)} no longer takes the writer's sample {i} "
                f"({type(exc).__name__}: {exc}); update {writer} for the schema; refusing to start") from exc
        if fast != expected:
            at = next((k for k, (a, b) in enumerate(zip(fast, expected, strict=False)) if a != b),
                      min(len(fast), len(expected)))
            raise CodecMismatch(
                f"{writer} writes {record} sample {i} differently from fastavro under schema {_describe(schema)} "
                f"(first difference at byte {at}, {len(fast)} vs {len(expected)} bytes): the schema changed "
                f"and {writer} was not updated; refusing to start")
