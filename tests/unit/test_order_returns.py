"""Returns policy as data: window, non-returnable SKUs, refunds per grade, shipping, restock; and its loader."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from shopstream.processors.orders.canonical import apply, expire
from shopstream.processors.orders.output_meta import ORDERS_NAMESPACE
from shopstream.processors.orders.policy import (
    OrdersPolicy,
    Parking,
    PolicyError,
    ReturnsPolicy,
    load_orders_policy,
    load_returns_policy,
)
from shopstream.schemas.models import (
    CreateReturnLabel,
    IssueRefund,
    OrderStatusChanged,
    ReviewItem,
    StockAdjusted,
)

from .order_events import (
    at,
    captured,
    context,
    delivered,
    dispatched,
    feed,
    lines,
    money,
    placed,
    records_of,
    return_inspected,
    return_received,
    return_requested,
)

DAY = 24 * 60  # minutes


def _delivered_order(shipping: str | None = None, order_lines=None, ctx=None):  # type: ignore[no-untyped-def]
    record, _ = feed(placed(shipping=shipping, order_lines=order_lines), captured(3, "15" if shipping is None else
                                                                                 str(Decimal(15) + Decimal(shipping))),
                     dispatched(60), delivered(2 * DAY), ctx=ctx or context())
    assert record is not None and record.state is not None and record.state.status == "delivered"
    return record


def _reviews(outs, kind: str) -> list[ReviewItem]:  # type: ignore[no-untyped-def]
    return [r for r in records_of(outs, ReviewItem) if r.kind == kind]


def test_request_within_the_window_gets_a_label() -> None:
    record = _delivered_order()
    request = return_requested(2 * DAY + 29 * DAY)
    record, outs = feed(request, record=record)
    [label] = records_of(outs, CreateReturnLabel)
    assert label.return_id == "r1" and label.lines == request.lines
    assert label.meta.event_id == str(uuid.uuid5(ORDERS_NAMESPACE, f"CreateReturnLabel:{request.meta.event_id}"))
    assert record is not None and record.state is not None
    assert (record.state.return_status, record.state.status) == ("requested", "return_requested")
    assert apply(record, request, context()).duplicate


def test_request_outside_the_window_goes_to_review() -> None:
    record = _delivered_order()
    _, outs = feed(return_requested(2 * DAY + 31 * DAY), record=record)
    assert records_of(outs, CreateReturnLabel) == []
    [review] = _reviews(outs, "return_outside_window")
    assert "outside the 30-day window" in review.reason and review.rule == "returns_policy.window_days"


def test_the_window_comes_from_the_policy() -> None:
    ctx = context(returns=ReturnsPolicy(window_days=60))
    record = _delivered_order(ctx=ctx)
    _, outs = feed(return_requested(2 * DAY + 31 * DAY), record=record, ctx=ctx)
    assert len(records_of(outs, CreateReturnLabel)) == 1


def test_non_returnable_sku_goes_to_review_even_before_delivery() -> None:
    ctx = context(returns=ReturnsPolicy(non_returnable_skus=frozenset({"SKU-l2"})))
    record, _ = feed(placed(), captured(3), ctx=ctx)
    _, outs = feed(return_requested(10, spec=[("l2", 1)]), record=record, ctx=ctx)
    [review] = _reviews(outs, "return_not_returnable")
    assert "SKU-l2" in review.reason and records_of(outs, CreateReturnLabel) == []


def test_request_before_the_delivery_is_decided_when_the_delivery_arrives() -> None:
    record, _ = feed(placed(), captured(3), dispatched(60))
    request = return_requested(3 * DAY)
    record, outs = feed(request, record=record)
    assert records_of(outs, CreateReturnLabel) == [] and records_of(outs, ReviewItem) == []
    _, outs = feed(delivered(2 * DAY), record=record)  # arrives late, scanned before the request
    [label] = records_of(outs, CreateReturnLabel)
    assert label.meta.causation_id == request.meta.event_id  # its cause stays the request


def test_request_without_delivery_expires_to_review() -> None:
    ctx = context(orders=OrdersPolicy(parking=Parking(expire_after=timedelta(hours=24))))
    record, _ = feed(placed(), captured(3), dispatched(60), ctx=ctx)
    record, _ = feed(return_requested(3 * DAY), record=record, ctx=ctx)
    assert record is not None
    assert expire(record, ctx, at(3 * DAY + 60)).outputs == ()
    out = expire(record, ctx, at(4 * DAY + 1))
    [review] = _reviews([out], "return_delivery_unknown")
    assert review.details["return_id"] == "r1" and out.changed
    assert expire(out.record, ctx, at(9 * DAY)).outputs == ()  # once
    _, later = feed(delivered(2 * DAY), record=out.record, ctx=ctx)
    assert records_of(later, CreateReturnLabel) == []  # decided: review


@pytest.mark.parametrize(("grade", "expected"), [("as_new", "5.00"), ("good", "5.00"), ("damaged", "2.50"),
                                                 ("unsellable", None)])
def test_inspection_refunds_per_grade(grade: str, expected: str | None) -> None:
    record = _delivered_order()
    inspection = return_inspected(5 * DAY, grade=grade, restockable=grade in ("as_new", "good"))
    record, outs = feed(return_requested(3 * DAY), return_received(4 * DAY), inspection, record=record)
    refunds = records_of(outs, IssueRefund)
    if expected is None:
        assert refunds == [] and len(_reviews(outs, "return_refund_zero")) == 1
    else:
        [refund] = refunds
        assert refund.amount == money(expected) and refund.reason == "return" and refund.return_id == "r1"
        assert refund.payment_id == "pi_1" and refund.provider == "stripe"
        assert refund.policy == f"returns_policy.refund_fraction:{grade}={ReturnsPolicy().fraction(grade)}"  # type: ignore[arg-type]
        assert [(x.sku, x.quantity, x.amount) for x in refund.lines] == [("SKU-l1", 1, money(expected))]
        assert refund.meta.event_id == str(uuid.uuid5(ORDERS_NAMESPACE, f"IssueRefund:{inspection.meta.event_id}"))
    assert record is not None and record.state is not None
    assert record.state.return_status == "partially_returned"


def test_refund_rounds_half_up_to_minor_units() -> None:
    cheap = lines([("l1", 1)], price="0.05")
    record, _ = feed(placed(order_lines=cheap), captured(3, "0.05"), dispatched(60), delivered(2 * DAY))
    _, outs = feed(return_requested(3 * DAY), return_inspected(5 * DAY, grade="damaged"), record=record)
    [refund] = records_of(outs, IssueRefund)
    assert refund.amount == money("0.03")  # 0.025 -> 0.03


def test_restockable_units_go_back_to_stock() -> None:
    record = _delivered_order()
    inspection = return_inspected(5 * DAY, spec=[("l1", 2), ("l2", 1)], restockable=True, location=None)
    _, outs = feed(return_requested(3 * DAY, spec=[("l1", 2), ("l2", 1)]), inspection, record=record)
    adjustments = [(o.topic, o.key, o.record) for out in outs for o in out.outputs
                   if isinstance(o.record, StockAdjusted)]
    assert [(t, k, r.sku, r.delta, r.location, r.reason, r.reference) for t, k, r in adjustments] == [
        ("inventory.stock", "SKU-l1", "SKU-l1", 2, "default", "return_restock", "r1"),
        ("inventory.stock", "SKU-l2", "SKU-l2", 1, "default", "return_restock", "r1"),
    ]
    assert adjustments[0][2].adjusted_at == inspection.inspected_at
    assert len({r.meta.event_id for _, _, r in adjustments}) == 2


def test_unrestockable_units_are_not_restocked() -> None:
    record = _delivered_order()
    _, outs = feed(return_requested(3 * DAY), return_inspected(5 * DAY, grade="damaged", restockable=False),
                   record=record)
    assert records_of(outs, StockAdjusted) == []


def test_inspection_of_a_refused_return_is_reviewed_not_refunded() -> None:
    record = _delivered_order()
    _, outs = feed(return_requested(40 * DAY), return_inspected(45 * DAY), record=record)
    assert records_of(outs, IssueRefund) == []
    assert len(_reviews(outs, "return_inspected_unapproved")) == 1
    assert len(records_of(outs, StockAdjusted)) == 1  # the unit is physically back all the same


def test_inspection_before_request_waits_for_the_approval() -> None:
    record = _delivered_order()
    inspection = return_inspected(5 * DAY)
    record, outs = feed(inspection, record=record)
    assert records_of(outs, IssueRefund) == [] and len(records_of(outs, StockAdjusted)) == 1
    _, outs = feed(return_requested(3 * DAY), record=record)
    [refund] = records_of(outs, IssueRefund)
    assert refund.meta.causation_id == inspection.meta.event_id


def test_inspection_without_request_expires_to_review() -> None:
    ctx = context()
    record = _delivered_order(ctx=ctx)
    record, _ = feed(return_inspected(5 * DAY), record=record, ctx=ctx)
    assert record is not None
    out = expire(record, ctx, at(7 * DAY))
    assert len(_reviews([out], "return_without_request")) == 1
    _, later = feed(return_requested(3 * DAY), record=out.record, ctx=ctx)
    assert records_of(later, IssueRefund) == []


def test_unpriceable_inspection_goes_to_review() -> None:
    record = _delivered_order()
    bad = return_inspected(5 * DAY, spec=[("zz", 1)])
    _, outs = feed(return_requested(3 * DAY), bad, record=record)
    assert records_of(outs, IssueRefund) == []
    [review] = _reviews(outs, "return_refund_unpriced")
    assert "not a line of the order" in review.reason


def test_full_return_refunds_shipping_once_when_the_policy_says_so() -> None:
    ctx = context(returns=ReturnsPolicy(refund_shipping=True))
    record = _delivered_order(shipping="4.90", ctx=ctx)
    everything = [("l1", 2), ("l2", 1)]
    record, outs = feed(return_requested(3 * DAY, spec=everything),
                        return_received(4 * DAY, spec=[("l1", 2)]),
                        return_inspected(5 * DAY, spec=[("l1", 2)], key="i1"), record=record, ctx=ctx)
    assert [r.reason for r in records_of(outs, IssueRefund)] == ["return"]
    assert record is not None and record.state is not None and record.state.return_status == "partially_returned"
    record, outs = feed(return_inspected(6 * DAY, spec=[("l2", 1)], key="i2"), record=record, ctx=ctx)
    refunds = records_of(outs, IssueRefund)
    assert [(r.reason, r.amount) for r in refunds] == [("return", money("5.00")), ("return_shipping", money("4.90"))]
    assert record is not None and record.state is not None
    assert (record.state.return_status, record.state.status) == ("returned", "returned")
    _, again = feed(return_received(7 * DAY, spec=[("l2", 1)]), record=record, ctx=ctx)
    assert records_of(again, IssueRefund) == []


def test_shipping_is_not_refunded_by_default() -> None:
    record = _delivered_order(shipping="4.90")
    everything = [("l1", 2), ("l2", 1)]
    _, outs = feed(return_requested(3 * DAY, spec=everything), return_inspected(5 * DAY, spec=everything),
                   record=record)
    assert [r.reason for r in records_of(outs, IssueRefund)] == ["return"]


def test_return_status_moves_forward_with_the_audit_trail() -> None:
    record = _delivered_order()
    record, outs = feed(return_requested(3 * DAY), return_received(4 * DAY), return_inspected(5 * DAY),
                        record=record)
    changes = records_of(outs, OrderStatusChanged)
    assert [(c.current.return_status, c.rule) for c in changes] == [
        ("requested", "returns.requested"), ("received", "returns.received"),
        ("partially_returned", "returns.partially_returned")]


# --- the policy files ---------------------------------------------------------------------------------------


def test_shipped_policies_load() -> None:
    returns = load_returns_policy()
    assert returns.window_days == 30 and returns.fraction("damaged") == Decimal("0.5")
    orders = load_orders_policy()
    assert orders.parking.max_events_per_order == 50 and orders.parking.expire_after == timedelta(hours=24)
    assert orders.severity("double_capture") == "critical"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


FRACTIONS = "refund_fraction: {as_new: 1, good: 0.9, damaged: 0.1, unsellable: 0}\n"


def test_fractions_are_exact_decimals(tmp_path: Path) -> None:
    policy = load_returns_policy(_write(tmp_path, FRACTIONS))
    assert policy.fraction("damaged") == Decimal("0.1") and policy.fraction("good") == Decimal("0.9")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("refund_fraction: {as_new: 1, good: 1, damaged: 0.5}\n", "missing ['unsellable']"),
        ("refund_fraction: {as_new: 1.5, good: 1, damaged: 0.5, unsellable: 0}\n", "between 0 and 1"),
        ("refund_fraction: {as_new: 1, good: 1, damaged: 0.12345, unsellable: 0}\n", "4 decimal places"),
        ("refund_fraction: {as_new: 1, good: 1, damaged: 0.5, unsellable: 0, mint: 1}\n", "mint"),
        ("window_days: -1\n", "window_days"),
        ("windows_days: 30\n", "windows_days"),
        ("window_days: [\n", "not valid YAML"),
    ],
)
def test_invalid_returns_policy(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=r"invalid returns policy|not valid YAML") as err:
        load_returns_policy(_write(tmp_path, text))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("parking: {expire_after: soon}\n", "cannot parse duration"),
        ("parking: {expire_after: 0s}\n", "positive"),
        ("parking: {max_events_per_order: 0}\n", "max_events_per_order"),
        ("alerts: {over_capture: warning}\n", "missing"),
        ("alerts: {over_capture: loud, double_capture: critical, currency_mismatch: warning, "
         "refund_exceeds_capture: critical, chargeback: warning}\n", "over_capture"),
        ("holds: {payment_risk_levels: [highest], other: 1}\n", "other"),
    ],
)
def test_invalid_orders_policy(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PolicyError, match="invalid orders policy") as err:
        load_orders_policy(_write(tmp_path, text))
    assert message in str(err.value)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_returns_policy(tmp_path / "nope.yaml")
