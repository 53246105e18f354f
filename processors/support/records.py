"""The records a ticket decision and an approval produce (pure: plain models, no Kafka).

From a `TicketDecision` (on TicketCreated):
- `RouteTicket` on `commands.support` (key: the ticket key), always — an unknown order still routes,
  the reason says so;
- `SuggestReply` on `commands.support` when a draft was made; `requires_approval` false only when the
  automation policy lets it go alone (the helpdesk sends it), true otherwise (posted as a draft);
- a `ReviewItem` on `review.queue` (key: the order id) when a person must approve: kind
  `support_reply`, `support_cancel_order` or `support_address_change`, queue `support`, subject type
  `order_request` (so the orders worker, which acts on `order` decisions, ignores it), with the draft,
  intent, confidence, model, routing and policy versions as evidence.
From a `WorkItemDecided` approving a `support_cancel_order` item: `CancelOrder` on `commands.shop`
(key: the order id), requested by the person; approving a `support_address_change` item with the new
address as the decision's note: `UpdateShippingAddress` (without a note: nothing, the address is unknown).
Every id is uuid5 of its cause (the ticket's or the decision's event id), so a redelivery or replay
re-emits identical records (consumers drop duplicates), and the API publishes one decision per item: one
CancelOrder per approval.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from shopstream.schemas.models import (
    CancelOrder,
    EventMeta,
    ReviewItem,
    RouteTicket,
    SuggestReply,
    TicketCreated,
    UpdateShippingAddress,
    WorkItemDecided,
)

from .facts import TicketInput
from .triage import TicketDecision

SUPPORT_NAMESPACE = uuid.UUID("0f6f3c52-8c2e-4a47-9a55-1f2b7e0c5d11")
SOURCE = "shopstream.support"
SUBJECT_TYPE = "order_request"
WORK_QUEUE = "support"
KINDS = {None: "support_reply", "CancelOrder": "support_cancel_order",
         "UpdateShippingAddress": "support_address_change"}


def meta_for(record: str, cause: EventMeta) -> EventMeta:
    """Meta of a record this processor derives from `cause`: deterministic id, causation = the cause."""
    return EventMeta(event_id=str(uuid.uuid5(SUPPORT_NAMESPACE, f"{record}:{cause.event_id}")), event_type=record,
                     occurred_at=cause.occurred_at, recorded_at=cause.recorded_at, source=SOURCE,
                     source_event_id=None, correlation_id=cause.correlation_id, causation_id=cause.event_id)


def confidence(value: float) -> Decimal:
    """A confidence as the contract's decimal (4 places)."""
    return Decimal(str(round(value, 4))).quantize(Decimal("0.0001"))


def ticket_input(ticket: TicketCreated, key: str) -> TicketInput:
    """The core's view of a TicketCreated (the key is the ticket's id across helpdesks)."""
    return TicketInput(ticket_id=key, subject=ticket.subject, body=ticket.body or "", channel=ticket.channel,
                       language_hint=ticket.language, customer_email=ticket.customer_email,
                       order_id=ticket.order_id, tags=tuple(ticket.tags))


def decision_records(ticket: TicketCreated, key: str, decision: TicketDecision) -> list[tuple[str, str, object]]:
    """(logical topic, key, record) for one decided ticket, in the order they are sent."""
    pred = decision.understanding.prediction
    order = decision.order
    out: list[tuple[str, str, object]] = [("commands.support", key, RouteTicket(
        meta=meta_for("RouteTicket", ticket.meta), ticket_id=key, queue=decision.route.queue,
        priority=decision.route.priority, order_id=order.order_id if order else None, rule=decision.route.rule_id,
        tags=sorted(set(ticket.tags) | set(decision.route.tags)), intent=pred.intent,
        confidence=confidence(pred.confidence), order_status=order.status if order else None,
        reasons=list(decision.reasons), model_version=pred.model_version,
        rules_version=decision.route.rules_version))]
    draft, governance = decision.draft, decision.governance
    if draft is None or governance is None:
        return out
    out.append(("commands.support", key, SuggestReply(
        meta=meta_for("SuggestReply", ticket.meta), ticket_id=key, intent=draft.intent, language=draft.language,
        text=draft.text, facts_used=draft.facts_used, confidence=confidence(pred.confidence),
        requires_approval=governance.requires_approval, action=governance.action,
        order_id=order.order_id if order else None, model_version=pred.model_version,
        policy_version=governance.policy_version)))
    if governance.requires_approval and order is not None:
        kind = KINDS[governance.action]
        details = {"queue": WORK_QUEUE, "subject_type": SUBJECT_TYPE, "ticket_id": key, "intent": pred.intent,
                   "confidence": f"{pred.confidence:.4f}", "model_version": pred.model_version,
                   "rules_version": decision.route.rules_version, "policy_version": governance.policy_version,
                   "language": draft.language, "draft": draft.text, "reasons": " | ".join(decision.reasons)}
        if governance.action:
            details["action"] = governance.action
        what = f"{governance.action} for order {order.order_id}" if governance.action else "a reply"
        out.append(("review.queue", order.order_id, ReviewItem(
            meta=meta_for("ReviewItem", ticket.meta), order_id=order.order_id, kind=kind,
            reason=f"ticket {key} asks for {what}: {governance.reason}", details=details,
            event_id=ticket.meta.event_id, event_type="TicketCreated", rule=f"automation.{pred.intent}")))
    return out


def approval_records(event: WorkItemDecided) -> list[tuple[str, str, object]]:
    """The command an approved support item asks for; nothing for any other decision."""
    if event.subject_type != SUBJECT_TYPE or event.decision != "approve":
        return []
    if event.kind == "support_cancel_order":
        reason = f"customer request approved by {event.decided_by} (work item {event.item_id})"
        if event.note:
            reason += f": {event.note}"
        return [("commands.shop", event.subject_id, CancelOrder(
            meta=meta_for("CancelOrder", event.meta), order_id=event.subject_id, reason=reason,
            requested_by=f"user:{event.decided_by}"))]
    if event.kind == "support_address_change" and event.note and event.note.strip():
        # The customer's new address is free text in the ticket; the person confirms it in the note.
        return [("commands.shop", event.subject_id, UpdateShippingAddress(
            meta=meta_for("UpdateShippingAddress", event.meta), order_id=event.subject_id,
            address_text=event.note.strip(), requested_by=f"user:{event.decided_by}", work_item_id=event.item_id))]
    return []
