"""Decisions on an order from `review.decisions`: the review rules' verdict and a person's decision. Pure.

`canonical.apply` hands both kinds of event here for a plan (`plan`) and carries it out with its own
machinery (derive, settle, emit), so a decision moves the order exactly like any other event:

OrderReviewed (the review worker's verdict on a snapshot)
  - its hold reasons `review:<rule-id>` join `OrderRecord.review_holds` (the canonical hold reasons are
    the shop's, the payment facts' and these, minus the lifted ones), so ReleaseOrder waits;
  - it ends the wait for a first verdict (`awaiting_review`, orders policy `review.await_verdict`);
  - action `block` cancels the order as a rejection does;
  - a verdict that adds nothing (its holds already known, no wait to end, no block) is a duplicate.
    Holds only accumulate from verdicts: a later, milder snapshot does not lift a hold, a person does.
WorkItemDecided (a person approved or rejected a work item about this order)
  - the first decision per work item wins; the same again is a duplicate, a different one is ignored
    with a note (the API answers 409 before it gets here);
  - approve lifts exactly the hold reasons the item named (`review:*`, `chargeback:*`, `payment_risk:*`):
    they go to `OrderRecord.lifted` and never hold this order again; the order is released if
    nothing else holds it;
  - reject cancels the order (the shop's cancellation path: CancelFulfillment, reservations released)
    and asks the shop to cancel too (CancelOrder on commands.shop); an order that already left the
    warehouse cannot be cancelled, which goes to review like any refused cancellation;
  - every decision shows on `orders.status-changes`, with the person as source (`user:<name>`, the
    decision's `meta.source`), the note and the work item id; when the order's status did not move (an
    approved flag), a change with equal previous and current states records it (version + 1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shopstream.schemas.models import (
    CancelOrder,
    OrderCancelled,
    OrderReviewed,
    OrderState,
    OrderStatusChanged,
    WorkItemDecided,
)

from .lifecycle import snapshot
from .mapping import StatusMapping
from .output_meta import output_meta
from .parking import DecisionEvent
from .record import OrderRecord

RULE_APPROVE = "decision.approve"
RULE_REJECT = "decision.reject"
RULE_BLOCK = "review.block"
#: The mapping a decision's cancellation runs with: it moves no payment or fulfillment status.
NO_STATUS_MAPPING = StatusMapping(source="review")


@dataclass(frozen=True)
class Plan:
    """What a decision does to an order's record (see the module docstring)."""

    record: OrderRecord
    rules: tuple[str, ...] = ()
    cancel: OrderCancelled | None = None
    note: str | None = None
    item_id: str | None = None
    always_record: bool = False
    noop: str | None = None


def plan(rec: OrderRecord, event: DecisionEvent) -> Plan:
    """The plan for one decision event on a known order."""
    if isinstance(event, OrderReviewed):
        return _verdict(rec, event)
    return _decision(rec, event)


def _verdict(rec: OrderRecord, event: OrderReviewed) -> Plan:
    holds = rec.review_holds | frozenset(event.hold_reasons)
    block = event.action == "block"
    if holds == rec.review_holds and not rec.awaiting_review and not block:
        return Plan(rec, noop=f"verdict {event.meta.event_id} adds nothing to order {rec.order_id}")
    rules = (f"review.rules@{event.rules_version}", *(f"review.{r}" for r in event.rule_ids))
    cand = replace(rec, review_holds=holds, awaiting_review=False)
    cancel = _cancel(event, f"blocked by review rule(s) {', '.join(event.rule_ids)} "
                            f"(rules {event.rules_version})") if block else None
    return Plan(cand, rules=(*rules, RULE_BLOCK) if block else rules, cancel=cancel, item_id=event.work_item_id)


def _decision(rec: OrderRecord, event: WorkItemDecided) -> Plan:
    if event.subject_type != "order":
        return Plan(rec, noop=f"decision {event.meta.event_id} is about a {event.subject_type}, not an order")
    earlier = {d.split("=", 1)[0]: d.split("=", 1)[1] for d in rec.decisions}
    if event.item_id in earlier:
        same = earlier[event.item_id] == event.decision
        return Plan(rec, noop=f"work item {event.item_id} was already decided ({earlier[event.item_id]})"
                              + ("" if same else f": {event.decision} by {event.decided_by} ignored"))
    if event.decision not in ("approve", "reject"):
        return Plan(rec, noop=f"decision {event.decision!r} on work item {event.item_id} is neither approve nor reject")
    decided = rec.decisions | {f"{event.item_id}={event.decision}"}
    if event.decision == "approve":
        cand = replace(rec, decisions=decided, lifted=rec.lifted | frozenset(event.hold_reasons))
        return Plan(cand, rules=(RULE_APPROVE,), note=event.note, item_id=event.item_id, always_record=True)
    reason = f"rejected by {event.decided_by}" + (f": {event.note}" if event.note else "")
    return Plan(replace(rec, decisions=decided), rules=(RULE_REJECT,), cancel=_cancel(event, reason),
                note=event.note, item_id=event.item_id, always_record=True)


def _cancel(event: DecisionEvent, reason: str) -> OrderCancelled:
    """The whole-order cancellation a rejection or a block applies (caused by the decision event itself)."""
    at = event.decided_at if isinstance(event, WorkItemDecided) else event.meta.occurred_at
    order_id = event.subject_id if isinstance(event, WorkItemDecided) else event.order_id
    return OrderCancelled(meta=event.meta, order_id=order_id, cancelled_at=at, reason=reason, lines=[])


def cancel_command(event: DecisionEvent, order_id: str, reason: str | None) -> CancelOrder:
    """The CancelOrder for the shop when a decision cancelled the order."""
    by = event.decided_by if isinstance(event, WorkItemDecided) else event.meta.source
    return CancelOrder(meta=output_meta("CancelOrder", event.meta), order_id=order_id, reason=reason,
                       requested_by=f"user:{by}" if isinstance(event, WorkItemDecided) else by)


def annotate(change: OrderStatusChanged, decision: Plan) -> OrderStatusChanged:
    """A status change caused by a decision, naming its rules first, the note and the work item."""
    rules = "+".join(dict.fromkeys([*decision.rules, *change.rule.split("+")]))
    return change.model_copy(update={"rule": rules, "note": decision.note, "work_item_id": decision.item_id})


def recorded(state: OrderState, event: DecisionEvent, decision: Plan) -> tuple[OrderState, OrderStatusChanged]:
    """A decision that moved nothing, as a new version and a change with equal previous and current states."""
    new = state.model_copy(update={"meta": output_meta("OrderState", event.meta), "version": state.version + 1,
                                   "updated_at": event.meta.recorded_at, "last_event_id": event.meta.event_id})
    change = OrderStatusChanged(meta=output_meta("OrderStatusChanged", event.meta), order_id=state.order_id,
                                version=new.version, previous=snapshot(state), current=snapshot(new),
                                cause_event_id=event.meta.event_id, cause_event_type=event.meta.event_type,
                                source=event.meta.source, rule="+".join(decision.rules), note=decision.note,
                                work_item_id=decision.item_id)
    return new, change
