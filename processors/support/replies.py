"""Self-service reply drafts from the order's real state, templates as data (pure but for reading the file).

Templates live in `topology/rules/replies.yaml` (per intent, situation and language). The situation is
decided here from the order's facts, never guessed:

- where_is_my_order: `cancelled`; `delivered` (fulfilment delivered); `in_transit` (shipped or partially
  shipped *with* a tracking number); `not_shipped` otherwise (no tracking number is ever invented);
- invoice_request: `available` when the order has an invoice reference, else `not_yet`;
- refund_status: `refunded` when an amount was refunded, else `pending`;
- address_change, cancel_order: `possible` while nothing is fulfilled and the order is not cancelled (the
  reply offers the action: UpdateShippingAddress / CancelOrder, sent only after a person approves),
  `too_late` otherwise (a reply explaining why; no action, no command).
Other intents, and tickets without a known order, get no draft (a person answers). A template that
needs a fact the order lacks (e.g. a carrier) gives no draft either, rather than a reply with a hole.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopstream.yamlmodel import load_yaml_model

from .facts import OrderFacts

DEFAULT_REPLIES_PATH = Path(__file__).resolve().parents[2] / "topology" / "rules" / "replies.yaml"
LANGUAGES = ("de", "en")
PLACEHOLDERS = frozenset({"order_id", "status", "carrier", "tracking_number", "tracking_url", "invoice_ref",
                          "refund_amount", "refund_date"})
SITUATIONS: dict[str, tuple[str, ...]] = {
    "where_is_my_order": ("in_transit", "delivered", "not_shipped", "cancelled"),
    "invoice_request": ("available", "not_yet"),
    "refund_status": ("refunded", "pending"),
    "address_change": ("possible", "too_late"),
    "cancel_order": ("possible", "too_late"),
}
#: The order action a situation offers (a person approves it before the command is sent).
ACTIONS = {("address_change", "possible"): "UpdateShippingAddress", ("cancel_order", "possible"): "CancelOrder"}


class RepliesError(ValueError):
    """A replies file that cannot be used; the message names the file and the problem."""


class Replies(BaseModel):
    """A validated replies file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    status_words: dict[str, dict[str, str]] = Field(default_factory=dict)
    templates: dict[str, dict[str, dict[str, str]]]

    @model_validator(mode="after")
    def _complete(self) -> Replies:
        for intent, situations in SITUATIONS.items():
            for situation in situations:
                per_lang = self.templates.get(intent, {}).get(situation)
                if per_lang is None:
                    raise ValueError(f"templates.{intent}.{situation}: missing")
                for lang in LANGUAGES:
                    text = per_lang.get(lang)
                    if not text:
                        raise ValueError(f"templates.{intent}.{situation}.{lang}: missing")
                    names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
                    if names - PLACEHOLDERS:
                        raise ValueError(f"templates.{intent}.{situation}.{lang}: unknown placeholder(s) "
                                         f"{sorted(names - PLACEHOLDERS)}")
        return self


@dataclass(frozen=True)
class Draft:
    """A drafted reply and the facts it used."""

    intent: str
    situation: str
    language: str
    text: str
    facts_used: dict[str, str]
    action: str | None  # UpdateShippingAddress / CancelOrder offered, needing approval


def situation_of(intent: str, order: OrderFacts) -> str | None:
    """Which template applies to this order's state (see the module docstring); None: no self-service."""
    if intent == "where_is_my_order":
        if order.status == "cancelled":
            return "cancelled"
        if order.fulfillment_status == "delivered" or order.status == "delivered":
            return "delivered" if order.carrier and order.tracking_number else None
        if order.fulfilled and order.tracking_number:
            return "in_transit"
        return "not_shipped"
    if intent == "invoice_request":
        return "available" if order.invoice_ref else "not_yet"
    if intent == "refund_status":
        return "refunded" if order.refunded > 0 and order.refunded_at else "pending"
    if intent in ("address_change", "cancel_order"):
        return "too_late" if order.fulfilled or order.status == "cancelled" else "possible"
    return None


def _facts(order: OrderFacts, language: str, replies: Replies) -> dict[str, str]:
    status = replies.status_words.get(order.status, {}).get(language, order.status.replace("_", " "))
    values = {"order_id": order.order_number or order.order_id, "status": status, "carrier": order.carrier,
              "tracking_number": order.tracking_number, "tracking_url": order.tracking_url,
              "invoice_ref": order.invoice_ref, "refund_date": order.refunded_at,
              "refund_amount": f"{order.refunded:.2f} {order.currency}" if order.refunded > 0 else None}
    return {k: v for k, v in values.items() if v}


def draft(intent: str, language: str, order: OrderFacts | None, replies: Replies) -> Draft | None:
    """The reply for `intent` in `language` from `order`'s state; None when no template fits the facts."""
    if order is None or intent not in SITUATIONS:
        return None
    situation = situation_of(intent, order)
    if situation is None:
        return None
    lang = language if language in LANGUAGES else "en"
    template = replies.templates[intent][situation][lang]
    facts = _facts(order, lang, replies)
    needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    if needed - facts.keys():
        return None  # e.g. a tracking link the carrier never sent: a person answers instead
    return Draft(intent=intent, situation=situation, language=lang, text=template.format_map(facts),
                 facts_used={k: facts[k] for k in sorted(needed)} | {"situation": situation},
                 action=ACTIONS.get((intent, situation)))


def load_replies(path: Path | str | None = None) -> Replies:
    """The replies file (default: the shipped one), validated."""
    return load_yaml_model(path or DEFAULT_REPLIES_PATH, Replies, RepliesError, "reply templates")
