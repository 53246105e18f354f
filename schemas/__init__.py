"""The canonical Avro contract: one `*.avsc` file per named type, all in namespace `io.shopstream.events`.

The `.avsc` files next to this module are the single source of truth. Files reference each other by
full name; `schema_for` inlines every referenced type at its first use so the result is standalone
(registrable on a Confluent registry, parseable by `fastavro.parse_schema`). The pydantic models in
`models.py` are generated from the same files by `python -m shopstream.schemas.codegen`.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastavro

if TYPE_CHECKING:
    from pydantic import BaseModel

NAMESPACE = "io.shopstream.events"
META_TYPE = f"{NAMESPACE}.EventMeta"

__all__ = [
    "META_TYPE",
    "NAMESPACE",
    "avsc_dir",
    "from_avro",
    "fullname",
    "load_named_types",
    "parsed_schema",
    "schema_for",
    "to_avro",
    "top_level_records",
]


def avsc_dir() -> Path:
    """The folder holding the `.avsc` files (this package's folder, editable or installed)."""
    return Path(__file__).resolve().parent


def fullname(name: str) -> str:
    """`io.shopstream.events.X` for `X`; full names pass through unchanged."""
    return name if "." in name else f"{NAMESPACE}.{name}"


@cache
def _load(folder: str) -> dict[str, dict[str, Any]]:
    types: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(folder).glob("*.avsc")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        name = raw.get("name")
        if raw.get("namespace") != NAMESPACE or name != path.stem:
            raise ValueError(f"{path.name}: expected name {path.stem!r} in namespace {NAMESPACE!r}")
        types[f"{NAMESPACE}.{name}"] = raw
    return types


def load_named_types(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Full name -> raw JSON of each `.avsc` file (of `folder`, default: the current contract).

    Returns deep copies, so callers may modify them freely.
    """
    return copy.deepcopy(_load(str(folder or avsc_dir())))


def _inline(node: Any, types: dict[str, dict[str, Any]], defined: set[str]) -> Any:
    """`node` with every named-type reference replaced by its definition at first use (Avro parse order)."""
    if isinstance(node, str):
        name = fullname(node)
        if name not in types:
            return node  # a primitive type name
        if name in defined:
            return name
        return _inline(types[name], types, defined)
    if isinstance(node, list):  # a union
        return [_inline(branch, types, defined) for branch in node]
    if not isinstance(node, dict):
        raise TypeError(f"not an Avro schema node: {node!r}")
    out = dict(node)
    kind = node.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        name = node["name"]
        defined.add(name if "." in name else f"{node.get('namespace', NAMESPACE)}.{name}")
    if kind in ("record", "error"):
        out["fields"] = [{**fld, "type": _inline(fld["type"], types, defined)} for fld in node["fields"]]
    elif kind == "array":
        out["items"] = _inline(node["items"], types, defined)
    elif kind == "map":
        out["values"] = _inline(node["values"], types, defined)
    elif isinstance(kind, dict | list) or (isinstance(kind, str) and fullname(kind) in types):
        out["type"] = _inline(kind, types, defined)
    return out


def schema_for(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The standalone schema of `name` (full or short): all referenced named types inlined at first use."""
    types = _load(str(folder or avsc_dir()))
    key = fullname(name)
    if key not in types:
        raise KeyError(f"no Avro type named {key}")
    result: dict[str, Any] = copy.deepcopy(_inline(key, types, set()))
    return result


@cache
def parsed_schema(name: str) -> Any:
    """`schema_for(name)` parsed by fastavro (cached), for `schemaless_writer` / `schemaless_reader`."""
    return fastavro.parse_schema(schema_for(name), named_schemas={})


def top_level_records(folder: Path | None = None) -> list[str]:
    """Full names of the records published to topics: those whose first field is `meta: EventMeta`."""
    return sorted(
        key
        for key, raw in _load(str(folder or avsc_dir())).items()
        if raw.get("type") == "record"
        and raw["fields"]
        and raw["fields"][0]["name"] == "meta"
        and fullname(raw["fields"][0]["type"]) == META_TYPE
    )


def to_avro(model: BaseModel) -> dict[str, Any]:
    """The dict fastavro writes for a generated model (python-mode dump: Decimal, datetime, str)."""
    return model.model_dump(mode="python")


def from_avro(name: str, data: dict[str, Any]) -> BaseModel:
    """The generated model of record `name` (full or short) validated from a fastavro-decoded dict."""
    from shopstream.schemas.models import RECORDS  # lazy: codegen must work while models.py is stale

    try:
        model = RECORDS[fullname(name)]
    except KeyError:
        raise KeyError(f"no model for Avro record {fullname(name)}") from None
    return model.model_validate(data)
