"""Avro BACKWARD compatibility (reader = new schema, writer = old schema) as a table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shopstream.dev.registry.compat import (
    InvalidSchemaError,
    backward_incompatibilities,
    is_backward_compatible,
)


def rec(*fields: dict[str, Any], name: str = "OrderPlaced", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "shopstream", "fields": list(fields), **extra}


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "Status", "symbols": list(symbols), **extra}


def money(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Money", "fields": list(fields)}


def dec(precision: int, scale: int) -> dict[str, Any]:
    return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}


LINKED = rec(f("value", "int"), f("next", ["null", "Node"]), name="Node")
LINKED_NEW = rec(f("value", "long"), f("next", ["null", "Node"]), f("tag", "string", default=""), name="Node")
LINKED_BAD = rec(f("value", "int"), f("next", ["null", "Node"]), f("tag", "string"), name="Node")

# (id, reader/new, writer/old)
COMPATIBLE = [
    ("same primitive", "string", "string"),
    ("int to long", "long", "int"),
    ("int to float", "float", "int"),
    ("int to double", "double", "int"),
    ("long to double", "double", "long"),
    ("float to double", "double", "float"),
    ("string to bytes", "bytes", "string"),
    ("bytes to string", "string", "bytes"),
    ("identical record", rec(f("id", "string")), rec(f("id", "string"))),
    ("field with default added", rec(f("id", "string"), f("note", "string", default="")), rec(f("id", "string"))),
    ("nullable field added", rec(f("id", "string"), f("n", ["null", "int"], default=None)), rec(f("id", "string"))),
    ("field removed", rec(f("id", "string")), rec(f("id", "string"), f("old", "int"))),
    ("field renamed with alias", rec(f("sku", "string", aliases=["item"])), rec(f("item", "string"))),
    (
        "record renamed with alias",
        rec(f("id", "int"), name="Order2", aliases=["shopstream.OrderPlaced"]),
        rec(f("id", "int")),
    ),
    ("field promoted", rec(f("qty", "long")), rec(f("qty", "int"))),
    ("field reordered", rec(f("b", "int"), f("a", "int")), rec(f("a", "int"), f("b", "int"))),
    (
        "nested record field with default",
        rec(f("total", money(f("amount", "long"), f("currency", "string", default="EUR")))),
        rec(f("total", money(f("amount", "long")))),
    ),
    ("non-union to union", ["null", "string"], "string"),
    ("non-union to union via promotion", ["null", "long"], "int"),
    ("union widened", ["null", "string", "int"], ["null", "string"]),
    ("union branch promoted", ["null", "long"], ["null", "int"]),
    ("union to wider non-union", "double", ["int", "long", "float"]),
    ("enum symbol added", enum("A", "B", "C"), enum("A", "B")),
    ("enum symbol removed with default", enum("A", "B", default="A"), enum("A", "B", "C")),
    ("array items promoted", {"type": "array", "items": "long"}, {"type": "array", "items": "int"}),
    ("map values promoted", {"type": "map", "values": "double"}, {"type": "map", "values": "float"}),
    ("fixed same", {"type": "fixed", "name": "H", "size": 16}, {"type": "fixed", "name": "H", "size": 16}),
    ("logical timestamp over long", {"type": "long", "logicalType": "timestamp-millis"}, "long"),
    ("logical dropped", "long", {"type": "long", "logicalType": "timestamp-millis"}),
    ("int to timestamp-millis long", {"type": "long", "logicalType": "timestamp-millis"}, "int"),
    ("decimal same", dec(10, 2), dec(10, 2)),
    ("decimal over plain bytes", dec(10, 2), "bytes"),
    ("uuid string", {"type": "string", "logicalType": "uuid"}, "string"),
    ("recursive type evolved", LINKED_NEW, LINKED),
    (
        "named reference reused",
        rec(f("a", money(f("amount", "long"))), f("b", "Money")),
        rec(f("a", money(f("amount", "int"))), f("b", "Money")),
    ),
    (
        "namespaced reference",
        rec(f("m", money(f("amount", "long"))), f("n", "shopstream.Money")),
        rec(f("m", money(f("amount", "long"))), f("n", "Money")),
    ),
    (
        "error type as record",
        {"type": "error", "name": "E", "fields": []},
        {"type": "error", "name": "E", "fields": []},
    ),
]

INCOMPATIBLE = [
    ("long to int", "int", "long", "int: reader type int cannot read writer type long"),
    ("double to float", "float", "double", "float: reader type float cannot read"),
    ("string to int", "int", "string", "int: reader type int cannot read writer type string"),
    (
        "field without default added",
        rec(f("id", "string"), f("note", "string")),
        rec(f("id", "string")),
        "OrderPlaced.note: field without default added",
    ),
    (
        "nested field without default",
        rec(f("total", money(f("amount", "long"), f("currency", "string")))),
        rec(f("total", money(f("amount", "long")))),
        "OrderPlaced.total.currency: field without default added",
    ),
    (
        "optional nested record names the field",
        rec(f("total", ["null", money(f("amount", "long"), f("currency", "string"))], default=None)),
        rec(f("total", ["null", money(f("amount", "long"))], default=None)),
        "OrderPlaced.total.currency: field without default added",
    ),
    ("field narrowed", rec(f("qty", "int")), rec(f("qty", "long")), "OrderPlaced.qty: reader type int"),
    ("record renamed", rec(f("id", "int"), name="Other"), rec(f("id", "int")), "does not match writer"),
    ("union narrowed", ["null", "string"], ["null", "string", "int"], "no branch of reader union"),
    ("union to non-union", "string", ["null", "string"], "reader type string cannot read writer type null"),
    ("enum symbol removed", enum("A", "B"), enum("A", "B", "C"), "Status: enum symbols ['C'] missing"),
    ("enum renamed", {**enum("A"), "name": "Other"}, enum("A"), "does not match writer"),
    (
        "array items narrowed",
        rec(f("xs", {"type": "array", "items": "int"})),
        rec(f("xs", {"type": "array", "items": "long"})),
        "OrderPlaced.xs[]: reader type int",
    ),
    (
        "array of records",
        rec(f("lines", {"type": "array", "items": money(f("a", "int"), f("c", "string"))})),
        rec(f("lines", {"type": "array", "items": money(f("a", "int"))})),
        "OrderPlaced.lines[].c: field without default added",
    ),
    (
        "map values narrowed",
        {"type": "map", "values": "int"},
        {"type": "map", "values": "string"},
        "map{}: reader type int",
    ),
    ("array to map", {"type": "map", "values": "int"}, {"type": "array", "items": "int"}, "cannot read"),
    (
        "fixed size",
        {"type": "fixed", "name": "H", "size": 32},
        {"type": "fixed", "name": "H", "size": 16},
        "fixed size 32",
    ),
    (
        "fixed renamed",
        {"type": "fixed", "name": "G", "size": 16},
        {"type": "fixed", "name": "H", "size": 16},
        "does not match",
    ),
    ("decimal scale", dec(10, 3), dec(10, 2), "decimal(10,3) cannot read writer decimal(10,2)"),
    ("decimal precision", dec(12, 2), dec(10, 2), "decimal(12,2)"),
    ("timestamp from string", {"type": "long", "logicalType": "timestamp-millis"}, "string", "cannot read"),
    ("recursive type broken", LINKED_BAD, LINKED, "Node.tag: field without default added"),
    ("record to primitive", "string", rec(f("id", "int")), "cannot read writer type record"),
]


@pytest.mark.parametrize(("reader", "writer"), [c[1:] for c in COMPATIBLE], ids=[c[0] for c in COMPATIBLE])
def test_compatible(reader: Any, writer: Any) -> None:
    assert backward_incompatibilities(reader, writer) == []
    assert is_backward_compatible(reader, writer)


@pytest.mark.parametrize(
    ("reader", "writer", "expected"), [c[1:] for c in INCOMPATIBLE], ids=[c[0] for c in INCOMPATIBLE]
)
def test_incompatible(reader: Any, writer: Any, expected: str) -> None:
    messages = backward_incompatibilities(reader, writer)
    assert messages, "expected an incompatibility"
    assert any(expected in m for m in messages), messages
    assert not is_backward_compatible(reader, writer)


def test_accepts_json_strings_and_bare_names() -> None:
    new = rec(f("id", "string"), f("qty", "long"))
    old = rec(f("id", "string"), f("qty", "int"))
    assert is_backward_compatible(json.dumps(new), json.dumps(old))
    assert is_backward_compatible('"long"', "int")  # JSON string and bare type name
    assert not is_backward_compatible(json.dumps(old), json.dumps(new))


def test_reports_every_problem_with_its_path() -> None:
    new = rec(f("a", "string"), f("b", "int"), f("c", enum("X")))
    old = rec(f("b", "long"), f("c", enum("X", "Y")))
    assert backward_incompatibilities(new, old) == [
        "OrderPlaced.a: field without default added",
        "OrderPlaced.b: reader type int cannot read writer type long",
        "OrderPlaced.c: enum symbols ['Y'] missing in reader, which has no default",
    ]


def test_mutually_recursive_types_terminate() -> None:
    def tree(leaf_type: str) -> dict[str, Any]:
        return {
            "type": "record",
            "name": "Tree",
            "fields": [
                f("leaf", leaf_type),
                f(
                    "forest",
                    {
                        "type": "record",
                        "name": "Forest",
                        "fields": [
                            f("trees", {"type": "array", "items": "Tree"}),
                            f("parent", ["null", "Tree"]),
                        ],
                    },
                ),
            ],
        }

    assert is_backward_compatible(tree("long"), tree("int"))
    assert backward_incompatibilities(tree("int"), tree("long")) == [
        "Tree.leaf: reader type int cannot read writer type long"
    ]


def test_unknown_name_is_an_invalid_schema() -> None:
    with pytest.raises(InvalidSchemaError):
        backward_incompatibilities(rec(f("x", "Nope")), rec(f("x", "int")))
