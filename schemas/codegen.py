"""Generate `models.py` (pydantic v2 models) from the `.avsc` files.

    python -m shopstream.schemas.codegen           # (re)write schemas/models.py
    python -m shopstream.schemas.codegen --check   # exit 1 when models.py is stale

Mapping: record -> frozen `BaseModel` of the same name (extra fields forbidden, `AVRO_NAME` = full
name); enum -> `Literal[...]` alias of the same name; decimal -> `Decimal` limited to the schema's
precision and scale (floats rejected); timestamp-millis -> tz-aware `datetime` normalised to UTC and
truncated to milliseconds (naive datetimes are rejected); uuid -> canonical `str`; int/long -> `int`
range-checked; `["null", T]` -> `T | None`; array/map -> `list`/`dict` (`default_factory` for `[]`/`{}`);
a field-level `"pattern"` attribute on a string field (Avro ignores it) -> a regex constraint.
Only the Avro features the contract uses are supported; anything else fails loudly here.
"""

from __future__ import annotations

import argparse
import json
import keyword
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shopstream.schemas import NAMESPACE, avsc_dir, fullname, load_named_types

LINE = 110
_PRIMITIVES = {"string": "str", "boolean": "bool", "int": "AvroInt", "long": "AvroLong",
               "float": "float", "double": "float", "bytes": "bytes", "null": "None"}

HEADER = '''\
# GENERATED FILE, DO NOT EDIT: written by `python -m shopstream.schemas.codegen` from schemas/*.avsc.
# Edit the .avsc files and re-run the generator (tests/unit/test_schemas.py fails when this is stale).
"""Pydantic v2 models of the canonical Avro records (namespace {namespace})."""

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


def _utc_millis(value: datetime) -> datetime:
    """Timestamps must be tz-aware; stored as UTC with millisecond precision (what Avro keeps)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (a naive datetime is ambiguous)")
    if value.tzinfo is UTC and not value.microsecond % 1000:  # already normalised (every derived record's)
        return value
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


_CANONICAL_UUID = re.compile(r"[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}")


def _uuid_str(value: Any) -> Any:
    """Canonical lower-case UUID string from a UUID or a string; anything else fails validation."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        if _CANONICAL_UUID.fullmatch(value):  # already canonical (every id shopstream derives): as is
            return value
        return str(uuid.UUID(value))
    return value


def _no_float(value: Any) -> Any:
    """Exact decimals only: a float has already lost the amount."""
    if isinstance(value, float):
        raise ValueError("decimal values must not be floats; pass a Decimal, int or str")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc_millis)]
UuidStr = Annotated[str, BeforeValidator(_uuid_str)]
AvroInt = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
AvroLong = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
'''

_RESERVED = set(dir(BaseModel)) | {"AVRO_NAME", "model_config"}
_HELPERS = {"UtcDatetime", "UuidStr", "AvroInt", "AvroLong", "RECORDS", "Annotated", "Any", "ClassVar",
            "Literal", "Decimal", "BaseModel", "ConfigDict", "Field", "UTC", "datetime", "uuid", "re"}


def _short(name: str) -> str:
    return fullname(name).rsplit(".", 1)[1]


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, LINE - len(indent) - 2, initial_indent=f"{indent}# ",
                         subsequent_indent=f"{indent}# ")


class _Gen:
    def __init__(self, types: dict[str, dict[str, Any]]) -> None:
        self.types = types
        self.decimals: set[tuple[int, int]] = set()
        self.done: set[str] = set()
        self.order: list[str] = []

    def ref(self, name: str) -> str:
        key = fullname(name)
        if key not in self.types:
            raise ValueError(f"unknown Avro type {name!r}")
        if self.types[key]["type"] == "record":
            self.visit(key)
        return _short(key)

    def py_type(self, node: Any) -> str:
        """Python annotation for an Avro type node."""
        if isinstance(node, str):
            return _PRIMITIVES[node] if node in _PRIMITIVES else self.ref(node)
        if isinstance(node, list):
            branches = [b for b in node if b != "null"]
            if len(branches) != 1 or len(node) != 2:
                raise ValueError(f"only [\"null\", T] unions are supported, got {node!r}")
            return f"{self.py_type(branches[0])} | None"
        kind, logical = node.get("type"), node.get("logicalType")
        if kind == "array":
            return f"list[{self.py_type(node['items'])}]"
        if kind == "map":
            return f"dict[str, {self.py_type(node['values'])}]"
        if logical == "decimal" and kind == "bytes":
            self.decimals.add((int(node["precision"]), int(node.get("scale", 0))))
            return f"Decimal{node['precision']}x{node.get('scale', 0)}"
        if logical == "timestamp-millis" and kind == "long":
            return "UtcDatetime"
        if logical == "uuid" and kind == "string":
            return "UuidStr"
        if kind in ("record", "enum", "fixed"):
            raise ValueError("define named types in their own .avsc file and reference them by name")
        if logical is None and isinstance(kind, str):
            return self.py_type(kind)
        raise ValueError(f"unsupported Avro type {node!r}")

    def default(self, fld: dict[str, Any]) -> str:
        if "default" not in fld:
            return ""
        value = fld["default"]
        if value is None:
            return " = None"
        if value == []:
            return " = Field(default_factory=list)"
        if value == {}:
            return " = Field(default_factory=dict)"
        if isinstance(value, bool | int | str):
            return f" = {value!r}"
        raise ValueError(f"{fld['name']}: unsupported default {value!r}")

    def visit(self, key: str) -> None:
        if key in self.done:
            return
        self.done.add(key)
        for fld in self.types[key]["fields"]:
            self.py_type(fld["type"])  # emits dependencies first
        self.order.append(key)

    def record(self, key: str) -> list[str]:
        raw = self.types[key]
        lines = ["", "", f"class {raw['name']}(BaseModel):"]
        doc = (raw.get("doc") or f"Avro record {key}.").replace('"""', "'''").replace("\\", "/")
        if len(doc) + 10 <= LINE:
            lines += [f'    """{doc}"""', ""]
        else:
            wrapped = textwrap.wrap(doc, LINE - 8, initial_indent="    ", subsequent_indent="    ")
            lines += ['    """', *wrapped, '    """', ""]
        lines += ['    model_config = ConfigDict(frozen=True, extra="forbid")',
                  f'    AVRO_NAME: ClassVar[str] = "{key}"', ""]
        for fld in raw["fields"]:
            name = fld["name"]
            if name in _RESERVED or keyword.iskeyword(name) or name.startswith("_"):
                raise ValueError(f"{key}.{name}: field name clashes with pydantic/Python")
            if fld.get("doc"):
                lines += _comment(fld["doc"], "    ")
            annotation = self.py_type(fld["type"])
            if "pattern" in fld:  # a field-level extra attribute: Avro ignores it, the model enforces it
                if annotation not in ("str", "str | None"):
                    raise ValueError(f"{key}.{name}: pattern is only supported on string fields")
                constrained = f"Annotated[str, Field(pattern={json.dumps(fld['pattern'])})]"
                annotation = annotation.replace("str", constrained, 1)
            lines.append(f"    {name}: {annotation}{self.default(fld)}")
        return lines

    @staticmethod
    def enum(raw: dict[str, Any]) -> list[str]:
        lines = ["", "", *_comment(raw.get("doc") or f"Avro enum {raw['name']}.", "")]
        one = f"{raw['name']} = Literal[{', '.join(json.dumps(s) for s in raw['symbols'])}]"
        if len(one) <= LINE:
            return [*lines, one]
        return [*lines, f"{raw['name']} = Literal[", *(f'    "{s}",' for s in raw["symbols"]), "]"]


def render(types: dict[str, dict[str, Any]] | None = None) -> str:
    """The source of `models.py` for `types` (default: the current `.avsc` files)."""
    types = load_named_types() if types is None else types
    for key in types:
        if _short(key) in _HELPERS or _short(key).startswith("Decimal"):
            raise ValueError(f"{key}: name clashes with a helper of the generated module")
    gen = _Gen(types)
    enums = sorted(k for k, t in types.items() if t["type"] == "enum")
    for key in sorted(k for k, t in types.items() if t["type"] == "record"):
        gen.visit(key)
    other = set(types) - set(enums) - gen.done
    if other:
        raise ValueError(f"unsupported named types: {sorted(other)}")
    body: list[str] = []
    for key in enums:
        body += gen.enum(types[key])
    for key in gen.order:
        body += gen.record(key)
    out = HEADER.format(namespace=NAMESPACE).splitlines()
    for precision, scale in sorted(gen.decimals):
        out.append(f"Decimal{precision}x{scale} = Annotated[Decimal, BeforeValidator(_no_float), "
                   f"Field(max_digits={precision}, decimal_places={scale})]")
    out += body
    out += ["", "", "RECORDS: dict[str, type[BaseModel]] = {"]
    out += [f'    "{key}": {_short(key)},' for key in sorted(gen.order)]
    out += ["}", ""]
    return "\n".join(out)


def models_path() -> Path:
    """Where the generated module lives."""
    return avsc_dir() / "models.py"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m shopstream.schemas.codegen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if models.py is not up to date")
    parser.add_argument("--output", type=Path, default=None, help="write here instead of schemas/models.py")
    args = parser.parse_args(argv)
    target: Path = args.output or models_path()
    source = render()
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if args.check:
        if current != source:
            print(f"{target} is stale: run python -m shopstream.schemas.codegen", file=sys.stderr)
            return 1
        return 0
    if current != source:
        target.write_text(source, encoding="utf-8")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
