"""Review rules as data: `topology/rules/review.yaml` loaded into a validated `RuleSet` (pure but for file reads).

A rules file::

    version: "2026-12-06.1"          # recorded on every verdict
    rates: ../rates.yaml              # EUR rates (relative to this file)
    lists:                            # named lists, one entry per line in a text file ('#' comments)
      blocked_emails: {file: lists/blocked_emails.txt, kind: email}
    velocity: {retention: 48h}        # how long order marks are kept for windows (>= the longest window)
    rules:
      - id: high-value                # [a-z0-9][a-z0-9._-]*, unique; the hold reason is review:<id>
        description: ab 150 € manuell prüfen
        action: hold                  # allow | hold | flag | block
        priority: 100                 # lower runs first; ties by id
        mode: on                      # on | shadow | off
        when: {fact: total_eur, op: gt, value: 150}

Conditions: `{fact: NAME, op: OP, value: V}`, `{fact: NAME, op: in_list, list: LIST}`,
`{velocity: {measure: orders|distinct_shipping_addresses|distinct_cards, per: email|shipping_address|ip,
window: 1h}, op: gt, value: 3}`, `{all: [...]}`, `{any: [...]}`, `{not: COND}`. Operators per fact type:
numbers and ints `eq ne gt gte lt lte in not_in exists`; strings `eq ne in not_in contains regex in_list
not_in_list exists`; bools `eq ne exists`; string lists (skus, categories) `contains in not_in in_list
not_in_list exists`. Regexes are bounded: at most 200 characters, no nested quantifier, matched against
the first 500 characters of a value. Nothing is ever `eval`ed.

Errors name the file, the line and the reason: `review.yaml:14: rules.2.when.op: unknown operator 'gtt'`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopstream.yamlmodel import line_of, parse_located, read_text

from .language import (
    REGEX_MAX_INPUT,
    Action,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    ListKind,
    Mode,
    Not,
    Per,
    Rule,
    RuleSet,
    Velocity,
    _decimal,
    _duration_text,
    _parse_duration,
    _Problem,
    _walk,
    parse_condition,
)

__all__ = ["REGEX_MAX_INPUT", "AllOf", "AnyOf", "Compare", "Condition", "Not", "Per", "Rule", "RuleSet",
           "RulesError", "Velocity", "compile_rules", "load_rates", "load_rules", "normalise", "parse_rules",
           "with_list_changes"]

DEFAULT_RULES_PATH = Path(__file__).resolve().parents[2] / "topology" / "rules" / "review.yaml"


class RulesError(ValueError):
    """A rules, lists or rates file is missing or invalid (the message names file, line and reason)."""


# --- the file models ---------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListSpec(_Strict):
    """A named list kept in a text file next to the rules."""

    file: str
    kind: ListKind = "string"


class VelocitySettings(_Strict):
    """How long marks of past orders are kept for velocity windows."""

    retention: timedelta = timedelta(hours=48)

    @field_validator("retention", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _parse_duration(value)


class RuleModel(_Strict):
    """One rule as written (its `when` is parsed separately, for precise error locations)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    description: str = Field(min_length=1)
    action: Action
    priority: int = 100
    mode: Mode = "on"
    when: Any

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `on` / `off` as a boolean
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class RulesFileModel(_Strict):
    """The top level of a rules file."""

    version: str = Field(min_length=1, max_length=64)
    rates: str = "../rates.yaml"
    lists: dict[str, ListSpec] = Field(default_factory=dict)
    velocity: VelocitySettings = VelocitySettings()
    rules: list[RuleModel]

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class RatesModel(_Strict):
    """`topology/rates.yaml`: EUR per unit of each currency."""

    base: Literal["EUR"] = "EUR"
    as_of: str | None = None
    rates: dict[str, Decimal]

    @field_validator("rates", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Decimal] = {}
        for currency, rate in value.items():
            if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
                raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
            number = _decimal(rate)
            if number is None or number <= 0:
                raise ValueError(f"rate of {currency} must be a positive number, got {rate!r}")
            out[currency] = number
        return out


# --- loading ------------------------------------------------------------------------------------------------


def normalise(entry: str, kind: ListKind) -> str:
    """How list entries and fact values are compared (case-insensitive; addresses as `facts.address_key`)."""
    text = entry.strip()
    if kind == "address":
        return "|".join(" ".join(part.lower().split()) for part in text.split("|"))
    return text.lower()


def parse_list(text: str) -> frozenset[str]:
    """Entries of a list file: one per line, blank lines and '#' comments ignored (not normalised)."""
    return frozenset(line.split("#", 1)[0].strip() for line in text.splitlines()
                     if line.split("#", 1)[0].strip())


def load_rules(path: Path | str | None = None) -> RuleSet:
    """Read and validate a rules file with its rates and lists (default: the shipped one); `RulesError` otherwise."""
    path = Path(path) if path is not None else DEFAULT_RULES_PATH
    text = read_text(path, RulesError, "review rules")
    rules = parse_rules(text, str(path))
    return compile_rules(rules, path.parent, str(path), text)


def parse_rules(text: str, origin: str) -> RulesFileModel:
    """The top-level model of a rules file's text; `RulesError` with line and reason otherwise."""
    return parse_located(text, origin, RulesFileModel, RulesError, "review rules")


def compile_rules(model: RulesFileModel, folder: Path, origin: str, text: str) -> RuleSet:
    """Conditions parsed, ids checked unique, lists and rates read (relative to `folder`)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    compiled: list[Rule] = []
    seen: dict[str, int] = {}
    try:
        for i, rule in enumerate(model.rules):
            if rule.id in seen:
                raise _Problem(("rules", i, "id"), f"duplicate rule id {rule.id!r} (also rules.{seen[rule.id]})")
            seen[rule.id] = i
            compiled.append(Rule(rule.id, rule.description, rule.action, rule.priority, rule.mode,
                                 parse_condition(rule.when, ("rules", i, "when"), model.lists)))
        for cond in (c for r in compiled for c in _walk(r.when)):
            too_long = cond.velocity.window > model.velocity.retention if isinstance(cond, Compare) and \
                cond.velocity is not None else False
            if too_long:
                assert isinstance(cond, Compare) and cond.velocity is not None
                idx = next(i for i, r in enumerate(compiled) if cond in _walk(r.when))
                raise _Problem(("rules", idx, "when"), f"window {_duration_text(cond.velocity.window)} is longer "
                               f"than velocity.retention {_duration_text(model.velocity.retention)}")
    except _Problem as problem:
        raise RulesError(f"{origin}:{line_of(node, problem.loc)}: invalid review rules: "
                         f"{'.'.join(map(str, problem.loc))}: {problem.message}") from None
    lists: dict[str, frozenset[str]] = {}
    for name, spec in sorted(model.lists.items()):
        list_path = folder / spec.file
        try:
            entries = parse_list(list_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RulesError(f"{origin}:{line_of(node, ('lists', name, 'file'))}: list {name}: cannot read "
                             f"{list_path}: {exc.strerror or exc}") from None
        lists[name] = frozenset(normalise(e, spec.kind) for e in entries)
    rates = load_rates(folder / model.rates)
    ordered = tuple(sorted(compiled, key=lambda r: (r.priority, r.id)))
    return RuleSet(version=model.version, rules=ordered, lists=lists,
                   list_kinds={n: s.kind for n, s in model.lists.items()}, rates=rates,
                   retention=model.velocity.retention, source=origin)


def load_rates(path: Path) -> dict[str, Decimal]:
    """EUR per unit of each currency from a rates file; `RulesError` naming the file otherwise."""
    model = parse_located(read_text(path, RulesError, "rates"), str(path), RatesModel, RulesError, "rates")
    return {**model.rates, "EUR": Decimal(1)}


def with_list_changes(rules: RuleSet, changes: dict[str, tuple[frozenset[str], frozenset[str]]]) -> RuleSet:
    """The rule set with API edits applied to its lists: per list (added, removed), already normalised.

    The file's entries plus the added ones, minus the removed ones; lists the rules do not declare are
    ignored."""
    lists = dict(rules.lists)
    for name, (added, removed) in changes.items():
        if name in lists:
            lists[name] = (lists[name] | added) - removed
    return replace(rules, lists=lists)
