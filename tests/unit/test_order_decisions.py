"""Review verdicts and people's decisions in the orders core: holds that can be lifted, rejections that cancel."""

from __future__ import annotations

from shopstream.processors.orders.canonical import apply
from shopstream.processors.orders.policy import OrdersPolicy, ReviewGate
from shopstream.processors.orders.record import OrderRecord
from shopstream.schemas.models import (
    CancelFulfillment,
    CancelOrder,
    HoldOrder,
    OrderReviewed,
    OrderStatusChanged,
    ReleaseOrder,
    ReservationChanged,
    ReviewItem,
    WorkItemDecided,
)

from .order_events import (
    CTX,
    ORDER,
    at,
    authorized,
    captured,
    chargeback,
    context,
    dispatched,
    feed,
    meta,
    placed,
    records_of,
)

GATED = context(orders=OrdersPolicy(review=ReviewGate(await_verdict=True)))


def verdict(minute: float, action: str = "hold", holds: tuple[str, ...] = ("review:high-value",),
            rules: tuple[str, ...] = ("high-value",), key: str = "v1") -> OrderReviewed:
    return OrderReviewed(meta=meta("OrderReviewed", key, minute, "shopstream.review"), order_id=ORDER, action=action,
                         hold_reasons=list(holds), rule_ids=list(rules), rules_version="r1",
                         evidence={"high-value.total_eur": "389.44"}, work_item_id=f"item-{key}")


def decided(minute: float, decision: str = "approve", holds: tuple[str, ...] = ("review:high-value",),
            item: str = "item-v1", by: str = "alice", note: str | None = "called the customer",
            key: str | None = None) -> WorkItemDecided:
    return WorkItemDecided(meta=meta("WorkItemDecided", key or f"{item}:{decision}", minute, f"user:{by}"),
                           item_id=item, subject_type="order", subject_id=ORDER, decision=decision, decided_by=by,
                           decided_at=at(minute), note=note, kind="review_hold", hold_reasons=list(holds))


def test_a_review_hold_keeps_release_back_until_approved_then_releases_once() -> None:
    record, outs = feed(placed(), authorized(1), verdict(2), record=None, ctx=GATED)
    assert record is not None and record.state is not None
    assert record.state.hold_reasons == ["review:high-value"] and record.state.status == "on_hold"
    assert records_of(outs, ReleaseOrder) == [] and len(records_of(outs, HoldOrder)) == 1
    assert [r.kind for r in records_of(outs, ReviewItem)] == []  # the review worker raises its own item
    change = records_of(outs, OrderStatusChanged)[-1]
    assert change.rule == "review.rules@r1+review.high-value+holds.review" and change.source == "shopstream.review"
    record, outs = feed(decided(5), record=record, ctx=GATED)
    assert record is not None and record.state is not None
    assert record.state.hold_reasons == [] and record.state.status == "ready_to_fulfill"
    assert len(records_of(outs, ReleaseOrder)) == 1
    [change] = records_of(outs, OrderStatusChanged)
    assert (change.source, change.note, change.work_item_id) == ("user:alice", "called the customer", "item-v1")
    assert change.rule.startswith("decision.approve")
    again = apply(record, decided(5), GATED)
    assert again.duplicate and again.outputs == ()
    other = apply(record, decided(6, "reject", by="bob"), GATED)
    assert not other.changed and other.outputs == () and "already decided" in other.notes[0]


def test_the_gate_waits_for_a_verdict_and_a_pass_verdict_releases() -> None:
    record, outs = feed(placed(), authorized(1), ctx=GATED)
    assert records_of(outs, ReleaseOrder) == [] and record is not None and record.awaiting_review
    record, outs = feed(verdict(2, action="pass", holds=(), rules=()), record=record, ctx=GATED)
    assert len(records_of(outs, ReleaseOrder)) == 1 and records_of(outs, OrderStatusChanged) == []
    assert record is not None and not record.awaiting_review
    assert apply(record, verdict(2, action="pass", holds=(), rules=()), GATED).duplicate
    # without the gate (the default policy) an order releases at once, as before
    _, plain = feed(placed(), authorized(1))
    assert len(records_of(plain, ReleaseOrder)) == 1


def test_a_verdict_before_its_order_is_parked_and_applied_when_the_order_arrives() -> None:
    record, outs = feed(verdict(0.5), placed(minute=1), authorized(2), ctx=GATED)
    assert record is not None and record.state is not None
    assert record.state.hold_reasons == ["review:high-value"] and records_of(outs, ReleaseOrder) == []


def test_approve_lifts_exactly_the_named_reasons() -> None:
    record, _ = feed(placed(), authorized(1), verdict(2, holds=("review:high-value", "review:address-mismatch"),
                                                      rules=("high-value", "address-mismatch")), ctx=GATED)
    record, outs = feed(decided(5, holds=("review:high-value",)), record=record, ctx=GATED)
    assert record is not None and record.state is not None
    assert record.state.hold_reasons == ["review:address-mismatch"] and records_of(outs, ReleaseOrder) == []
    record, outs = feed(decided(6, holds=("review:address-mismatch",), item="item-2"), record=record, ctx=GATED)
    assert len(records_of(outs, ReleaseOrder)) == 1
    # a later verdict naming a lifted reason does not hold again
    assert record is not None
    again = apply(record, verdict(7, key="v2"), GATED)
    assert again.state is None and records_of([again], HoldOrder) == []


def test_reject_cancels_releases_reservations_and_asks_the_shop() -> None:
    record, _ = feed(placed(), authorized(1), verdict(2), ctx=GATED)
    record, outs = feed(decided(5, "reject", note="fraud"), record=record, ctx=GATED)
    assert record is not None and record.state is not None
    assert record.state.status == "cancelled" and record.state.cancelled_at == at(5)
    [cancel] = records_of(outs, CancelOrder)
    assert (cancel.order_id, cancel.requested_by) == (ORDER, "user:alice") and "fraud" in (cancel.reason or "")
    assert len(records_of(outs, CancelFulfillment)) == 1
    assert {r.action for r in records_of(outs, ReservationChanged)} == {"release"}
    [change] = records_of(outs, OrderStatusChanged)
    assert change.rule.startswith("decision.reject+order.cancelled") and change.note == "fraud"
    assert change.source == "user:alice" and change.work_item_id == "item-v1"


def test_reject_of_a_shipped_order_cannot_cancel_it() -> None:
    record, _ = feed(placed(), captured(1), dispatched(3))
    record, outs = feed(decided(5, "reject", holds=()), record=record, allow_rejects=True)
    assert record is not None and record.state is not None and record.state.cancelled_at is None
    assert records_of(outs, CancelOrder) == [] and [r.kind for r in records_of(outs, ReviewItem)] == [
        "rejected_transition"]


def test_a_block_verdict_cancels() -> None:
    record, outs = feed(placed(), verdict(1, action="block", holds=(), rules=("blocked-email",)), ctx=GATED)
    assert record is not None and record.state is not None and record.state.status == "cancelled"
    assert len(records_of(outs, CancelOrder)) == 1 and records_of(outs, ReleaseOrder) == []


def test_an_approved_flag_moves_nothing_but_is_on_the_trail() -> None:
    record, _ = feed(placed(), authorized(1))
    assert record is not None and record.state is not None
    version = record.state.version
    record, outs = feed(decided(5, holds=(), item="flag-1"), record=record)
    assert record is not None and record.state is not None and record.state.version == version + 1
    [change] = records_of(outs, OrderStatusChanged)
    assert change.previous == change.current and change.rule == "decision.approve"
    assert change.work_item_id == "flag-1" and records_of(outs, ReleaseOrder) == []


def test_a_chargeback_hold_is_lifted_by_a_decision_on_its_hold_item() -> None:
    record, outs = feed(placed(), captured(1), chargeback(5))
    [item] = [r for r in records_of(outs, ReviewItem) if r.kind == "hold"]
    assert item.details["hold_reasons"] == "chargeback:dp_1"
    record, outs = feed(decided(9, holds=("chargeback:dp_1",), item=item.meta.event_id), record=record)
    assert record is not None and record.state is not None and record.state.hold_reasons == []
    # lifted; still no release while the payment is disputed (the status stays on hold for that)
    assert records_of(outs, ReleaseOrder) == [] and record.state.payment_status == "disputed"
    assert not apply(record, chargeback(5), CTX).outputs  # the same dispute again holds nothing


def test_a_risk_hold_is_lifted_by_a_decision_and_the_order_released() -> None:
    record, outs = feed(placed(), authorized(1, risk="highest"))
    [item] = [r for r in records_of(outs, ReviewItem) if r.kind == "hold"]
    record, outs = feed(decided(4, holds=("payment_risk:highest",), item=item.meta.event_id), record=record)
    assert record is not None and record.state is not None and record.state.hold_reasons == []
    assert len(records_of(outs, ReleaseOrder)) == 1


def test_decisions_on_other_subjects_are_ignored_and_the_record_round_trips() -> None:
    record, _ = feed(placed(), authorized(1), verdict(2), ctx=GATED)
    assert record is not None
    other = decided(3).model_copy(update={"subject_type": "payment"})
    assert apply(record, other, GATED).outputs == ()
    unknown = apply(None, other.model_copy(update={"subject_id": "pi_1"}), GATED)
    assert not unknown.parked and not unknown.changed and unknown.outputs == ()  # never parked as an order
    record, _ = feed(decided(5), record=record, ctx=GATED)
    assert record is not None and OrderRecord.from_dict(record.to_dict()) == record
