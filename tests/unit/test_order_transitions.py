"""The order state machine over its full transition table, the source precedence (`join`) and release."""

from __future__ import annotations

import itertools

import pytest

from shopstream.processors.orders import transitions
from shopstream.processors.orders.canonical import apply
from shopstream.processors.orders.transitions import (
    PRECEDENCE,
    Dimension,
    Dimensions,
    base_graph,
    derive_status,
    join,
    releasable,
)
from shopstream.schemas.models import ReviewItem

from .order_events import CTX, placed, updated

# Every state each state may move to (itself included), written out independently of the tables.
EXPECTED_REACH: dict[Dimension, dict[str, set[str]]] = {
    "payment_status": {
        "pending": set(transitions.PAYMENT_STATES),
        "failed": set(transitions.PAYMENT_STATES),
        "authorized": {"authorized", "paid", "partially_paid", "voided", "disputed", "partially_refunded", "refunded"},
        "partially_paid": {"partially_paid", "paid", "disputed", "partially_refunded", "refunded"},
        "paid": {"paid", "disputed", "partially_refunded", "refunded"},
        "disputed": {"disputed", "paid", "partially_refunded", "refunded"},
        "partially_refunded": {"partially_refunded", "refunded"},
        "refunded": {"refunded"},
        "voided": {"voided"},
    },
    "fulfillment_status": {
        "unfulfilled": set(transitions.FULFILLMENT_STATES),
        "partially_shipped": {"partially_shipped", "shipped", "exception", "delivered"},
        "shipped": {"shipped", "exception", "delivered"},
        "exception": {"exception", "shipped", "delivered"},
        "delivered": {"delivered"},
    },
    "return_status": {
        "none": set(transitions.RETURN_STATES),
        "requested": {"requested", "received", "partially_returned", "returned"},
        "received": {"received", "partially_returned", "returned"},
        "partially_returned": {"partially_returned", "returned"},
        "returned": {"returned"},
    },
}

ALL_PAIRS = [(dimension, a, b) for dimension, states in transitions.STATES.items()
             for a, b in itertools.product(states, repeat=2)]


def test_expected_table_names_every_state() -> None:
    for dimension, states in transitions.STATES.items():
        assert set(EXPECTED_REACH[dimension]) == set(states)


@pytest.mark.parametrize(("dimension", "current", "target"), ALL_PAIRS)
def test_full_transition_table(dimension: Dimension, current: str, target: str) -> None:
    assert base_graph(dimension).allows(current, target) is (target in EXPECTED_REACH[dimension][current])


@pytest.mark.parametrize(("dimension", "current", "target"), ALL_PAIRS)
def test_rejected_stays_rejected(dimension: Dimension, current: str, target: str) -> None:
    """Reachability is transitive: a target unreachable now is unreachable from everything reachable later."""
    graph = base_graph(dimension)
    if not graph.allows(current, target):
        assert all(not graph.allows(later, target) for later in graph.reachable(current))


SHOPIFY_FINANCIAL = {"pending": "pending", "authorized": "authorized", "partially_paid": "partially_paid",
                     "paid": "paid", "partially_refunded": "partially_refunded", "refunded": "refunded",
                     "voided": "voided"}


@pytest.mark.parametrize(("before", "after"), list(itertools.product(SHOPIFY_FINANCIAL, repeat=2)))
def test_every_shop_payment_move_through_the_canonical_apply(before: str, after: str) -> None:
    """Every payment move a shop can express: applied iff the table allows it, else reviewed with both states."""
    created = apply(None, placed(before), CTX)
    assert created.state is not None
    out = apply(created.record, updated(5, after), CTX)
    allowed = base_graph("payment_status").allows(SHOPIFY_FINANCIAL[before], SHOPIFY_FINANCIAL[after])
    if allowed:
        assert not out.rejected
        assert out.record.state is not None and out.record.state.payment_status == SHOPIFY_FINANCIAL[after]
    else:
        assert out.rejected and out.record == created.record and out.state is None
        [item] = [o.record for o in out.outputs]
        assert isinstance(item, ReviewItem) and item.kind == "rejected_transition"
        assert item.details["current.payment_status"] == SHOPIFY_FINANCIAL[before]
        assert f"payment_status {SHOPIFY_FINANCIAL[before]} -> {SHOPIFY_FINANCIAL[after]}" in item.reason
        assert item.event_id == updated(5, after).meta.event_id


# --- precedence / join ------------------------------------------------------------------------------


@pytest.mark.parametrize(("dimension", "a", "b"), ALL_PAIRS)
def test_join_is_commutative_and_idempotent(dimension: Dimension, a: str, b: str) -> None:
    assert join(dimension, a, b) == join(dimension, b, a)
    assert join(dimension, a, a) == a


@pytest.mark.parametrize(("dimension", "a", "b"), ALL_PAIRS)
def test_join_only_moves_along_the_table(dimension: Dimension, a: str, b: str) -> None:
    joined = join(dimension, a, b)
    if joined is not None:
        graph = base_graph(dimension)
        assert graph.allows(a, joined) and graph.allows(b, joined)


@pytest.mark.parametrize(
    ("dimension", "a", "b", "expected"),
    [
        ("payment_status", "pending", "paid", "paid"),
        ("payment_status", "authorized", "partially_paid", "partially_paid"),
        ("payment_status", "paid", "disputed", "disputed"),
        ("payment_status", "disputed", "partially_refunded", "partially_refunded"),
        ("payment_status", "pending", "failed", "failed"),
        ("payment_status", "authorized", "voided", "voided"),
        ("payment_status", "voided", "paid", None),  # the shop voided, the provider captured: conflict
        ("payment_status", "voided", "refunded", None),
        ("fulfillment_status", "shipped", "exception", "exception"),
        ("fulfillment_status", "shipped", "partially_shipped", "shipped"),
        ("fulfillment_status", "exception", "delivered", "delivered"),
        ("return_status", "requested", "partially_returned", "partially_returned"),
    ],
)
def test_join_examples(dimension: Dimension, a: str, b: str, expected: str | None) -> None:
    assert join(dimension, a, b) == expected


def test_precedence_lists_every_state_once() -> None:
    for dimension, order in PRECEDENCE.items():
        assert sorted(order) == sorted(transitions.STATES[dimension])


def test_docstring_shows_the_tables_as_they_are() -> None:
    assert transitions.__doc__ is not None and transitions.render_tables() in transitions.__doc__


# --- summary and release ------------------------------------------------------------------------------


def test_a_hold_shows_also_while_a_return_runs() -> None:
    assert derive_status(Dimensions("disputed", "delivered", "requested", False, ("chargeback:dp_1",))) == "on_hold"
    assert derive_status(Dimensions("paid", "delivered", "requested", False, ())) == "return_requested"
    assert derive_status(Dimensions("paid", "delivered", "returned", False, ("chargeback:dp_1",))) == "returned"


@pytest.mark.parametrize(
    ("payment", "fulfillment", "is_cancelled", "holds", "expected"),
    [
        ("paid", "unfulfilled", False, (), True),
        ("authorized", "unfulfilled", False, (), True),  # capture on shipment
        ("partially_refunded", "partially_shipped", False, (), True),
        ("pending", "unfulfilled", False, (), False),
        ("partially_paid", "unfulfilled", False, (), False),
        ("disputed", "unfulfilled", False, (), False),
        ("paid", "unfulfilled", False, ("chargeback:dp_1",), False),
        ("paid", "unfulfilled", True, (), False),
        ("paid", "shipped", False, (), False),
    ],
)
def test_releasable(payment: str, fulfillment: str, is_cancelled: bool, holds: tuple[str, ...],
                    expected: bool) -> None:
    assert releasable(payment, fulfillment, is_cancelled, holds) is expected
