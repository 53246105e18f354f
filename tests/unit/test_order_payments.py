"""Payment reconciliation of the canonical order: exact amounts, invoice once, anomalies, holds, release."""

from __future__ import annotations

import uuid
from decimal import Decimal

from shopstream.processors.orders.canonical import apply
from shopstream.processors.orders.output_meta import ORDERS_NAMESPACE
from shopstream.processors.orders.payments import PaymentFacts, capture_fingerprint, record_event
from shopstream.schemas.models import (
    AnomalyAlert,
    CreateInvoice,
    HoldOrder,
    OrderLine,
    OrderStatusChanged,
    ReleaseOrder,
    ReviewItem,
)

from .order_events import (
    CTX,
    authorized,
    captured,
    chargeback,
    failed,
    feed,
    lines,
    money,
    placed,
    records_of,
    refunded,
    updated,
)


def _kinds(outcomes: list, topic: str = "alerts.anomalies") -> list[str]:  # type: ignore[type-arg]
    return [a.kind for a in records_of(outcomes, AnomalyAlert, topic)]


def test_capture_equal_to_total_pays_and_invoices_once() -> None:
    record, outs = feed(placed(), captured(3))
    assert record is not None and record.state is not None
    state = record.state
    assert (state.payment_status, state.status) == ("paid", "ready_to_fulfill")
    assert state.captured == money("15")
    [invoice] = records_of(outs, CreateInvoice)
    assert invoice.amount == money("15") and invoice.order_number == "#1001" and invoice.lines == state.lines
    assert invoice.meta.event_id == str(uuid.uuid5(ORDERS_NAMESPACE, f"CreateInvoice:{captured(3).meta.event_id}"))
    # redelivery: nothing; the shop's later `paid` snapshot: no second invoice
    again = apply(record, captured(3), CTX)
    assert again.duplicate and not again.changed and again.outputs == ()
    _, later = feed(updated(5, "paid"), record=record)
    assert records_of(later, CreateInvoice) == []
    assert _kinds(outs) == []


def test_shop_paid_snapshot_alone_invoices() -> None:
    _, outs = feed(placed("paid"))
    [invoice] = records_of(outs, CreateInvoice)
    assert invoice.amount == money("15")


def test_under_capture_is_partially_paid_until_the_rest_arrives() -> None:
    record, outs = feed(placed(), captured(3, "10", final=False))
    assert record is not None and record.state is not None
    assert record.state.payment_status == "partially_paid" and record.state.status == "pending_payment"
    assert records_of(outs, CreateInvoice) == [] and _kinds(outs) == []
    assert records_of(outs, ReleaseOrder) == []
    record, outs = feed(captured(4, "5"), record=record)
    assert record is not None and record.state is not None
    assert record.state.payment_status == "paid" and record.state.captured == money("15")
    assert len(records_of(outs, CreateInvoice)) == 1 and len(records_of(outs, ReleaseOrder)) == 1


def test_exact_decimals_no_float_drift() -> None:
    cheap = lines([("l1", 3)], price="0.1")  # 0.3 EUR
    record, outs = feed(placed(order_lines=cheap), captured(1, "0.1", final=False), captured(2, "0.2"))
    assert record is not None and record.state is not None
    assert record.state.captured.amount == Decimal("0.3") == record.state.total.amount
    assert record.state.payment_status == "paid"
    assert len(records_of(outs, CreateInvoice)) == 1 and _kinds(outs) == []


def test_zero_decimal_currency() -> None:
    yen = [OrderLine(line_id="l1", sku="SKU-l1", quantity=1, unit_price=money("1200", "JPY"))]
    record, outs = feed(placed(order_lines=yen, currency="JPY"), captured(1, "1200", currency="JPY"))
    assert record is not None and record.state is not None
    assert record.state.payment_status == "paid" and record.state.captured == money("1200", "JPY")
    assert len(records_of(outs, CreateInvoice)) == 1


def test_over_capture_alerts_and_reviews_without_invoice() -> None:
    record, outs = feed(placed(), captured(3, "20"))
    assert record is not None and record.state is not None
    assert record.state.payment_status == "paid" and record.state.captured == money("20")
    [alert] = records_of(outs, AnomalyAlert)
    assert alert.kind == "over_capture" and alert.severity == "warning" and alert.subject == f"order:{record.order_id}"
    assert alert.evidence["over_by"] == "5" and alert.evidence["total"] == "15"
    assert alert.detected_at == captured(3, "20").meta.recorded_at
    reviews = [r for r in records_of(outs, ReviewItem) if r.kind == "over_capture"]
    assert len(reviews) == 1 and reviews[0].event_id == captured(3, "20").meta.event_id
    assert records_of(outs, CreateInvoice) == []
    # raised once: another event later does not raise it again
    _, later = feed(updated(9, "paid"), record=record)
    assert _kinds(later) == []


def test_currency_mismatch_is_evidence_not_money() -> None:
    usd = captured(3, "15", key="cap-usd", currency="USD")
    record, outs = feed(placed(), usd)
    assert record is not None and record.state is not None
    assert record.state.payment_status == "pending" and record.state.captured == money("0")
    assert _kinds(outs) == ["currency_mismatch"]
    [review] = [r for r in records_of(outs, ReviewItem) if r.kind == "currency_mismatch"]
    assert review.details["currency"] == "USD" and review.details["order_currency"] == "EUR"
    assert usd.meta.event_id in record.payments.foreign
    assert apply(record, usd, CTX).duplicate


def test_the_same_capture_under_two_ids_counts_once() -> None:
    first, resent = captured(3, key="cap-a"), captured(3, key="cap-b")  # same payment, amount, time
    record, outs = feed(placed(), first, resent)
    assert record is not None and record.state is not None
    assert record.state.captured == money("15") and len(record.payments.captures) == 1
    assert _kinds(outs) == [] and len(records_of(outs, CreateInvoice)) == 1
    assert outs[-1].duplicate and "same capture" in outs[-1].notes[0]


def test_same_capture_under_two_ids_converges_whatever_comes_first() -> None:
    a, b = captured(3, key="cap-a"), captured(3, key="cap-b")
    one = PaymentFacts()
    for event in (a, b):
        one = record_event(one, event, "EUR")[0]
    two = PaymentFacts()
    for event in (b, a):
        two = record_event(two, event, "EUR")[0]
    assert one == two
    key = capture_fingerprint("pi_1", money("15"), a.captured_at)
    assert one.captures[key].event_id == min(a.meta.event_id, b.meta.event_id)


def test_double_capture_alerts() -> None:
    record, outs = feed(placed(), captured(3), captured(7))  # two distinct final captures of pi_1
    assert record is not None and record.state is not None
    assert record.state.captured == money("30")
    assert sorted(_kinds(outs)) == ["double_capture", "over_capture"]
    [double] = [a for a in records_of(outs, AnomalyAlert) if a.kind == "double_capture"]
    assert double.severity == "critical" and double.evidence["payment_id"] == "pi_1"
    assert double.evidence["captures"] == "2"
    assert len(records_of(outs, CreateInvoice)) == 1  # the first capture matched the total


def test_partial_captures_of_one_payment_are_not_a_double_capture() -> None:
    _, outs = feed(placed(), captured(3, "5", final=False), captured(4, "10"))
    assert _kinds(outs) == []


def test_refunds_partial_cumulative_and_full() -> None:
    record, outs = feed(placed(), captured(3), refunded(10, "5"))
    assert record is not None and record.state is not None
    assert record.state.payment_status == "partially_refunded" and record.state.refunded == money("5")
    # Stripe's cumulative figure grows under one refund id: replaced, not added; a stale figure changes nothing
    record, _ = feed(refunded(11, "8"), record=record)
    assert record is not None and record.state is not None and record.state.refunded == money("8")
    stale = apply(record, refunded(10, "5"), CTX)
    assert stale.duplicate
    record, outs = feed(refunded(12, "15"), record=record)
    assert record is not None and record.state is not None
    assert (record.state.payment_status, record.state.status) == ("refunded", "refunded")
    [change] = records_of(outs, OrderStatusChanged)
    assert change.rule == "payments.refunded_in_full"
    assert change.previous is not None and change.previous.payment_status == "partially_refunded"


def test_separate_refunds_add_up() -> None:
    record, _ = feed(placed(), captured(3), refunded(10, "5", refund_id="re_1"), refunded(11, "4", refund_id="re_2"))
    assert record is not None and record.state is not None and record.state.refunded == money("9")


def test_refund_larger_than_captured_alerts() -> None:
    record, outs = feed(placed(), captured(3, "10", final=False), refunded(10, "12"))
    assert record is not None
    assert "refund_exceeds_capture" in _kinds(outs)
    [alert] = [a for a in records_of(outs, AnomalyAlert) if a.kind == "refund_exceeds_capture"]
    assert alert.severity == "critical" and alert.evidence == {
        "order_id": "1001", "refunded": "12", "captured": "10", "currency": "EUR"}


def test_chargeback_holds_alerts_and_reviews_once() -> None:
    record, outs = feed(placed(), captured(3))
    assert len(records_of(outs, ReleaseOrder)) == 1
    record, outs = feed(chargeback(20), record=record)
    assert record is not None and record.state is not None
    state = record.state
    assert (state.status, state.payment_status, state.hold_reasons) == ("on_hold", "disputed", ["chargeback:dp_1"])
    [hold] = records_of(outs, HoldOrder)
    assert hold.reasons == ["chargeback:dp_1"]
    assert [a.kind for a in records_of(outs, AnomalyAlert)] == ["chargeback"]
    assert sorted(r.kind for r in records_of(outs, ReviewItem)) == ["chargeback", "hold"]
    [change] = records_of(outs, OrderStatusChanged)
    assert change.rule == "payments.disputed+holds.chargeback"
    assert change.current.hold_reasons == ["chargeback:dp_1"] and change.previous is not None
    assert change.previous.hold_reasons == []
    assert records_of(outs, ReleaseOrder) == []
    again = apply(record, chargeback(20), CTX)
    assert again.duplicate and again.outputs == ()


def test_chargeback_before_payment_never_releases() -> None:
    _, outs = feed(placed(), chargeback(2), captured(3))
    assert records_of(outs, ReleaseOrder) == []
    assert len(records_of(outs, HoldOrder)) == 1


def test_risky_authorisation_holds_instead_of_releasing() -> None:
    record, outs = feed(placed(), authorized(2, risk="highest"))
    assert record is not None and record.state is not None
    assert record.state.status == "on_hold" and record.state.hold_reasons == ["payment_risk:highest"]
    assert records_of(outs, ReleaseOrder) == [] and len(records_of(outs, HoldOrder)) == 1


def test_release_once_per_transition() -> None:
    _, outs = feed(placed(), authorized(2), captured(3), updated(4, "paid"))
    [release] = records_of(outs, ReleaseOrder)
    assert release.meta.causation_id == authorized(2).meta.event_id


def test_failed_then_authorized() -> None:
    record, _ = feed(placed(), failed(1))
    assert record is not None and record.state is not None and record.state.payment_status == "failed"
    record, outs = feed(authorized(2), record=record)
    assert record is not None and record.state is not None and record.state.payment_status == "authorized"
    [change] = records_of(outs, OrderStatusChanged)
    assert change.rule == "payments.authorized"


def test_provider_and_shop_views_join() -> None:
    """The shop still says pending while the provider captured: paid; a later `pending` snapshot changes nothing."""
    record, _ = feed(placed(), captured(3), updated(5, "pending"))
    assert record is not None and record.state is not None and record.state.payment_status == "paid"
    assert record.shop is not None and record.shop.payment_status == "pending"


def test_capture_on_a_voided_order_conflicts() -> None:
    record, _ = feed(placed(), updated(2, "voided"))
    out = apply(record, captured(3), CTX)
    assert out.rejected and out.record == record
    [review] = records_of([out], ReviewItem)
    assert review.kind == "rejected_transition" and "conflicting sources" in review.reason
    assert review.details["current.payment_status"] == "voided"
    assert apply(record, captured(3), CTX).outputs == out.outputs  # redelivery: the identical review item
