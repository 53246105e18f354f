"""Avro BACKWARD compatibility by the Avro schema-resolution rules (pure, no I/O).

`backward_incompatibilities(reader, writer)` answers: can data written with `writer` (the OLD
schema) be read with `reader` (the NEW schema)? It returns one message per problem, each
starting with a path such as `OrderPlaced.total.currency` (`[]` marks array items, `{}` map
values). FORWARD is the same check with the arguments swapped; FULL is both.

Logical types are judged by their underlying type, except that two decimals must agree on
precision and scale (the bytes mean different numbers otherwise).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InvalidSchemaError", "backward_incompatibilities", "is_backward_compatible", "validate_schema"]

SchemaInput = dict[str, Any] | str | list[Any]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})

# writer type -> reader types that can read it (besides itself), per the Avro specification
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


class InvalidSchemaError(ValueError):
    """The input is not an Avro schema this checker can resolve."""


@dataclass(eq=False)
class _Field:
    name: str
    aliases: list[str]
    type: _Node
    has_default: bool


@dataclass(eq=False)
class _Node:
    """One resolved schema node; named types are shared objects, so recursion is a cycle."""

    type: str  # primitive name, record, enum, fixed, array, map, union, or ref
    name: str = ""  # full name for named types and refs
    raw: str = ""  # a ref's name as written, tried when the namespaced name is unknown
    aliases: list[str] = field(default_factory=list)
    fields: list[_Field] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    enum_default: str | None = None
    size: int = 0
    items: _Node | None = None  # array items / map values
    branches: list[_Node] = field(default_factory=list)
    logical: str | None = None
    precision: int | None = None
    scale: int = 0

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def _fullname(name: str, namespace: str) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _namespace_of(fullname: str) -> str:
    return fullname.rsplit(".", 1)[0] if "." in fullname else ""


class _Parser:
    """Turns schema JSON into `_Node`s and remembers named types by full name."""

    def __init__(self) -> None:
        self.names: dict[str, _Node] = {}

    def parse(self, schema: Any, namespace: str = "") -> _Node:
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return _Node(type=schema)
            return _Node(type="ref", name=_fullname(schema, namespace), raw=schema)
        if isinstance(schema, list):
            return _Node(type="union", branches=[self.parse(b, namespace) for b in schema])
        if not isinstance(schema, dict) or "type" not in schema:
            raise InvalidSchemaError(f"not an Avro schema: {schema!r}")
        kind = schema["type"]
        if not isinstance(kind, str):  # {"type": {...}} or {"type": [...]} wraps a schema
            return self.parse(kind, namespace)
        if kind in NAMED:
            return self._named(schema, kind, namespace)
        if kind == "array":
            return _Node(type="array", items=self.parse(schema.get("items"), namespace))
        if kind == "map":
            return _Node(type="map", items=self.parse(schema.get("values"), namespace))
        node = self.parse(kind, namespace)
        if node.type in PRIMITIVES:
            self._logical(node, schema)
        return node

    def _named(self, schema: dict[str, Any], kind: str, namespace: str) -> _Node:
        if not isinstance(schema.get("name"), str):
            raise InvalidSchemaError(f"{kind} without a name")
        full = _fullname(schema["name"], schema.get("namespace") or namespace)
        inner_ns = _namespace_of(full)
        aliases = [_fullname(a, inner_ns) for a in schema.get("aliases", [])]
        node = _Node(type="record" if kind == "error" else kind, name=full, aliases=aliases)
        # registered before the fields are parsed so that a field may refer to its own record
        self.names[full] = node
        if kind in ("record", "error"):
            if not isinstance(schema.get("fields"), list):
                raise InvalidSchemaError(f"record {full} needs a list of fields")
            for f in schema["fields"]:
                node.fields.append(
                    _Field(
                        name=f["name"],
                        aliases=list(f.get("aliases", [])),
                        type=self.parse(f["type"], inner_ns),
                        has_default="default" in f,
                    )
                )
        elif kind == "enum":
            node.symbols = list(schema.get("symbols", []))
            node.enum_default = schema.get("default")
        else:
            node.size = int(schema.get("size", 0))
            self._logical(node, schema)
        return node

    @staticmethod
    def _logical(node: _Node, schema: dict[str, Any]) -> None:
        node.logical = schema.get("logicalType")
        if node.logical == "decimal":
            node.precision = schema.get("precision")
            node.scale = int(schema.get("scale", 0))

    def parse_all(self, schema: Any) -> _Node:
        """Parse a whole schema and check that every type name it uses is defined."""
        root = self.parse(schema)
        pending, seen = [root], set()
        while pending:
            node = self.resolve(pending.pop())
            if id(node) in seen:
                continue
            seen.add(id(node))
            pending += [f.type for f in node.fields] + node.branches + ([node.items] if node.items else [])
        return root

    def resolve(self, node: _Node) -> _Node:
        """Follow a named-type reference to its definition."""
        if node.type != "ref":
            return node
        target = self.names.get(node.name) or self.names.get(node.raw)
        if target is None:
            raise InvalidSchemaError(f"unknown type name {node.name!r}")
        return target


def _load(schema: SchemaInput) -> Any:
    if isinstance(schema, str):
        try:
            return json.loads(schema)
        except json.JSONDecodeError:
            return schema  # a bare type name such as `string` or `com.example.Order`
    return schema


def _describe(node: _Node) -> str:
    if node.type in NAMED:
        return f"{node.type} {node.name}"
    if node.type == "ref":
        return node.name
    if node.type == "union":
        return "union [" + ", ".join(_describe(b) for b in node.branches) + "]"
    return node.type


class _Checker:
    def __init__(self, reader: _Parser, writer: _Parser) -> None:
        self.reader = reader
        self.writer = writer
        # pairs of named types being compared further up the stack: meeting one again means
        # a recursive type, which is compatible if everything else along the cycle is
        self.in_progress: set[tuple[int, int]] = set()

    def check(self, r: _Node, w: _Node, path: str) -> list[str]:
        r = self.reader.resolve(r)
        w = self.writer.resolve(w)
        if w.type == "union":  # every branch the writer may have used must be readable
            return [msg for branch in w.branches for msg in self.check(r, branch, path)]
        if r.type == "union":
            failures = []
            for branch in r.branches:
                messages = self.check(branch, w, path)
                if not messages:
                    return []
                failures.append((self.reader.resolve(branch), messages))
            # a branch of the writer's own kind and name is the one meant: its reasons say more
            for branch, messages in failures:
                if branch.type == w.type and branch.short_name == w.short_name:
                    return messages
            return [f"{path}: no branch of reader {_describe(r)} can read writer {_describe(w)}"]
        if r.type in NAMED and w.type in NAMED:
            key = (id(r), id(w))
            if key in self.in_progress:
                return []
            self.in_progress.add(key)
            try:
                return self._named(r, w, path)
            finally:
                self.in_progress.discard(key)
        if r.type == w.type == "array" or r.type == w.type == "map":
            assert r.items is not None and w.items is not None
            return self.check(r.items, w.items, path + ("[]" if r.type == "array" else "{}"))
        if w.type in PRIMITIVES and (r.type == w.type or r.type in PROMOTIONS.get(w.type, ())):
            return self._decimal(r, w, path)
        return [f"{path}: reader type {_describe(r)} cannot read writer type {_describe(w)}"]

    def _named(self, r: _Node, w: _Node, path: str) -> list[str]:
        if r.type != w.type:
            return [f"{path}: reader type {_describe(r)} cannot read writer type {_describe(w)}"]
        if r.short_name != w.short_name and w.name not in r.aliases:
            return [f"{path}: reader {r.type} name {r.name} does not match writer {w.name} (no alias)"]
        if r.type == "record":
            return self._record(r, w, path)
        if r.type == "enum":
            missing = [s for s in w.symbols if s not in r.symbols]
            if missing and r.enum_default is None:
                return [f"{path}: enum symbols {missing} missing in reader, which has no default"]
            return []
        if r.size != w.size:
            return [f"{path}: fixed size {r.size} cannot read writer fixed size {w.size}"]
        return self._decimal(r, w, path)

    def _record(self, r: _Node, w: _Node, path: str) -> list[str]:
        by_name = {f.name: f for f in w.fields}
        messages: list[str] = []
        for rf in r.fields:
            wf = next((by_name[n] for n in [rf.name, *rf.aliases] if n in by_name), None)
            if wf is None:
                if not rf.has_default:
                    messages.append(f"{path}.{rf.name}: field without default added")
                continue
            messages.extend(self.check(rf.type, wf.type, f"{path}.{rf.name}"))
        return messages

    @staticmethod
    def _decimal(r: _Node, w: _Node, path: str) -> list[str]:
        if r.logical == w.logical == "decimal" and (r.precision, r.scale) != (w.precision, w.scale):
            return [f"{path}: decimal({r.precision},{r.scale}) cannot read writer decimal({w.precision},{w.scale})"]
        return []


def backward_incompatibilities(reader: SchemaInput, writer: SchemaInput) -> list[str]:
    """Reasons why `reader` (new) cannot read data written with `writer` (old); [] if it can.

    Raises InvalidSchemaError when a schema cannot be resolved (e.g. an unknown type name).
    """
    rp, wp = _Parser(), _Parser()
    r_root, w_root = rp.parse_all(_load(reader)), wp.parse_all(_load(writer))
    root = rp.resolve(r_root)
    path = root.short_name if root.type in NAMED else root.type
    return _Checker(rp, wp).check(r_root, w_root, path)


def validate_schema(schema: SchemaInput) -> None:
    """Raise InvalidSchemaError unless this checker can resolve every part of `schema`."""
    _Parser().parse_all(_load(schema))


def is_backward_compatible(reader: SchemaInput, writer: SchemaInput) -> bool:
    """True when `reader` (new) can read everything written with `writer` (old)."""
    return not backward_incompatibilities(reader, writer)
