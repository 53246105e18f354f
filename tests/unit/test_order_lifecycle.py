"""The pure order lifecycle: transition tables, each processing rule, and idempotence as a property."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shopstream.processors.orders import transitions
from shopstream.processors.orders.lifecycle import (
    OrderEvent,
    Outcome,
    apply,
)
from shopstream.processors.orders.mapping import load_mapping, parse_mapping
from shopstream.processors.orders.output_meta import ORDERS_NAMESPACE
from shopstream.processors.orders.transitions import (
    CANCELLABLE_FULFILLMENT,
    Dimensions,
    base_graph,
    derive_status,
    one_way_violations,
    render_tables,
)
from shopstream.schemas.models import (
    EventMeta,
    Money,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderState,
    OrderUpdated,
)

SHOPIFY = load_mapping("shopify")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ORDER = "1001"
_EVENT_NS = uuid.UUID("6f1c2a53-8d0e-4c55-9d51-3e1b2f7a9c40")


def _meta(event_type: str, key: str, minute: int) -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid5(_EVENT_NS, key)), event_type=event_type,
                     occurred_at=T0 + timedelta(minutes=minute), recorded_at=T0 + timedelta(minutes=minute, seconds=7),
                     source="shopify", source_event_id=f"wh-{key}", correlation_id=f"shopify:order:{ORDER}")


def _eur(amount: int | str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def _lines(qty: Iterable[tuple[str, int]] = (("l1", 2), ("l2", 1))) -> list[OrderLine]:
    return [OrderLine(line_id=lid, sku=f"SKU-{lid}", quantity=q, unit_price=_eur(5)) for lid, q in qty]


def _total(lines: Sequence[OrderLine]) -> Money:
    return _eur(sum(line.quantity * 5 for line in lines))


def placed(financial: str | None = None, fulfillment: str | None = None, minute: int = 0,
           key: str = "p", lines: list[OrderLine] | None = None) -> OrderPlaced:
    lines = _lines() if lines is None else lines
    return OrderPlaced(meta=_meta("OrderPlaced", key, minute), order_id=ORDER, order_number="#1001",
                       placed_at=T0 + timedelta(minutes=minute), currency="EUR", total=_total(lines),
                       lines=lines, source_financial_status=financial, source_fulfillment_status=fulfillment)


def updated(minute: int, financial: str | None = None, fulfillment: str | None = None, key: str | None = None,
            lines: list[OrderLine] | None = None, currency: str = "EUR") -> OrderUpdated:
    lines = _lines() if lines is None else lines
    total = _total(lines)
    return OrderUpdated(meta=_meta("OrderUpdated", key or f"u{minute}", minute), order_id=ORDER,
                        updated_at=T0 + timedelta(minutes=minute), currency=currency,
                        total=Money(amount=total.amount, currency=currency), lines=lines,
                        source_financial_status=financial, source_fulfillment_status=fulfillment)


def cancelled(minute: int, financial: str | None = None, key: str | None = None,
              lines: list[OrderLine] | None = None) -> OrderCancelled:
    return OrderCancelled(meta=_meta("OrderCancelled", key or f"c{minute}", minute), order_id=ORDER,
                          cancelled_at=T0 + timedelta(minutes=minute), reason="customer",
                          source_financial_status=financial, lines=lines or [])


def run(*events: OrderEvent, state: OrderState | None = None) -> OrderState | None:
    """Apply events in order; returns the final state (asserts nothing was rejected)."""
    for event in events:
        out = apply(state, event, SHOPIFY)
        assert out.rejected is None, out.rejected
        state = out.state or state
    return state


def created(financial: str | None = None, fulfillment: str | None = None) -> OrderState:
    state = run(placed(financial, fulfillment))
    assert state is not None
    return state


# --- the tables -----------------------------------------------------------------------------------


def test_docstring_shows_the_tables_as_they_are() -> None:
    assert transitions.__doc__ is not None
    assert render_tables() in transitions.__doc__


def test_tables_name_every_state_once() -> None:
    for dimension, moves in transitions.MOVES.items():
        assert set(moves) == set(transitions.STATES[dimension])


def test_cancellation_eligibility_is_one_way() -> None:
    assert one_way_violations(base_graph("fulfillment_status"), CANCELLABLE_FULFILLMENT) == []


@pytest.mark.parametrize(
    ("dimension", "current", "target", "allowed"),
    [
        ("payment_status", "pending", "authorized", True),
        ("payment_status", "pending", "paid", True),
        ("payment_status", "authorized", "paid", True),
        ("payment_status", "authorized", "refunded", True),  # a snapshot may skip paid
        ("payment_status", "paid", "partially_refunded", True),
        ("payment_status", "paid", "refunded", True),
        ("payment_status", "partially_refunded", "refunded", True),
        ("payment_status", "pending", "failed", True),
        ("payment_status", "failed", "pending", True),  # retry
        ("payment_status", "paid", "disputed", True),
        ("payment_status", "disputed", "paid", True),  # chargeback won
        ("payment_status", "paid", "paid", True),
        ("payment_status", "paid", "pending", False),
        ("payment_status", "paid", "authorized", False),
        ("payment_status", "refunded", "paid", False),
        ("payment_status", "partially_refunded", "paid", False),
        ("payment_status", "voided", "paid", False),
        ("payment_status", "paid", "voided", False),
        ("payment_status", "authorized", "pending", False),
        ("fulfillment_status", "unfulfilled", "partially_shipped", True),
        ("fulfillment_status", "unfulfilled", "delivered", True),
        ("fulfillment_status", "partially_shipped", "shipped", True),
        ("fulfillment_status", "shipped", "delivered", True),
        ("fulfillment_status", "shipped", "exception", True),
        ("fulfillment_status", "exception", "delivered", True),
        ("fulfillment_status", "shipped", "unfulfilled", False),
        ("fulfillment_status", "shipped", "partially_shipped", False),
        ("fulfillment_status", "delivered", "shipped", False),
        ("fulfillment_status", "exception", "unfulfilled", False),
        ("return_status", "none", "requested", True),
        ("return_status", "requested", "returned", True),
        ("return_status", "returned", "none", False),
    ],
)
def test_allowed_moves(dimension: transitions.Dimension, current: str, target: str, allowed: bool) -> None:
    assert base_graph(dimension).allows(current, target) is allowed


@pytest.mark.parametrize(
    ("payment", "fulfillment", "returns", "is_cancelled", "holds", "status"),
    [
        ("pending", "unfulfilled", "none", False, (), "pending_payment"),
        ("failed", "unfulfilled", "none", False, (), "pending_payment"),
        ("partially_paid", "unfulfilled", "none", False, (), "pending_payment"),
        ("authorized", "unfulfilled", "none", False, (), "ready_to_fulfill"),
        ("paid", "unfulfilled", "none", False, (), "ready_to_fulfill"),
        ("partially_refunded", "unfulfilled", "none", False, (), "ready_to_fulfill"),
        ("paid", "partially_shipped", "none", False, (), "partially_shipped"),
        ("pending", "shipped", "none", False, (), "shipped"),
        ("paid", "delivered", "none", False, (), "delivered"),
        ("paid", "exception", "none", False, (), "on_hold"),
        ("disputed", "delivered", "none", False, (), "on_hold"),
        ("paid", "unfulfilled", "none", False, ("fraud_review",), "on_hold"),
        ("paid", "delivered", "requested", False, (), "return_requested"),
        ("paid", "delivered", "partially_returned", False, (), "return_requested"),
        ("paid", "delivered", "returned", False, (), "returned"),
        ("refunded", "delivered", "returned", False, (), "refunded"),
        ("refunded", "unfulfilled", "none", False, (), "refunded"),
        ("refunded", "unfulfilled", "none", True, (), "cancelled"),
        ("paid", "unfulfilled", "none", True, ("fraud_review",), "cancelled"),
    ],
)
def test_summary_status(payment: str, fulfillment: str, returns: str, is_cancelled: bool,
                        holds: tuple[str, ...], status: str) -> None:
    assert derive_status(Dimensions(payment, fulfillment, returns, is_cancelled, holds)) == status


# --- OrderPlaced ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("financial", "fulfillment", "payment", "fulfilled", "status", "captured"),
    [
        (None, None, "pending", "unfulfilled", "pending_payment", 0),
        ("pending", None, "pending", "unfulfilled", "pending_payment", 0),
        ("authorized", None, "authorized", "unfulfilled", "ready_to_fulfill", 0),
        ("paid", None, "paid", "unfulfilled", "ready_to_fulfill", 15),
        ("paid", "fulfilled", "paid", "shipped", "shipped", 15),
        ("partially_paid", None, "partially_paid", "unfulfilled", "pending_payment", 0),
    ],
)
def test_placed_creates_version_1(financial: str | None, fulfillment: str | None, payment: str, fulfilled: str,
                                  status: str, captured: int) -> None:
    event = placed(financial, fulfillment)
    out = apply(None, event, SHOPIFY)
    state = out.state
    assert state is not None and out.rejected is None and not out.duplicate
    assert (state.payment_status, state.fulfillment_status, state.return_status, state.status) == (
        payment, fulfilled, "none", status)
    assert state.version == 1
    assert state.captured == _eur(captured)
    assert state.refunded == _eur(0)
    assert state.total == _eur(15)
    assert state.lines == event.lines
    assert state.placed_at == event.placed_at
    assert state.source_updated_at == event.placed_at
    assert state.cancelled_at is None and state.hold_reasons == []
    assert state.updated_at == event.meta.recorded_at
    assert state.last_event_id == event.meta.event_id
    change = out.change
    assert change is not None
    assert change.previous is None
    assert change.current.status == status
    assert change.version == 1
    assert change.rule.startswith("order.placed")
    if financial is not None:
        assert f"shopify.financial_status.{financial}" in change.rule.split("+")


def test_placed_twice_is_a_duplicate() -> None:
    state = created("paid")
    out = apply(state, placed("paid"), SHOPIFY)
    assert out == Outcome(duplicate=True, note=out.note)
    # a different OrderPlaced for the same order (e.g. a re-sent creation) is a duplicate too
    out = apply(state, placed("pending", key="p-again", minute=3), SHOPIFY)
    assert out.duplicate and out.state is None


def test_unmapped_status_is_rejected_not_guessed() -> None:
    out = apply(None, placed("expired"), SHOPIFY)
    assert out.state is None and out.rejected is not None
    assert "unmapped financial_status 'expired'" in out.rejected
    out = apply(created(), updated(5, fulfillment="in_transit"), SHOPIFY)
    assert out.state is None and out.rejected is not None and "'in_transit'" in out.rejected


# --- OrderUpdated ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at_creation", "update", "expected"),
    [
        # (Shopify financial_status when placed, Shopify financial_status in a later snapshot,
        #  resulting canonical payment_status or "rejected")
        ("pending", "authorized", "authorized"),
        ("pending", "paid", "paid"),
        ("pending", "voided", "voided"),
        ("authorized", "paid", "paid"),
        ("authorized", "voided", "voided"),
        ("authorized", "refunded", "refunded"),
        ("partially_paid", "paid", "paid"),
        ("paid", "partially_refunded", "partially_refunded"),
        ("paid", "refunded", "refunded"),
        ("partially_refunded", "refunded", "refunded"),
        ("paid", "paid", "paid"),
        ("paid", None, "paid"),  # no information keeps the dimension
        ("paid", "pending", "rejected"),
        ("paid", "authorized", "rejected"),
        ("paid", "voided", "rejected"),
        ("refunded", "paid", "rejected"),
        ("partially_refunded", "paid", "rejected"),
        ("voided", "paid", "rejected"),
        ("authorized", "pending", "rejected"),
    ],
)
def test_payment_transitions(at_creation: str, update: str | None, expected: str) -> None:
    state = created(at_creation)
    out = apply(state, updated(5, update), SHOPIFY)
    if expected == "rejected":
        assert out.state is None and out.change is None and not out.duplicate
        assert out.rejected is not None
        assert f"payment_status {state.payment_status} -> " in out.rejected
        assert out.rejected.count(state.payment_status) >= 1
    else:
        assert out.rejected is None and out.state is not None
        assert out.state.payment_status == expected
        assert out.state.version == 2


@pytest.mark.parametrize(
    ("at_creation", "update", "expected"),
    [
        (None, "partial", "partially_shipped"),
        (None, "fulfilled", "shipped"),
        (None, "restocked", "unfulfilled"),
        ("partial", "fulfilled", "shipped"),
        ("fulfilled", "fulfilled", "shipped"),
        ("fulfilled", None, "rejected"),  # Shopify's null means unfulfilled: backwards
        ("fulfilled", "partial", "rejected"),
        ("fulfilled", "restocked", "rejected"),
        ("partial", "unfulfilled", "rejected"),
    ],
)
def test_fulfillment_transitions(at_creation: str | None, update: str | None, expected: str) -> None:
    state = created("paid", at_creation)
    out = apply(state, updated(5, "paid", update), SHOPIFY)
    if expected == "rejected":
        assert out.state is None and out.rejected is not None
        assert f"fulfillment_status {state.fulfillment_status} -> " in out.rejected
    else:
        assert out.rejected is None and out.state is not None
        assert out.state.fulfillment_status == expected


def test_update_applies_snapshot_and_records_the_change() -> None:
    state = created("pending")
    lines = _lines([("l1", 3)])
    event = updated(5, "paid", None, lines=lines)
    out = apply(state, event, SHOPIFY)
    new = out.state
    assert new is not None
    assert new.version == 2
    assert new.payment_status == "paid" and new.status == "ready_to_fulfill"
    assert new.lines == lines and new.total == _eur(15)
    assert new.captured == _eur(15)  # paid implies the total was captured
    assert new.source_updated_at == event.updated_at
    assert new.placed_at == state.placed_at
    assert new.updated_at == event.meta.recorded_at
    assert new.last_event_id == event.meta.event_id
    change = out.change
    assert change is not None
    assert change.previous is not None
    assert (change.previous.status, change.current.status) == ("pending_payment", "ready_to_fulfill")
    assert (change.previous.payment_status, change.current.payment_status) == ("pending", "paid")
    assert change.rule == "shopify.financial_status.paid"
    assert change.cause_event_id == event.meta.event_id
    assert change.cause_event_type == "OrderUpdated"
    assert change.source == "shopify"
    assert change.version == 2


def test_update_changing_two_dimensions_cites_both_rules() -> None:
    out = apply(created("pending"), updated(5, "paid", "fulfilled"), SHOPIFY)
    assert out.change is not None
    assert out.change.rule == "shopify.financial_status.paid+shopify.fulfillment_status.fulfilled"
    assert out.change.current.status == "shipped"


def test_update_without_status_change_bumps_version_but_emits_no_change() -> None:
    state = created("paid")
    out = apply(state, updated(5, "paid", lines=_lines([("l1", 1)])), SHOPIFY)
    assert out.state is not None and out.state.version == 2
    assert out.change is None


@pytest.mark.parametrize("minute", [0, -1, 4, 5])
def test_stale_or_equal_snapshot_is_not_applied(minute: int) -> None:
    state = run(placed("pending"), updated(5, "paid"))
    assert state is not None
    out = apply(state, updated(minute, "pending", key=f"late-{minute}"), SHOPIFY)
    assert out.duplicate and out.state is None and out.change is None and out.rejected is None
    assert out.note is not None and "stale" in out.note


def test_same_update_twice_is_a_duplicate() -> None:
    state = created("pending")
    event = updated(5, "paid")
    first = apply(state, event, SHOPIFY)
    assert first.state is not None
    again = apply(first.state, event, SHOPIFY)
    assert again.duplicate and again.state is None
    # also after something else was applied in between
    later = run(updated(6, "paid", "fulfilled"), state=first.state)
    assert apply(later, event, SHOPIFY).duplicate


def test_update_before_placed_creates_the_order() -> None:
    event = updated(5, "paid")
    out = apply(None, event, SHOPIFY)
    assert out.state is not None
    assert out.state.version == 1 and out.state.payment_status == "paid"
    assert out.state.placed_at is None and out.state.source_updated_at == event.updated_at
    assert out.change is not None and out.change.rule.startswith("order.created_from_update")
    late = apply(out.state, placed("pending"), SHOPIFY)
    assert late.duplicate and late.state is None


def test_currency_change_is_rejected() -> None:
    out = apply(created(), updated(5, currency="USD"), SHOPIFY)
    assert out.rejected is not None and "currency EUR -> USD" in out.rejected


def test_refunded_snapshot_books_the_refund() -> None:
    state = run(placed("paid"), updated(5, "refunded"))
    assert state is not None
    assert state.captured == _eur(15) and state.refunded == _eur(15)
    assert state.status == "refunded"


# --- OrderCancelled -------------------------------------------------------------------------------


def test_cancel_unknown_order_is_rejected() -> None:
    out = apply(None, cancelled(5), SHOPIFY)
    assert out.state is None and out.rejected is not None and "unknown order" in out.rejected


def test_cancel_pending_order() -> None:
    state = created("pending")
    event = cancelled(5, "voided")
    out = apply(state, event, SHOPIFY)
    new = out.state
    assert new is not None
    assert new.status == "cancelled" and new.cancelled_at == event.cancelled_at
    assert new.payment_status == "voided" and new.version == 2
    assert new.lines == state.lines  # the record keeps what was ordered
    assert out.change is not None
    assert out.change.rule == "order.cancelled+shopify.financial_status.voided"
    assert out.change.previous is not None and out.change.previous.status == "pending_payment"
    assert out.change.current.status == "cancelled"


def test_cancel_twice_is_a_duplicate() -> None:
    state = run(placed("paid"), cancelled(5))
    assert state is not None and state.status == "cancelled"
    assert apply(state, cancelled(5), SHOPIFY).duplicate
    assert apply(state, cancelled(9, key="another-cancel"), SHOPIFY).duplicate


@pytest.mark.parametrize("fulfillment", ["partial", "fulfilled"])
def test_cancel_of_shipped_order_is_rejected(fulfillment: str) -> None:
    state = created("paid", fulfillment)
    out = apply(state, cancelled(5), SHOPIFY)
    assert out.state is None and out.change is None and out.rejected is not None
    assert f"status {state.status}" in out.rejected and "-> cancelled" in out.rejected
    assert cancelled(5).meta.event_id in out.rejected


def test_cancel_with_forbidden_payment_move_is_rejected() -> None:
    out = apply(created("paid"), cancelled(5, "voided"), SHOPIFY)
    assert out.rejected is not None and "payment_status paid -> voided" in out.rejected


def test_cancelled_order_stays_cancelled_but_payment_moves_on() -> None:
    state = run(placed("paid"), cancelled(5), updated(7, "refunded", "restocked"))
    assert state is not None
    assert state.status == "cancelled" and state.payment_status == "refunded"
    assert state.refunded == _eur(15)


def test_cancelled_order_cannot_ship() -> None:
    state = run(placed("paid"), cancelled(5))
    out = apply(state, updated(7, "paid", "fulfilled"), SHOPIFY)
    assert out.rejected is not None and "the order is cancelled" in out.rejected


def test_cancel_older_than_the_newest_snapshot_still_applies() -> None:
    state = run(placed("pending"), updated(9, "paid"), cancelled(5))
    assert state is not None and state.status == "cancelled"


def test_cancel_some_lines() -> None:
    state = created("paid")
    event = cancelled(5, lines=_lines([("l1", 1)]))
    out = apply(state, event, SHOPIFY)
    new = out.state
    assert new is not None
    assert [(line.line_id, line.quantity) for line in new.lines] == [("l1", 1), ("l2", 1)]
    assert new.status == "ready_to_fulfill" and new.cancelled_at is None
    assert new.source_updated_at == event.cancelled_at
    assert out.change is None  # no status moved
    assert apply(new, event, SHOPIFY).duplicate
    # a snapshot older than the line cancellation is stale
    assert apply(new, updated(4, "paid"), SHOPIFY).duplicate


def test_cancel_all_lines_cancels_the_order() -> None:
    state = created("paid")
    out = apply(state, cancelled(5, lines=_lines([("l1", 2), ("l2", 5), ("nope", 1)])), SHOPIFY)
    assert out.state is not None and out.state.status == "cancelled"
    assert out.state.lines == state.lines
    assert out.change is not None and out.change.rule == "order.cancelled"


def test_line_cancel_older_than_snapshot_is_stale() -> None:
    state = run(placed("paid"), updated(9, "paid", lines=_lines([("l1", 1)])))
    out = apply(state, cancelled(5, lines=_lines([("l1", 1)])), SHOPIFY)
    assert out.duplicate


# --- produced records -----------------------------------------------------------------------------


def test_outputs_are_deterministic_and_traceable() -> None:
    state = created("pending")
    event = updated(5, "paid")
    first, second = apply(state, event, SHOPIFY), apply(state, event, SHOPIFY)
    assert first == second
    assert first.state is not None and first.change is not None
    for record, name in ((first.state, "OrderState"), (first.change, "OrderStatusChanged")):
        meta = record.meta
        assert meta.event_id == str(uuid.uuid5(ORDERS_NAMESPACE, f"{name}:{event.meta.event_id}"))
        assert meta.event_type == name
        assert meta.source == "shopstream.orders"
        assert meta.causation_id == event.meta.event_id
        assert meta.correlation_id == event.meta.correlation_id
        assert meta.recorded_at == event.meta.recorded_at
    assert first.state.meta.event_id != first.change.meta.event_id


def test_state_of_another_order_is_a_bug() -> None:
    other = created().model_copy(update={"order_id": "other"})
    with pytest.raises(ValueError, match="applied to state of order 'other'"):
        apply(other, updated(5), SHOPIFY)


def test_mapping_allow_from_permits_a_backward_move() -> None:
    data: dict[str, Any] = {
        "source": "shopify",
        "financial_status": [
            {"id": "acme.fin.paid", "values": ["paid"], "canonical": "paid"},
            {"id": "acme.fin.reopened", "values": ["pending"], "canonical": "pending", "allow_from": ["paid"]},
        ],
    }
    mapping = parse_mapping(data)
    state = apply(None, placed("paid"), mapping).state
    out = apply(state, updated(5, "pending"), mapping)
    assert out.state is not None and out.state.payment_status == "pending"
    assert out.change is not None and out.change.rule == "acme.fin.reopened"
    assert apply(state, updated(5, "pending"), SHOPIFY).rejected is not None


# --- idempotence under duplicates and reordering --------------------------------------------------

_LINE_IDS = ("l1", "l2")


@st.composite
def _line_sets(draw: st.DrawFn, min_size: int = 1) -> list[OrderLine]:
    ids = draw(st.lists(st.sampled_from(_LINE_IDS), min_size=min_size, max_size=2, unique=True))
    return _lines([(lid, draw(st.integers(1, 3))) for lid in ids])


_MINUTES = st.integers(0, 8)  # few distinct times: ties between snapshots happen


@st.composite
def _scenarios(draw: st.DrawFn) -> tuple[list[OrderEvent], list[int]]:
    """Distinct events of one order, and a delivery script (indices, with repeats, any order)."""
    events: list[OrderEvent] = []
    if draw(st.booleans()):
        events.append(placed(draw(st.sampled_from([None, "pending", "authorized", "paid"])),
                             minute=draw(_MINUTES), lines=draw(_line_sets())))
    for k in range(draw(st.integers(0, 4))):
        events.append(updated(
            draw(_MINUTES), key=f"u{k}", lines=draw(_line_sets()),
            financial=draw(st.sampled_from([None, "pending", "authorized", "partially_paid", "paid",
                                            "partially_refunded", "refunded", "voided", "expired"])),
            fulfillment=draw(st.sampled_from([None, "unfulfilled", "partial", "fulfilled", "restocked"]))))
    for k in range(draw(st.integers(0, 2))):
        events.append(cancelled(
            draw(_MINUTES), key=f"c{k}",
            financial=draw(st.sampled_from([None, "voided", "refunded", "partially_refunded"])),
            lines=draw(st.one_of(st.just([]), _line_sets()))))
    # The first delivered event creates the order: a cancel before its order is parked by the canonical
    # core, not by the lifecycle (test_order_canonical.py::test_cancel_before_its_order_is_parked_then_applied_once).
    creators = [i for i, e in enumerate(events)
                if not isinstance(e, OrderCancelled) and e.source_financial_status != "expired"]
    if not creators:
        events.append(updated(draw(_MINUTES), key="u-first", financial="pending"))
        creators = [len(events) - 1]
    first = draw(st.sampled_from(creators))
    rest = draw(st.lists(st.integers(0, len(events) - 1), max_size=24))
    return events, [first, *rest]


def _deliver(events: Sequence[OrderEvent], script: Sequence[int]) -> OrderState | None:
    state: OrderState | None = None
    seen: set[int] = set()
    was_cancelled = False
    for i in script:
        out = apply(state, events[i], SHOPIFY)
        if i in seen:
            assert out.state is None and out.change is None, f"redelivery of event {i} changed the order"
        seen.add(i)
        assert sum((out.state is not None, out.rejected is not None, out.duplicate)) <= 1
        if out.change is not None:
            assert out.state is not None and out.change.version == out.state.version
        if out.state is not None:
            new = out.state
            assert new.version == (state.version if state is not None else 0) + 1  # never decreases
            assert new.status == derive_status(Dimensions(new.payment_status, new.fulfillment_status,
                                                          new.return_status, new.cancelled_at is not None,
                                                          new.hold_reasons))
            assert new.last_event_id == events[i].meta.event_id
            state = new
        if was_cancelled:
            assert state is not None and state.status == "cancelled"
        was_cancelled = state is not None and state.status == "cancelled"
    return state


# Interleavings random search rarely hits, pinned so that weakening a rule is caught for sure:
# a snapshot rejected as a skip (authorized -> refunded) must stay rejected after a late `paid`
# snapshot moved the order on (reachability, not adjacency, decides) ...
_SKIP_THEN_LATE = ([placed("authorized"), updated(2, "refunded"), updated(1, "paid")], [0, 1, 2, 1])
# ... a cancel rejected for a shipped order must stay rejected after a later snapshot said restocked
# (nothing leads back to unfulfilled) ...
_CANCEL_SHIPPED = ([placed("paid"), updated(1, "paid", "fulfilled"), cancelled(3), updated(2, "paid", "restocked")],
                   [0, 1, 2, 3, 2])
# ... and a line cancellation applied once must not be applied again after a later snapshot.
_LINES_TWICE = ([placed("paid"), cancelled(2, lines=_lines([("l1", 1)])), updated(1, "paid")], [0, 1, 2, 1])


@settings(max_examples=400, deadline=None)
@given(_scenarios())
@example(_SKIP_THEN_LATE)
@example(_CANCEL_SHIPPED)
@example(_LINES_TWICE)
def test_duplicates_and_redelivery_do_not_change_the_outcome(scenario: tuple[list[OrderEvent], list[int]]) -> None:
    events, script = scenario
    oracle = _deliver(events, list(dict.fromkeys(script)))  # each event once, in first-delivery order
    assert _deliver(events, script) == oracle
