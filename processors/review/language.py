"""The compiled review rule language: conditions, rules, rule sets, and parsing one condition (pure).

`rules.py` reads the files; this module knows what a condition may say (see the `rules` module docstring
for the syntax) and refuses anything else with the exact location of the mistake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from shopstream.topology import parse_duration_ms

from .facts import FACT_TYPES, FactType

Action = Literal["allow", "hold", "flag", "block"]
Mode = Literal["on", "shadow", "off"]
ListKind = Literal["email", "domain", "ip", "address", "string"]
Measure = Literal["orders", "distinct_shipping_addresses", "distinct_cards"]
Per = Literal["email", "shipping_address", "ip"]

REGEX_MAX_PATTERN = 200
REGEX_MAX_INPUT = 500
_NESTED_QUANTIFIER = re.compile(r"\([^()]*[+*][^()]*\)\s*[+*{]")

OPERATORS: dict[FactType, frozenset[str]] = {
    "number": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists"}),
    "int": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists"}),
    "string": frozenset({"eq", "ne", "in", "not_in", "contains", "regex", "in_list", "not_in_list", "exists"}),
    "bool": frozenset({"eq", "ne", "exists"}),
    "strings": frozenset({"contains", "in", "not_in", "in_list", "not_in_list", "exists"}),
}
ALL_OPERATORS = frozenset().union(*OPERATORS.values())


class _Problem(Exception):
    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = tuple(loc)
        self.message = message


# --- compiled conditions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Velocity:
    """A windowed measure over the orders that share a key with the evaluated one (event time)."""

    measure: Measure
    per: Per
    window: timedelta

    @property
    def name(self) -> str:
        """The name this measure has in evidence, e.g. `velocity.orders.per_email.1h`."""
        return f"velocity.{self.measure}.per_{self.per}.{_duration_text(self.window)}"


@dataclass(frozen=True)
class Compare:
    """`fact op value` (or a velocity measure compared with `value`)."""

    fact: str
    op: str
    value: Any = None
    list_name: str | None = None
    pattern: re.Pattern[str] | None = None
    velocity: Velocity | None = None


@dataclass(frozen=True)
class AllOf:
    """Every condition holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one condition holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """The condition does not hold."""

    item: Condition


Condition = Compare | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Rule:
    """One validated rule."""

    id: str
    description: str
    action: Action
    priority: int
    mode: Mode
    when: Condition


@dataclass(frozen=True)
class RuleSet:
    """A validated rules file with its lists and rates: everything the evaluator needs."""

    version: str
    rules: tuple[Rule, ...]  # in evaluation order (priority, id)
    lists: dict[str, frozenset[str]]
    list_kinds: dict[str, ListKind]
    rates: dict[str, Decimal]
    retention: timedelta
    source: str = "<memory>"

    def velocities(self) -> tuple[Velocity, ...]:
        """Every velocity measure some rule uses (on or shadow)."""
        found: dict[str, Velocity] = {}
        for rule in self.rules:
            for cond in _walk(rule.when):
                if isinstance(cond, Compare) and cond.velocity is not None:
                    found[cond.velocity.name] = cond.velocity
        return tuple(found[k] for k in sorted(found))


def _walk(cond: Condition) -> list[Condition]:
    if isinstance(cond, AllOf | AnyOf):
        return [cond, *(c for item in cond.items for c in _walk(item))]
    if isinstance(cond, Not):
        return [cond, *_walk(cond.item)]
    return [cond]


def _duration_text(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        millis = parse_duration_ms(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if millis <= 0:
        raise ValueError(f"expected a positive duration such as 1h, got {value!r}")
    return timedelta(milliseconds=millis)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value))  # through the text: 0.1 stays 0.1
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


# --- parsing conditions -------------------------------------------------------------------------------------


def parse_condition(raw: Any, loc: tuple[str | int, ...], lists: Mapping[str, object]) -> Condition:
    """One condition from its YAML form; `_Problem` naming the exact location otherwise."""
    if not isinstance(raw, dict):
        raise _Problem(loc, "a condition must be a mapping (fact/op/value, velocity, all, any or not)")
    for key in ("all", "any"):
        if key in raw:
            if set(raw) != {key}:
                raise _Problem(loc, f"'{key}' stands alone in its condition (got keys {sorted(raw)})")
            items = raw[key]
            if not isinstance(items, list) or not items:
                raise _Problem((*loc, key), f"'{key}' takes a non-empty list of conditions")
            parsed = tuple(parse_condition(item, (*loc, key, i), lists) for i, item in enumerate(items))
            return AllOf(parsed) if key == "all" else AnyOf(parsed)
    if "not" in raw:
        if set(raw) != {"not"}:
            raise _Problem(loc, f"'not' stands alone in its condition (got keys {sorted(raw)})")
        return Not(parse_condition(raw["not"], (*loc, "not"), lists))
    return _parse_compare(raw, loc, lists)


def _parse_compare(raw: dict[str, Any], loc: tuple[str | int, ...], lists: Mapping[str, object]) -> Compare:
    allowed = {"fact", "velocity", "op", "value", "list"}
    unknown = sorted(set(map(str, raw)) - allowed)
    if unknown:
        raise _Problem((*loc, unknown[0]), f"unknown key {unknown[0]!r} (a comparison has fact or velocity, "
                                           "op and value or list)")
    velocity = None
    ftype: FactType
    if "velocity" in raw:
        if "fact" in raw:
            raise _Problem(loc, "a comparison has either 'fact' or 'velocity', not both")
        velocity = _parse_velocity(raw["velocity"], (*loc, "velocity"))
        fact, ftype = velocity.name, "int"
    elif "fact" in raw:
        fact = raw["fact"]
        if fact not in FACT_TYPES:
            raise _Problem((*loc, "fact"), f"unknown fact {fact!r} (known: {', '.join(sorted(FACT_TYPES))})")
        ftype = FACT_TYPES[fact]
    else:
        raise _Problem(loc, "a comparison needs 'fact' or 'velocity'")
    op = raw.get("op")
    if op not in ALL_OPERATORS:
        raise _Problem((*loc, "op"), f"unknown operator {op!r} (known: {', '.join(sorted(ALL_OPERATORS))})")
    if velocity is not None and op not in {"eq", "ne", "gt", "gte", "lt", "lte"}:
        raise _Problem((*loc, "op"), f"operator {op!r} does not apply to a velocity (use a comparison)")
    if op not in OPERATORS[ftype]:
        raise _Problem((*loc, "op"), f"operator {op!r} does not apply to {fact} ({ftype}; allowed: "
                                     f"{', '.join(sorted(OPERATORS[ftype]))})")
    if op in {"in_list", "not_in_list"}:
        name = raw.get("list")
        if "value" in raw:
            raise _Problem((*loc, "value"), f"operator {op} takes 'list' (a list name), not 'value'")
        if name not in lists:
            raise _Problem((*loc, "list"), f"unknown list {name!r} (declared: {', '.join(sorted(lists)) or 'none'})")
        return Compare(fact, op, list_name=name)
    if "list" in raw:
        raise _Problem((*loc, "list"), f"'list' goes with in_list / not_in_list, not {op}")
    if op == "exists":
        value = raw.get("value", True)
        if not isinstance(value, bool):
            raise _Problem((*loc, "value"), "exists takes true or false")
        return Compare(fact, op, value=value)
    if "value" not in raw:
        raise _Problem(loc, f"operator {op} needs a 'value'")
    value = _check_value(raw["value"], op, ftype, (*loc, "value"))
    pattern = _compile_regex(value, (*loc, "value")) if op == "regex" else None
    return Compare(fact, op, value=value, pattern=pattern, velocity=velocity)


def _parse_velocity(raw: Any, loc: tuple[str | int, ...]) -> Velocity:
    if not isinstance(raw, dict):
        raise _Problem(loc, "velocity takes {measure, per, window}")
    unknown = sorted(set(map(str, raw)) - {"measure", "per", "window"})
    if unknown:
        raise _Problem((*loc, unknown[0]), f"unknown key {unknown[0]!r} in velocity (measure, per, window)")
    measure = raw.get("measure", "orders")
    if measure not in ("orders", "distinct_shipping_addresses", "distinct_cards"):
        raise _Problem((*loc, "measure"), f"unknown measure {measure!r} (orders, distinct_shipping_addresses, "
                                          "distinct_cards)")
    per = raw.get("per")
    if per not in ("email", "shipping_address", "ip"):
        raise _Problem((*loc, "per"), f"unknown key {per!r} for velocity (email, shipping_address, ip)")
    try:
        window = _parse_duration(raw.get("window"))
    except ValueError as exc:
        raise _Problem((*loc, "window"), str(exc)) from None
    return Velocity(measure, per, window)


def _check_value(value: Any, op: str, ftype: FactType, loc: tuple[str | int, ...]) -> Any:
    if op in {"in", "not_in"}:
        if not isinstance(value, list) or not value:
            raise _Problem(loc, f"{op} takes a non-empty list of values")
        scalar: FactType = "string" if ftype == "strings" else ftype
        return tuple(_scalar(v, scalar, (*loc, i)) for i, v in enumerate(value))
    if ftype == "strings" or op in {"contains", "regex"}:
        return _scalar(value, "string", loc)
    return _scalar(value, ftype, loc)


def _scalar(value: Any, ftype: FactType, loc: tuple[str | int, ...]) -> Any:
    if ftype in ("number", "int"):
        number = _decimal(value)
        if number is None or isinstance(value, str):
            raise _Problem(loc, f"expected a number, got {value!r}")
        return number
    if ftype == "bool":
        if not isinstance(value, bool):
            raise _Problem(loc, f"expected true or false, got {value!r}")
        return value
    if not isinstance(value, str) or not value:
        raise _Problem(loc, f"expected a non-empty string, got {value!r}")
    return value


def _compile_regex(pattern: str, loc: tuple[str | int, ...]) -> re.Pattern[str]:
    if len(pattern) > REGEX_MAX_PATTERN:
        raise _Problem(loc, f"regex longer than {REGEX_MAX_PATTERN} characters")
    if _NESTED_QUANTIFIER.search(pattern):
        raise _Problem(loc, "regex has a nested quantifier such as (a+)+ (catastrophic backtracking)")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise _Problem(loc, f"not a valid regex: {exc}") from None
