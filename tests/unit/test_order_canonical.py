"""The canonical order across sources: parking, shop vs facts, shipments, audit trail, record, and arrival order."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopstream.processors.orders.canonical import apply, expire
from shopstream.processors.orders.outcome import RecordOutcome
from shopstream.processors.orders.output_meta import ORDERS_NAMESPACE
from shopstream.processors.orders.parking import AnyEvent, source_time
from shopstream.processors.orders.policy import OrdersPolicy, Parking
from shopstream.processors.orders.record import OrderRecord
from shopstream.schemas.models import (
    AnomalyAlert,
    CancelFulfillment,
    CreateInvoice,
    CreateReturnLabel,
    IssueRefund,
    OrderState,
    OrderStatusChanged,
    ReleaseOrder,
    ReservationChanged,
    ReviewItem,
    StockAdjusted,
)

from .order_events import (
    CTX,
    LINES,
    LONG_WAIT,
    at,
    authorized,
    cancelled,
    captured,
    chargeback,
    context,
    delivered,
    dispatched,
    failed,
    feed,
    lines,
    money,
    placed,
    records_of,
    refunded,
    return_inspected,
    return_received,
    return_requested,
    ship_created,
    ship_exception,
    updated,
)

DAY = 24 * 60

# --- parking ---------------------------------------------------------------------------------------------


def test_payment_before_the_order_is_parked_then_applied() -> None:
    capture = captured(3)
    out = apply(None, capture, CTX)
    assert out.parked and out.changed and out.outputs == () and out.state is None and not out.duplicate
    assert [p.event for p in out.record.parked] == [capture]
    assert out.record.parked[0].parked_at == capture.meta.recorded_at
    again = apply(out.record, capture, CTX)
    assert not again.changed and again.outputs == () and "already parked" in again.notes[0]

    order = placed()
    done = apply(out.record, order, CTX)
    assert done.record.parked == ()
    state = done.state
    assert state is not None and (state.payment_status, state.status, state.version) == ("paid", "ready_to_fulfill", 2)
    assert [(s.cause.event_id, s.before is None) for s in done.steps] == [(order.meta.event_id, True),
                                                                          (capture.meta.event_id, False)]
    changes = records_of([done], OrderStatusChanged)
    assert [(c.version, c.current.payment_status, c.cause_event_id) for c in changes] == [
        (1, "pending", order.meta.event_id), (2, "paid", capture.meta.event_id)]
    assert [o.topic for o in done.outputs].count("orders.state") == 1 and done.outputs[-1].record == state
    assert len(records_of([done], CreateInvoice)) == 1 and len(records_of([done], ReleaseOrder)) == 1
    # the capture's redelivery after the drain is a duplicate
    assert apply(done.record, capture, CTX).duplicate


def test_parked_events_apply_in_source_time_order() -> None:
    events = [refunded(20, "5"), captured(10), dispatched(15), authorized(5)]
    record: OrderRecord | None = None
    for event in events:
        record = apply(record, event, CTX).record
    done = apply(record, placed(), CTX)
    assert [s.cause.event_type for s in done.steps] == ["OrderPlaced", "PaymentAuthorized", "PaymentCaptured",
                                                         "ShipmentDispatched", "RefundIssued"]
    assert not done.rejected and "refund_exceeds_capture" not in done.record.done


def test_an_update_creates_the_order_and_drains_too() -> None:
    record = apply(None, captured(3), CTX).record
    done = apply(record, updated(5, "paid"), CTX)
    assert done.state is not None and done.state.payment_status == "paid" and done.record.parked == ()
    late = apply(done.record, placed(), CTX)  # fills in placed_at, nothing else
    assert late.state is not None and late.state.placed_at == at(0) and late.state.version == done.state.version + 1
    assert late.state.source_updated_at == at(5) and records_of([late], OrderStatusChanged) == []
    assert apply(late.record, placed(), CTX).duplicate


def test_cancel_before_the_order_is_parked_and_applied() -> None:
    record = apply(None, cancelled(5), CTX).record
    done = apply(record, placed(), CTX)
    assert done.state is not None and done.state.status == "cancelled"
    [cancel] = records_of([done], CancelFulfillment)
    assert cancel.lines == [] and cancel.meta.causation_id == cancelled(5).meta.event_id
    assert apply(done.record, cancelled(5), CTX).duplicate  # the gap of the bare-state path is closed


def test_parking_is_bounded() -> None:
    ctx = context(orders=OrdersPolicy(parking=Parking(max_events_per_order=2)))
    record, outs = feed(captured(30), authorized(10), dispatched(20), ctx=ctx)
    assert record is not None
    assert [type(p.event).__name__ for p in record.parked] == ["PaymentAuthorized", "ShipmentDispatched"]
    [review] = records_of(outs, ReviewItem)
    assert review.kind == "parking_overflow" and review.event_id == captured(30).meta.event_id
    assert json.loads(review.details["event"])["payment_id"] == "pi_1"
    assert outs[-1].parked  # the third arrival is kept: the latest by source time was evicted


def test_parked_events_expire_to_review() -> None:
    ctx = context(orders=OrdersPolicy(parking=Parking(expire_after=timedelta(hours=24))))
    capture = captured(3)
    record = apply(None, capture, ctx).record
    assert expire(record, ctx, at(3 + 23 * 60)).outputs == ()
    out = expire(record, ctx, at(3 + 25 * 60))
    [review] = records_of([out], ReviewItem)
    assert review.kind == "parked_expired" and review.event_id == capture.meta.event_id
    expected = uuid.uuid5(ORDERS_NAMESPACE, f"ReviewItem:{capture.meta.event_id}:parked_expired")
    assert review.meta.event_id == str(expected)
    assert json.loads(review.details["event"])["amount"]["amount"] == "15"
    assert out.record.is_empty()  # the adapter may delete the entry


def test_expiry_also_happens_when_another_event_arrives() -> None:
    ctx = context(orders=OrdersPolicy(parking=Parking(expire_after=timedelta(hours=24))))
    record = apply(None, captured(3), ctx).record
    out = apply(record, dispatched(2 * DAY), ctx)
    assert [r.kind for r in records_of([out], ReviewItem)] == ["parked_expired"]
    assert [type(p.event).__name__ for p in out.record.parked] == ["ShipmentDispatched"]


def test_a_late_order_still_takes_its_parked_events() -> None:
    """Waiting ends when the order arrives: parked events are applied, not expired, whatever their age."""
    ctx = context(orders=OrdersPolicy(parking=Parking(expire_after=timedelta(hours=1))))
    record = apply(None, captured(3), ctx).record
    done = apply(record, placed(minute=10 * 60), ctx)
    assert done.state is not None and done.state.payment_status == "paid"


# --- the shop and the other sources ---------------------------------------------------------------------------


def test_cancel_refused_when_the_carrier_already_has_it() -> None:
    record, _ = feed(placed(), captured(3), dispatched(10))
    out = apply(record, cancelled(12), CTX)
    assert out.rejected and out.record == record
    [review] = records_of([out], ReviewItem)
    assert review.details["current.fulfillment_status"] == "shipped" and "-> cancelled is not allowed" in review.reason
    assert review.details["event_type"] == "OrderCancelled"


def test_cancel_of_an_unshipped_order_cancels_fulfillment() -> None:
    record, outs = feed(placed(), authorized(2), ship_created(3), cancelled(5, "voided"))
    assert record is not None and record.state is not None
    assert (record.state.status, record.state.payment_status) == ("cancelled", "voided")
    [cancel] = records_of(outs, CancelFulfillment)
    assert cancel.lines == [] and cancel.reason == "customer"


def test_line_cancellation_cancels_those_lines() -> None:
    gone = lines([("l1", 1)])
    _, outs = feed(placed(), captured(3), cancelled(5, order_lines=gone))
    [cancel] = records_of(outs, CancelFulfillment)
    assert cancel.lines == gone


def test_a_cancelled_order_cannot_ship() -> None:
    record, _ = feed(placed(), cancelled(5))
    out = apply(record, dispatched(10), CTX)
    assert out.rejected and "the order is cancelled" in out.rejected[0]
    [review] = records_of([out], ReviewItem)
    assert review.details["attempted.fulfillment_status"] == "shipped"
    assert review.details["current.status"] == "cancelled"


# --- shipments ------------------------------------------------------------------------------------------------


def test_fulfillment_from_shipments() -> None:
    record, _ = feed(placed(), captured(3), ship_created(5, "s1", [("SKU-l1", 2)]))
    assert record is not None and record.state is not None and record.state.fulfillment_status == "unfulfilled"
    steps = [
        (dispatched(6, "s1", [("SKU-l1", 2)]), "partially_shipped", "partially_shipped"),
        (dispatched(7, "s2", [("SKU-l2", 1)]), "shipped", "shipped"),
        (ship_exception(8, "s2"), "exception", "on_hold"),
        (dispatched(9, "s2", [("SKU-l2", 1)]), "shipped", "shipped"),
        (delivered(20, "s1", [("SKU-l1", 2)]), "shipped", "shipped"),
        (delivered(21, "s2", [("SKU-l2", 1)]), "delivered", "delivered"),
    ]
    for event, fulfillment, status in steps:
        record, _ = feed(event, record=record)
        assert record is not None and record.state is not None
        assert (record.state.fulfillment_status, record.state.status) == (fulfillment, status), event.meta.event_type
    assert record is not None
    late = apply(record, ship_exception(30, "s1"), CTX)
    assert late.rejected and "delivered -> exception" in late.rejected[0]
    old = apply(record, ship_exception(15, "s1"), CTX)  # history: recorded, changes nothing visible
    assert not old.rejected and old.state is None


def test_a_scan_without_lines_counts_as_the_whole_order() -> None:
    record, _ = feed(placed(), captured(3), dispatched(6, "s1", [("SKU-l1", 2)]))
    assert record is not None and record.state is not None and record.state.fulfillment_status == "partially_shipped"
    record, _ = feed(delivered(20, "s9"), record=record)  # the carrier's id for a parcel, no item detail
    assert record is not None and record.state is not None and record.state.fulfillment_status == "delivered"


def test_every_shipment_exception_is_reviewed_once() -> None:
    record, outs = feed(placed(), captured(3), dispatched(6, "s1", [("SKU-l1", 2)]), ship_exception(8, "s1"))
    assert record is not None and record.state is not None
    assert record.state.fulfillment_status == "partially_shipped"  # not all units handed over yet
    [review] = [r for r in records_of(outs, ReviewItem) if r.kind == "shipment_exception"]
    assert review.details["exception_code"] == "address_issue"
    _, again = feed(dispatched(9, "s2", [("SKU-l2", 1)]), record=record)
    assert [r for r in records_of(again, ReviewItem) if r.kind == "shipment_exception"] == []


def test_shop_fulfilled_and_carrier_delivered_join() -> None:
    record, _ = feed(placed(), captured(3), updated(5, "paid", "fulfilled"), delivered(30))
    assert record is not None and record.state is not None
    assert record.state.fulfillment_status == "delivered" and record.shop is not None
    assert record.shop.fulfillment_status == "shipped"


# --- audit trail and ids ------------------------------------------------------------------------------------------


def test_status_change_names_every_dimension_cause_source_and_rule() -> None:
    record, _ = feed(placed(), captured(3))
    out = apply(record, dispatched(10), CTX)
    [change] = records_of([out], OrderStatusChanged)
    assert out.state is not None and change.version == out.state.version
    assert change.previous is not None
    assert (change.previous.status, change.previous.payment_status, change.previous.fulfillment_status,
            change.previous.return_status, change.previous.hold_reasons) == (
        "ready_to_fulfill", "paid", "unfulfilled", "none", [])
    assert (change.current.status, change.current.fulfillment_status) == ("shipped", "shipped")
    assert change.cause_event_id == dispatched(10).meta.event_id
    assert (change.cause_event_type, change.source, change.rule) == ("ShipmentDispatched", "carrier",
                                                                      "shipments.shipped")


def test_amount_only_change_bumps_version_without_status_change() -> None:
    record, _ = feed(placed(), captured(3, "10", final=False))
    out = apply(record, captured(4, "2", final=False), CTX)
    assert out.state is not None and out.state.captured == money("12")
    assert records_of([out], OrderStatusChanged) == []


def test_fact_that_changes_nothing_visible_is_stored_silently() -> None:
    record, _ = feed(placed(), captured(3))
    out = apply(record, authorized(2), CTX)  # late authorisation of a paid order
    assert out.changed and out.outputs == () and out.state is None and not out.duplicate


def test_outputs_are_deterministic_and_unique() -> None:
    record = apply(None, captured(3, "20"), CTX).record
    first, second = apply(record, placed(), CTX), apply(record, placed(), CTX)
    assert first == second
    ids = [o.record.meta.event_id for o in first.outputs]  # type: ignore[attr-defined]
    assert len(ids) == len(set(ids))
    for o in first.outputs:
        meta = o.record.meta  # type: ignore[attr-defined]
        assert meta.source == "shopstream.orders" and meta.causation_id in {placed().meta.event_id,
                                                                              captured(3, "20").meta.event_id}
    [alert] = records_of([first], AnomalyAlert)
    cause = captured(3, "20").meta.event_id
    assert alert.meta.event_id == str(uuid.uuid5(ORDERS_NAMESPACE, f"AnomalyAlert:{cause}:over_capture"))


def test_event_of_another_order_is_a_bug() -> None:
    other = OrderRecord(order_id="other")
    with pytest.raises(ValueError, match="record of order 'other'"):
        apply(other, captured(3), CTX)


# --- the table value ---------------------------------------------------------------------------------------------


def test_record_round_trips_through_json() -> None:
    record, _ = feed(captured(3), placed(shipping="4.90"), dispatched(10), delivered(2 * DAY), chargeback(2 * DAY),
                     return_requested(3 * DAY), return_received(4 * DAY), return_inspected(5 * DAY),
                     refunded(6 * DAY, "5"), ctx=LONG_WAIT)
    assert record is not None
    parked = apply(None, captured(3), CTX).record
    for value in (record, parked):
        data = json.loads(json.dumps(value.to_dict()))
        assert OrderRecord.from_dict(data) == value


def test_a_bare_state_from_the_old_table_is_wrapped() -> None:
    record, _ = feed(placed("paid"))
    assert record is not None and record.state is not None
    legacy = record.state.model_dump(mode="json")
    wrapped = OrderRecord.from_dict(legacy)
    assert wrapped.state == record.state == wrapped.shop and wrapped.released and "invoice" in wrapped.done
    out = apply(wrapped, captured(3), CTX)  # nothing is re-sent for what already happened
    assert records_of([out], ReleaseOrder) == [] and records_of([out], CreateInvoice) == []


def test_unknown_record_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        OrderRecord.from_dict({"format": 99, "order_id": "1"})


# --- arrival order and duplicates: the property -------------------------------------------------------------------


@st.composite
def _stories(draw: st.DrawFn) -> list[AnyEvent]:
    """The events of one consistent order (all sources), listed in source-time order."""
    events: list[AnyEvent] = [placed(draw(st.sampled_from(["pending", None])))]
    if draw(st.booleans()):  # a cancelled order
        if draw(st.booleans()):
            events.append(authorized(2, risk=draw(st.sampled_from([None, "normal"]))))
        if draw(st.booleans()):
            events.append(ship_created(3))
        events.append(cancelled(5, "voided" if draw(st.booleans()) else None))
        return events
    if draw(st.booleans()):
        events.append(failed(1))
    if draw(st.booleans()):
        events.append(authorized(2, risk=draw(st.sampled_from([None, "normal", "highest"]))))
    split = draw(st.booleans())
    events += [captured(3, "10", final=False), captured(4, "5")] if split else [captured(3)]
    shop_paid = draw(st.booleans())
    if shop_paid:
        events.append(updated(5, "paid"))
    two = draw(st.booleans())
    parcels = [("s1", [("SKU-l1", 2)]), ("s2", [("SKU-l2", 1)])] if two else [("s1", [])]
    all_delivered = True
    for n, (sid, spec) in enumerate(parcels):
        base = 6 + 10 * n
        if draw(st.booleans()):
            events.append(ship_created(base, sid, spec))
        events.append(dispatched(base + 1, sid, spec if draw(st.booleans()) else []))  # carrier scans: no lines
        if draw(st.booleans()):
            events += [ship_exception(base + 2, sid), dispatched(base + 3, sid, spec)]
        if draw(st.booleans()):
            events.append(delivered(40 + n, sid, spec if draw(st.booleans()) else []))
        else:
            all_delivered = False
    shop_fulfilled = draw(st.booleans())
    if shop_fulfilled:
        events.append(updated(50, "paid" if shop_paid or draw(st.booleans()) else None, "fulfilled"))
    if all_delivered and draw(st.booleans()):
        events += [return_requested(DAY), return_received(2 * DAY)]
        if draw(st.booleans()):
            events.append(return_inspected(3 * DAY, grade=draw(st.sampled_from(["as_new", "damaged"]))))
    refund = draw(st.sampled_from([[], ["5"], ["5", "8"], ["15"]]))
    events += [refunded(4 * DAY + i, amount) for i, amount in enumerate(refund)]
    if refund and draw(st.booleans()):
        events.append(updated(4 * DAY + 10, "refunded" if refund[-1] == "15" else "partially_refunded",
                              "fulfilled" if shop_fulfilled else None))
    if draw(st.booleans()):
        events.append(chargeback(5 * DAY))
    return sorted(events, key=source_time)


def _deliver(events: Sequence[AnyEvent], script: Sequence[int]) -> tuple[OrderRecord | None, list[RecordOutcome]]:
    record: OrderRecord | None = None
    outcomes: list[RecordOutcome] = []
    seen: set[int] = set()
    for i in script:
        out = apply(record, events[i], LONG_WAIT)
        assert not out.rejected, out.rejected
        if i in seen:
            assert out.outputs == () and not out.changed, f"redelivery of {events[i].meta.event_type} did something"
        seen.add(i)
        if out.state is not None:
            assert out.steps and out.state.version == out.steps[-1].after.version
            before = record.state.version if record is not None and record.state is not None else 0
            assert out.state.version == before + len(out.steps)
        outcomes.append(out)
        record = out.record
    return record, outcomes


_BOOKKEEPING = {"meta", "version", "updated_at", "last_event_id"}


def _essence(record: OrderRecord | None) -> dict[str, Any]:
    """What must not depend on arrival order: the canonical order, every fact, the once-only decisions."""
    assert record is not None and record.state is not None and record.shop is not None and not record.parked
    return {
        "state": record.state.model_dump(exclude=_BOOKKEEPING),
        "shop": record.shop.model_dump(exclude=_BOOKKEEPING),
        "facts": (record.payments, record.shipments, record.returns, record.shipping, record.order_number),
        "decisions": sorted(k for k in record.done if k == "invoice" or k.startswith(("return.", "chargeback:"))),
    }


def _ids(outcomes: Sequence[RecordOutcome], kinds: tuple[type, ...]) -> list[str]:
    return sorted(o.record.meta.event_id for out in outcomes for o in out.outputs  # type: ignore[attr-defined]
                  if isinstance(o.record, kinds))


@st.composite
def _deliveries(draw: st.DrawFn) -> tuple[list[AnyEvent], list[int]]:
    events = draw(_stories())
    script = list(draw(st.permutations(range(len(events)))))
    for index, position in draw(st.lists(st.tuples(st.integers(0, len(events) - 1), st.integers(0, 64)),
                                         max_size=10)):
        script.insert(min(position, len(script)), index)
    return events, script


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_deliveries())
def test_any_arrival_order_with_duplicates_reaches_the_in_order_result(
        delivery: tuple[list[AnyEvent], list[int]]) -> None:
    events, script = delivery
    oracle, in_order = _deliver(events, range(len(events)))
    final, shuffled = _deliver(events, script)
    assert _essence(final) == _essence(oracle)
    # records that belong to one event (not to the path) are the very same records, emitted once
    per_event = (CreateReturnLabel, IssueRefund, StockAdjusted)
    assert _ids(shuffled, per_event) == _ids(in_order, per_event)
    assert len(_ids(shuffled, (CreateInvoice,))) == len(_ids(in_order, (CreateInvoice,))) <= 1
    # every produced record has its own id
    every = [o.record.meta.event_id for out in shuffled for o in out.outputs]  # type: ignore[attr-defined]
    assert len(every) == len(set(every))
    # the audit trail: consecutive versions, each previous = the one before
    changes = records_of(shuffled, OrderStatusChanged)
    for before, after in itertools.pairwise(changes):
        assert after.previous == before.current and after.version > before.version


def test_the_in_order_story_is_what_the_property_compares_against() -> None:
    """One hand-checked story: paid in two captures, shipped in two parcels, partly returned, partly refunded."""
    events: list[AnyEvent] = [placed(), authorized(2), captured(3, "10", final=False), captured(4, "5"),
                              dispatched(8, "s1", [("SKU-l1", 2)]), dispatched(9, "s2", [("SKU-l2", 1)]),
                              delivered(20, "s1"), delivered(21, "s2"), return_requested(DAY),
                              return_received(2 * DAY), return_inspected(3 * DAY, grade="damaged"),
                              refunded(4 * DAY, "2.50")]
    record, outs = _deliver(events, range(len(events)))
    assert record is not None and record.state is not None
    state: OrderState = record.state
    assert (state.status, state.payment_status, state.fulfillment_status, state.return_status) == (
        "return_requested", "partially_refunded", "delivered", "partially_returned")
    assert (state.captured, state.refunded) == (money("15"), money("2.50"))
    assert [type(r).__name__ for r in (o.record for out in outs for o in out.outputs)
            if not isinstance(r, OrderState | OrderStatusChanged | ReservationChanged)] == [
        "ReleaseOrder", "CreateInvoice", "CreateReturnLabel", "StockAdjusted", "IssueRefund", "CreateCreditNote"]
    # stock: reserved when placed, each parcel ships its own units (keyed by SKU, for inventory)
    assert [(o.topic, o.key, o.record.action, o.record.quantity) for out in outs for o in out.outputs
            if isinstance(o.record, ReservationChanged)] == [
        ("inventory.reservations", "SKU-l1", "reserve", 2), ("inventory.reservations", "SKU-l2", "reserve", 1),
        ("inventory.reservations", "SKU-l1", "ship", 2), ("inventory.reservations", "SKU-l2", "ship", 1)]
    assert state.lines == LINES


def test_waiting_names_the_records_the_sweep_must_visit() -> None:
    from shopstream.processors.orders.canonical import waiting

    parked = apply(None, captured(3), CTX).record
    assert waiting(parked)
    record, _ = feed(placed(), captured(3), dispatched(10))
    assert record is not None and not waiting(record)
    record, _ = feed(return_requested(DAY), record=record)  # no delivery known yet
    assert record is not None and waiting(record)
    record, _ = feed(delivered(20), record=record)
    assert record is not None and not waiting(record)
    record, _ = feed(return_inspected(2 * DAY), record=record)
    assert record is not None and not waiting(record)


def test_cancel_before_its_order_is_parked_then_applied_once() -> None:
    """A cancel delivered before its order waits for it; redelivered after the creation it is a duplicate."""
    cancel = cancelled(5)
    first = apply(None, cancel, CTX)
    assert first.parked and first.state is None
    record, outs = feed(placed("pending"), record=first.record)
    assert record is not None and record.state is not None and record.state.status == "cancelled"
    again = apply(record, cancel, CTX)
    assert again.duplicate and not again.changed and again.outputs == ()
    assert [type(r).__name__ for r in records_of(outs, CancelFulfillment)] == ["CancelFulfillment"]


def _ships(outs: list[RecordOutcome]) -> list[tuple[str, int, str | None]]:
    return [(o.record.sku, o.record.quantity, o.record.reason) for out in outs for o in out.outputs
            if isinstance(o.record, ReservationChanged) and o.record.action == "ship"]


def test_an_order_the_shop_reports_fulfilled_ships_its_reservations() -> None:
    """No dispatch event (a shop without carrier webhooks): the units still stop being reserved."""
    _, outs = feed(placed("paid"), updated(20, fulfillment="fulfilled"))
    assert _ships(outs) == [("SKU-l1", 2, "order.fulfilled"), ("SKU-l2", 1, "order.fulfilled")]


def test_a_delivery_without_a_dispatch_ships_once_and_a_late_dispatch_adds_its_own_idempotent_ship() -> None:
    _, outs = feed(placed("paid"), delivered(30), dispatched(10))
    ships = _ships(outs)
    assert ships[:2] == [("SKU-l1", 2, "order.fulfilled"), ("SKU-l2", 1, "order.fulfilled")]
    # The late dispatch's ship is ignored by the ATP core (already shipped); ids never collide.
    ids = [o.record.meta.event_id for out in outs for o in out.outputs if isinstance(o.record, ReservationChanged)]
    assert len(ids) == len(set(ids))


def test_a_dispatch_ships_once_and_the_shipped_transition_adds_nothing() -> None:
    _, outs = feed(placed("paid"), dispatched(10))
    assert _ships(outs) == [("SKU-l1", 2, "shipment.dispatched"), ("SKU-l2", 1, "shipment.dispatched")]
