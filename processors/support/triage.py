"""One ticket, decided: understand → (order lookup by the caller) → route → draft → govern (pure).

`SupportCore` bundles the data the decisions come from (model, routing rules, reply templates,
automation policy). The worker calls `understand` first, looks up the order among
`order_candidates` (or the requester's latest order) and the customer's history, then `decide`.
Every `TicketDecision` names the model version, its confidence, the rule id and rules version, the
policy version, and the reasons in words a person reads on the work item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .facts import UNKNOWN, CustomerFacts, OrderFacts, TicketInput, order_candidates, segment_of
from .model import IntentModel, Prediction, load_model
from .policy import AutomationPolicy, Decision, decide, load_policy
from .replies import Draft, Replies, draft, load_replies
from .routing import Route, RouteInput, RoutingRules, load_routing, route
from .text import Entities, detect_language, extract, mask_ibans


@dataclass(frozen=True)
class Understanding:
    """What the rules and the model read in a ticket."""

    language: str
    entities: Entities
    prediction: Prediction
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class TicketDecision:
    """Everything decided about one ticket."""

    ticket_id: str
    understanding: Understanding
    order: OrderFacts | None
    segment: str
    route: Route
    reasons: tuple[str, ...]
    draft: Draft | None
    governance: Decision | None

    @property
    def intent(self) -> str:
        """The model's intent."""
        return self.understanding.prediction.intent

    @property
    def confidence(self) -> float:
        """The model's confidence in the intent."""
        return self.understanding.prediction.confidence

    @property
    def auto_reply(self) -> bool:
        """True when the policy lets the draft go out without a person."""
        return self.governance is not None and self.governance.send and not self.governance.requires_approval

    @property
    def needs_approval(self) -> bool:
        """True when a person must approve the draft (and its action) in the work queue."""
        return self.governance is not None and self.governance.send and self.governance.requires_approval


@dataclass(frozen=True)
class SupportCore:
    """The data the support decisions come from."""

    model: IntentModel
    routing: RoutingRules
    replies: Replies
    policy: AutomationPolicy

    @classmethod
    def load(cls, model: Path | str | None = None, routing: Path | str | None = None,
             replies: Path | str | None = None, policy: Path | str | None = None) -> SupportCore:
        """Load and validate every file (the shipped ones by default)."""
        return cls(model=load_model(model), routing=load_routing(routing), replies=load_replies(replies),
                   policy=load_policy(policy))

    def understand(self, ticket: TicketInput) -> Understanding:
        """Language, entities and intent of a ticket."""
        text = ticket.text
        entities = extract(text)
        return Understanding(language=detect_language(text, ticket.language_hint), entities=entities,
                             prediction=self.model.predict(text), candidates=order_candidates(ticket, entities))

    def decide(self, ticket: TicketInput, seen: Understanding, order: OrderFacts | None,
               customer: CustomerFacts | None, *, order_source: str = "") -> TicketDecision:
        """Route, draft and govern a ticket given its order (None: not found) and customer history."""
        pred = seen.prediction
        segment = segment_of(customer, ticket.tags, self.routing.segment_policy)
        facts = RouteInput(intent=pred.intent, confidence=pred.confidence,
                           order_status=order.status if order else UNKNOWN,
                           fulfillment_status=order.fulfillment_status if order else None, segment=segment,
                           language=seen.language, channel=ticket.channel, text=ticket.text)
        where = route(self.routing, facts)
        reasons = [f"rule {where.rule_id} (routing {where.rules_version})",
                   f"intent {pred.intent} at confidence {pred.confidence:.2f} ({pred.model_version})",
                   _order_reason(seen, order, order_source), f"segment {segment}"]
        drafted = draft(pred.intent, seen.language, order, self.replies)
        governance = decide(self.policy, pred.intent, pred.confidence, drafted.action) if drafted else None
        if drafted is not None and drafted.action is not None and (governance is None or governance.action is None):
            drafted = None  # the policy does not allow offering this action: no draft that promises it
            governance = None
        if governance is not None:
            reasons.append(governance.reason)
        return TicketDecision(ticket_id=ticket.ticket_id, understanding=seen, order=order, segment=segment,
                              route=where, reasons=tuple(mask_ibans(r) for r in reasons),
                              draft=drafted if governance is None or governance.send else None,
                              governance=governance if governance is None or governance.send else None)


def _order_reason(seen: Understanding, order: OrderFacts | None, source: str) -> str:
    if order is not None:
        via = f" ({source})" if source else ""
        return f"order {order.order_id}{via}: {order.status}, fulfilment {order.fulfillment_status}"
    if seen.candidates:
        return f"order {', '.join(seen.candidates[:3])} not found"
    return "no order number in the ticket and no order of the requester found"
