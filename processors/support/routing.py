"""Ticket routing rules as data: `topology/rules/support.yaml` loaded, validated and evaluated (pure but for reads).

A rules file::

    version: "2026-12-06.1"            # recorded on every RouteTicket
    segments: {high_value_orders: 5, high_value_spent_eur: 500, b2b_tags: [b2b]}
    rules:                              # evaluated top to bottom; the first match routes
      - id: low-confidence              # [a-z0-9][a-z0-9._-]*, unique
        description: the model is unsure, a person triages
        when: {confidence_below: 0.6}   # every condition given must hold (AND); {} always holds
        queue: triage
        priority: normal                # low | normal | high | urgent
        tags: [needs-triage]            # added to the RouteTicket's tags
    # the last rule must have `when: {}`, so every ticket routes

Conditions: `intent`, `order_status` (canonical status, or `unknown` when no order was found),
`fulfillment_status`, `segment` (b2b, high_value, repeat, first_time, unknown), `language`, `channel`:
lists of allowed values; `keywords_any`: words or phrases, any of which occurs in the normalised
ticket text; `confidence_below` / `confidence_at_least`: the model's confidence; `order_found`: bool.
Errors name the file and the field: `support.yaml: invalid routing rules: rules.2.when.intent.0: …`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopstream.yamlmodel import load_yaml_model

from .dataset import INTENTS
from .facts import SEGMENTS, UNKNOWN, SegmentPolicy
from .text import normalise

DEFAULT_RULES_PATH = Path(__file__).resolve().parents[2] / "topology" / "rules" / "support.yaml"
ORDER_STATUSES = ("pending_payment", "on_hold", "ready_to_fulfill", "partially_shipped", "shipped", "delivered",
                  "return_requested", "returned", "refunded", "cancelled", UNKNOWN)
FULFILLMENT_STATUSES = ("unfulfilled", "partially_shipped", "shipped", "delivered", "exception")
Priority = Literal["low", "normal", "high", "urgent"]


class RoutingError(ValueError):
    """A routing rules file that cannot be used; the message names the file and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _allowed(values: list[str] | None, known: tuple[str, ...], what: str) -> list[str] | None:
    for v in values or ():
        if v not in known:
            raise ValueError(f"unknown {what} {v!r} (known: {', '.join(known)})")
    return values


class When(_Strict):
    """The conditions of one rule (all given ones must hold)."""

    intent: list[str] | None = None
    order_status: list[str] | None = None
    fulfillment_status: list[str] | None = None
    segment: list[str] | None = None
    language: list[str] | None = None
    channel: list[str] | None = None
    keywords_any: list[str] | None = None
    confidence_below: float | None = Field(None, gt=0, le=1)
    confidence_at_least: float | None = Field(None, ge=0, le=1)
    order_found: bool | None = None

    @field_validator("intent")
    @classmethod
    def _intents(cls, v: list[str] | None) -> list[str] | None:
        return _allowed(v, INTENTS, "intent")

    @field_validator("order_status")
    @classmethod
    def _statuses(cls, v: list[str] | None) -> list[str] | None:
        return _allowed(v, ORDER_STATUSES, "order status")

    @field_validator("fulfillment_status")
    @classmethod
    def _fulfilment(cls, v: list[str] | None) -> list[str] | None:
        return _allowed(v, FULFILLMENT_STATUSES, "fulfillment status")

    @field_validator("segment")
    @classmethod
    def _segments(cls, v: list[str] | None) -> list[str] | None:
        return _allowed(v, SEGMENTS, "segment")

    @property
    def empty(self) -> bool:
        """True when the rule matches every ticket."""
        return all(value is None for value in self.model_dump().values())


class RuleSpec(_Strict):
    """One routing rule."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)
    description: str = ""
    when: When = Field(default_factory=When)
    queue: str = Field(min_length=1, max_length=64)
    priority: Priority = "normal"
    tags: list[str] = Field(default_factory=list)


class SegmentSpec(_Strict):
    high_value_orders: int = Field(5, ge=1)
    high_value_spent_eur: Decimal = Field(Decimal(500), ge=0)
    b2b_tags: list[str] = Field(default_factory=lambda: ["b2b"])


class RoutingRules(_Strict):
    """A validated routing rules file."""

    version: str = Field(min_length=1)
    segments: SegmentSpec = Field(default_factory=SegmentSpec)
    rules: list[RuleSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> RoutingRules:
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate rule ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        if not self.rules[-1].when.empty:
            raise ValueError("the last rule must match every ticket (when: {}), so every ticket routes")
        return self

    @property
    def segment_policy(self) -> SegmentPolicy:
        """The segment thresholds as the facts module reads them."""
        s = self.segments
        return SegmentPolicy(high_value_orders=s.high_value_orders, high_value_spent_eur=s.high_value_spent_eur,
                             b2b_tags=tuple(s.b2b_tags))


@dataclass(frozen=True)
class RouteInput:
    """The facts a route is decided on."""

    intent: str
    confidence: float
    order_status: str  # UNKNOWN when no order was found
    fulfillment_status: str | None
    segment: str
    language: str
    channel: str
    text: str


@dataclass(frozen=True)
class Route:
    """Where a ticket goes, and why."""

    queue: str
    priority: Priority
    tags: tuple[str, ...]
    rule_id: str
    rules_version: str


def _keyword(text: str, word: str) -> bool:
    return re.search(rf"(?<![a-zäöüß0-9]){re.escape(normalise(word))}(?![a-zäöüß0-9])", text) is not None


def matches(when: When, facts: RouteInput) -> bool:
    """True when every condition of `when` holds for `facts`."""
    checks = [
        when.intent is None or facts.intent in when.intent,
        when.order_status is None or facts.order_status in when.order_status,
        when.fulfillment_status is None or facts.fulfillment_status in when.fulfillment_status,
        when.segment is None or facts.segment in when.segment,
        when.language is None or facts.language in when.language,
        when.channel is None or facts.channel in when.channel,
        when.confidence_below is None or facts.confidence < when.confidence_below,
        when.confidence_at_least is None or facts.confidence >= when.confidence_at_least,
        when.order_found is None or (facts.order_status != UNKNOWN) == when.order_found,
    ]
    if not all(checks):
        return False
    if when.keywords_any is not None:
        text = normalise(facts.text)
        return any(_keyword(text, w) for w in when.keywords_any)
    return True


def route(rules: RoutingRules, facts: RouteInput) -> Route:
    """The first rule that matches (the last one always does)."""
    for rule in rules.rules:
        if matches(rule.when, facts):
            return Route(queue=rule.queue, priority=rule.priority, tags=tuple(rule.tags), rule_id=rule.id,
                         rules_version=rules.version)
    raise AssertionError("unreachable: the last rule matches every ticket")  # validated on load


def load_routing(path: Path | str | None = None) -> RoutingRules:
    """The routing rules file (default: the shipped one), validated."""
    return load_yaml_model(path or DEFAULT_RULES_PATH, RoutingRules, RoutingError, "routing rules")
