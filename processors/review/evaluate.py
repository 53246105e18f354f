"""Deciding one order: `evaluate(rules, facts, velocities) -> Verdict` (pure, deterministic).

Rules run in (priority, id) order. A rule in mode `off` is skipped; in mode `shadow` it is evaluated
and reported in `Verdict.shadow` but has no effect and never stops evaluation. A matching rule in mode
`on` is recorded in `Verdict.fired` with the facts its condition saw (the evidence); `allow` stops
evaluation there (rules after it are not evaluated, rules before it keep their effect). The verdict's
action is the strongest fired action: block > hold > flag > allow; `pass` when nothing fired.

What each action means downstream: `hold` adds the hold reason `review:<rule-id>` (ReleaseOrder waits
for a person's decision), `flag` opens a work item without holding ("nachfassen"), `block` cancels the
order, `allow` / `pass` let it go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from .facts import FACT_TYPES, OrderFacts
from .rules import REGEX_MAX_INPUT, AllOf, AnyOf, Compare, Condition, Not, Rule, RuleSet, normalise

VerdictAction = Literal["pass", "allow", "flag", "hold", "block"]
STRENGTH: dict[str, int] = {"pass": 0, "allow": 1, "flag": 2, "hold": 3, "block": 4}
HOLD_PREFIX = "review:"


@dataclass(frozen=True)
class Fired:
    """A rule whose condition matched, with the facts it saw."""

    rule_id: str
    action: str
    mode: str
    description: str
    evidence: dict[str, str]


@dataclass(frozen=True)
class Verdict:
    """The decision on one order snapshot (see the module docstring)."""

    order_id: str
    action: VerdictAction
    rules_version: str
    fired: tuple[Fired, ...] = ()
    shadow: tuple[Fired, ...] = ()
    facts_as_of: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def hold_reasons(self) -> tuple[str, ...]:
        """`review:<rule-id>` of every fired hold rule (a block holds nothing: it cancels)."""
        return tuple(f"{HOLD_PREFIX}{f.rule_id}" for f in self.fired if f.action == "hold")

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Ids of the rules that fired (mode on), in evaluation order."""
        return tuple(f.rule_id for f in self.fired)

    @property
    def needs_person(self) -> bool:
        """Whether the verdict opens a work item (hold, flag, block)."""
        return self.action in ("flag", "hold", "block")

    def evidence(self) -> dict[str, str]:
        """Every fired rule's evidence as one flat map `<rule-id>.<fact>` -> value."""
        return {f"{f.rule_id}.{k}": v for f in self.fired for k, v in sorted(f.evidence.items())}


def evaluate(rules: RuleSet, facts: OrderFacts, velocities: Mapping[str, int] | None = None) -> Verdict:
    """Run the rules over one order's facts; `velocities` gives each velocity measure's value by name."""
    velocities = velocities or {}
    fired: list[Fired] = []
    shadow: list[Fired] = []
    for rule in rules.rules:
        if rule.mode == "off":
            continue
        seen: dict[str, str] = {}
        if not _holds(rule.when, facts, velocities, rules, seen):
            continue
        hit = Fired(rule.id, rule.action, rule.mode, rule.description, seen)
        if rule.mode == "shadow":
            shadow.append(hit)
            continue
        fired.append(hit)
        if rule.action == "allow":
            break
    action: VerdictAction = "pass"
    for hit in fired:
        if STRENGTH[hit.action] > STRENGTH[action]:
            action = hit.action  # type: ignore[assignment]
    return Verdict(order_id=facts.order_id, action=action, rules_version=rules.version, fired=tuple(fired),
                   shadow=tuple(shadow), facts_as_of=facts.as_of.isoformat())


def matches(rule: Rule, rules: RuleSet, facts: OrderFacts, velocities: Mapping[str, int] | None = None) -> bool:
    """Whether one rule's condition holds (whatever its mode)."""
    return _holds(rule.when, facts, velocities or {}, rules, {})


def _holds(cond: Condition, facts: OrderFacts, velocities: Mapping[str, int], rules: RuleSet,
           seen: dict[str, str]) -> bool:
    if isinstance(cond, AllOf):
        return all(_holds(c, facts, velocities, rules, seen) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(_holds(c, facts, velocities, rules, seen) for c in cond.items)
    if isinstance(cond, Not):
        return not _holds(cond.item, facts, velocities, rules, seen)
    return _compare(cond, facts, velocities, rules, seen)


def _compare(cond: Compare, facts: OrderFacts, velocities: Mapping[str, int], rules: RuleSet,
             seen: dict[str, str]) -> bool:
    if cond.velocity is not None:
        value: object = velocities.get(cond.fact, 0)
        ftype = "int"
    else:
        value = facts.value(cond.fact)
        ftype = FACT_TYPES[cond.fact]
    seen[cond.fact] = _text(value)
    if cond.op == "exists":
        present = value is not None and value != ()
        return present is bool(cond.value)
    if value is None:
        return False
    if ftype in ("number", "int"):
        return _numeric(cond, Decimal(str(value)))
    if ftype == "bool":
        return (value is cond.value) if cond.op == "eq" else (value is not cond.value)
    if ftype == "strings":
        assert isinstance(value, tuple)
        return _many(cond, tuple(str(v) for v in value), rules)
    return _string(cond, str(value), rules)


def _numeric(cond: Compare, value: Decimal) -> bool:
    target = cond.value
    if cond.op == "in":
        return value in target
    if cond.op == "not_in":
        return value not in target
    return {"eq": value == target, "ne": value != target, "gt": value > target, "gte": value >= target,
            "lt": value < target, "lte": value <= target}[cond.op]


def _string(cond: Compare, value: str, rules: RuleSet) -> bool:
    folded = value.casefold()
    op = cond.op
    if op == "regex":
        assert cond.pattern is not None
        return cond.pattern.search(value[:REGEX_MAX_INPUT]) is not None
    if op in ("in_list", "not_in_list"):
        assert cond.list_name is not None
        member = normalise(value, rules.list_kinds.get(cond.list_name, "string")) in rules.lists[cond.list_name]
        return member if op == "in_list" else not member
    if op == "contains":
        return str(cond.value).casefold() in folded
    if op in ("in", "not_in"):
        member = folded in {str(v).casefold() for v in cond.value}
        return member if op == "in" else not member
    same = folded == str(cond.value).casefold()
    return same if op == "eq" else not same


def _many(cond: Compare, values: tuple[str, ...], rules: RuleSet) -> bool:
    folded = {v.casefold() for v in values}
    if cond.op == "contains":
        return str(cond.value).casefold() in folded
    if cond.op in ("in", "not_in"):
        hit = bool(folded & {str(v).casefold() for v in cond.value})
        return hit if cond.op == "in" else not hit
    assert cond.list_name is not None
    kind = rules.list_kinds.get(cond.list_name, "string")
    hit = any(normalise(v, kind) in rules.lists[cond.list_name] for v in values)
    return hit if cond.op == "in_list" else not hit


def _text(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)
