"""The canonical order status machine as data: allowed moves per dimension and the summary status.

An order has three status dimensions (payment, fulfillment, return), a cancelled flag and a list of
hold reasons. Each dimension has a table of *direct* moves (`PAYMENT_MOVES`, `FULFILLMENT_MOVES`,
`RETURN_MOVES`). A move from `a` to `b` is allowed when `b` is **reachable** from `a` through the
table (staying put is always allowed): source systems send snapshots that may skip intermediate
states (authorized -> refunded when the `paid` snapshot was never sent), so reachability, not
adjacency, is the rule. Moving "backwards" (paid -> pending) is rejected because `pending` is not
reachable from `paid`. A status mapping entry may add extra direct moves (`allow_from`, see
`shopstream.processors.orders.mapping`); they join the graph before reachability is computed.

Why reachability (and not an adjacency check) matters for idempotence: if `b` is not reachable from
`a`, it is not reachable from any state reachable from `a` either, so an event rejected once stays
rejected whatever the order does afterwards. Redelivering it later can never apply it
(see the idempotence argument in `shopstream.processors.orders.lifecycle`).

Cancellation is one-way and guarded by fulfillment: an order may be cancelled only while its
fulfillment status is in `CANCELLABLE_FULFILLMENT`. That set must be *closed backwards*: no state
outside it may reach a state inside it (otherwise a cancel rejected for a shipped order could be
accepted on redelivery once the order moved back). `one_way_violations` checks that; the tables
here satisfy it and the mapping loader refuses `allow_from` entries that would break it.

Several sources speak about one dimension: the shop's snapshots (through a status mapping) and the
facts of the payment provider, the carrier and the returns platform (see
`shopstream.processors.orders.canonical`). Each source's own view moves along the table; the order's
value is their `join`: of two values, the one later in the dimension's **precedence** list wins,
provided it is reachable from the other (the shop says `pending`, the provider captured: `paid`).
Two values neither of which reaches the other (the shop voided the order, the provider captured
money: `voided` vs `paid`) **conflict**: the event that would create the conflict is rejected and
goes to review. Every state earlier in a precedence list reaches every later one except where a
conflict is intended (only `voided`, checked at import), so as each source's knowledge grows the
join only moves along allowed transitions, whatever order the sources' events arrive in.

Adding a dimension's state or move (payments, shipments, returns, holds) is a change to the tables
below, not to the code that applies them. The tables, rendered by `render_tables()` (a unit test
keeps this docstring in sync with them):

payment_status
  pending            -> authorized, failed, paid, partially_paid, voided
  failed             -> authorized, paid, partially_paid, pending, voided
  authorized         -> paid, partially_paid, voided
  partially_paid     -> paid, partially_refunded, refunded
  paid               -> disputed, partially_refunded, refunded
  disputed           -> paid, partially_refunded, refunded
  partially_refunded -> refunded
  refunded           -> (final)
  voided             -> (final)
fulfillment_status
  unfulfilled        -> delivered, exception, partially_shipped, shipped
  partially_shipped  -> delivered, exception, shipped
  shipped            -> delivered, exception
  exception          -> delivered, shipped
  delivered          -> (final)
return_status
  none               -> partially_returned, received, requested, returned
  requested          -> partially_returned, received, returned
  received           -> partially_returned, returned
  partially_returned -> returned
  returned           -> (final)
precedence when sources disagree, lowest first (later wins if reachable, else conflict)
  payment_status     pending, failed, authorized, voided, partially_paid, paid, disputed, partially_refunded, refunded
  fulfillment_status unfulfilled, partially_shipped, shipped, exception, delivered
  return_status      none, requested, received, partially_returned, returned
cancellation
  allowed while fulfillment_status is: unfulfilled
summary status (first matching rule wins)
  status.cancelled          cancelled          the order was cancelled
  status.refunded           refunded           payment_status is refunded
  status.returned           returned           return_status is returned
  status.on_hold            on_hold            hold reasons, fulfillment exception or disputed payment
  status.return_requested   return_requested   return_status is requested, received or partially_returned
  status.delivered          delivered          fulfillment_status is delivered
  status.shipped            shipped            fulfillment_status is shipped
  status.partially_shipped  partially_shipped  fulfillment_status is partially_shipped
  status.ready_to_fulfill   ready_to_fulfill   payment_status is authorized, paid or partially_refunded
  status.pending_payment    pending_payment    otherwise (pending, failed, partially_paid, voided)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from shopstream.schemas.models import FulfillmentStatus, OrderStatus, PaymentStatus, ReturnStatus

Dimension = Literal["payment_status", "fulfillment_status", "return_status"]

PAYMENT_STATES: tuple[str, ...] = get_args(PaymentStatus)
FULFILLMENT_STATES: tuple[str, ...] = get_args(FulfillmentStatus)
RETURN_STATES: tuple[str, ...] = get_args(ReturnStatus)
ORDER_STATES: tuple[str, ...] = get_args(OrderStatus)

STATES: Mapping[Dimension, tuple[str, ...]] = {
    "payment_status": PAYMENT_STATES,
    "fulfillment_status": FULFILLMENT_STATES,
    "return_status": RETURN_STATES,
}

# Direct moves per dimension; allowed moves are everything reachable through them.
# pending <-> failed: a failed payment can be retried. paid <-> disputed: a chargeback can be won.
# Neither cycle lets a state reach anything "earlier" than itself.
PAYMENT_MOVES: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"authorized", "failed", "paid", "partially_paid", "voided"}),
    "failed": frozenset({"authorized", "paid", "partially_paid", "pending", "voided"}),
    "authorized": frozenset({"paid", "partially_paid", "voided"}),
    "partially_paid": frozenset({"paid", "partially_refunded", "refunded"}),
    "paid": frozenset({"disputed", "partially_refunded", "refunded"}),
    "disputed": frozenset({"paid", "partially_refunded", "refunded"}),
    "partially_refunded": frozenset({"refunded"}),
    "refunded": frozenset(),
    "voided": frozenset(),
}

# exception <-> shipped: a carrier exception is resolved by delivering or re-shipping. Nothing leads
# back to unfulfilled, which keeps cancellation eligibility one-way.
FULFILLMENT_MOVES: Mapping[str, frozenset[str]] = {
    "unfulfilled": frozenset({"delivered", "exception", "partially_shipped", "shipped"}),
    "partially_shipped": frozenset({"delivered", "exception", "shipped"}),
    "shipped": frozenset({"delivered", "exception"}),
    "exception": frozenset({"delivered", "shipped"}),
    "delivered": frozenset(),
}

RETURN_MOVES: Mapping[str, frozenset[str]] = {
    "none": frozenset({"partially_returned", "received", "requested", "returned"}),
    "requested": frozenset({"partially_returned", "received", "returned"}),
    "received": frozenset({"partially_returned", "returned"}),
    "partially_returned": frozenset({"returned"}),
    "returned": frozenset(),
}

MOVES: Mapping[Dimension, Mapping[str, frozenset[str]]] = {
    "payment_status": PAYMENT_MOVES,
    "fulfillment_status": FULFILLMENT_MOVES,
    "return_status": RETURN_MOVES,
}

# Precedence of the values of each dimension when two sources disagree (see `join`): a later value
# wins over an earlier one that reaches it. `voided` is deliberately incomparable with the states in
# which money moved: a shop that voided an order and a provider that captured it conflict.
PAYMENT_PRECEDENCE: tuple[str, ...] = ("pending", "failed", "authorized", "voided", "partially_paid", "paid",
                                       "disputed", "partially_refunded", "refunded")
FULFILLMENT_PRECEDENCE: tuple[str, ...] = ("unfulfilled", "partially_shipped", "shipped", "exception", "delivered")
RETURN_PRECEDENCE: tuple[str, ...] = ("none", "requested", "received", "partially_returned", "returned")

PRECEDENCE: Mapping[Dimension, tuple[str, ...]] = {
    "payment_status": PAYMENT_PRECEDENCE,
    "fulfillment_status": FULFILLMENT_PRECEDENCE,
    "return_status": RETURN_PRECEDENCE,
}

# Pairs (earlier, later) of a precedence list that are meant to conflict; every other earlier state
# must reach every later one (checked at import).
INTENDED_CONFLICTS: frozenset[tuple[str, str]] = frozenset(
    ("voided", later) for later in PAYMENT_PRECEDENCE[PAYMENT_PRECEDENCE.index("voided") + 1:])

# An order can be cancelled only while nothing has left the warehouse.
CANCELLABLE_FULFILLMENT: frozenset[str] = frozenset({"unfulfilled"})

# Payment states in which an unfulfilled order may be shipped (capture-on-shipment counts).
FULFILLABLE_PAYMENT: frozenset[str] = frozenset({"authorized", "paid", "partially_refunded"})


# Fulfillment states in which the warehouse still has work to do, so releasing the order means something.
RELEASABLE_FULFILLMENT: frozenset[str] = frozenset({"unfulfilled", "partially_shipped"})


def releasable(payment_status: str, fulfillment_status: str, cancelled: bool, hold_reasons: Sequence[str]) -> bool:
    """Payable and not held: the warehouse may fulfil (ReleaseOrder).

    Not cancelled, no hold reason, payment in `FULFILLABLE_PAYMENT` (authorized counts:
    capture-on-shipment) and fulfillment still to do (`RELEASABLE_FULFILLMENT`).
    """
    return (not cancelled and not hold_reasons and payment_status in FULFILLABLE_PAYMENT
            and fulfillment_status in RELEASABLE_FULFILLMENT)


class TransitionError(ValueError):
    """A transition table (or a mapping's additions to it) is inconsistent."""


class StateGraph:
    """The allowed moves of one dimension: reachability over its direct moves (reflexive)."""

    __slots__ = ("_reach", "dimension", "moves")

    def __init__(self, dimension: Dimension, moves: Mapping[str, Iterable[str]]) -> None:
        known = set(STATES[dimension])
        edges: dict[str, frozenset[str]] = {state: frozenset() for state in STATES[dimension]}
        for src, targets in moves.items():
            bad = ({src} | set(targets)) - known
            if bad:
                raise TransitionError(f"{dimension}: unknown state(s) {sorted(bad)} in the transition table")
            edges[src] = edges[src] | frozenset(targets)
        self.dimension: Dimension = dimension
        self.moves: Mapping[str, frozenset[str]] = edges
        self._reach: dict[str, frozenset[str]] = {state: self._closure(state) for state in edges}

    def _closure(self, start: str) -> frozenset[str]:
        seen = {start}
        todo = [start]
        while todo:
            for nxt in self.moves[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    def with_moves(self, extra: Iterable[tuple[str, str]]) -> StateGraph:
        """A new graph with extra direct moves `(from, to)` added."""
        merged: dict[str, set[str]] = {src: set(dst) for src, dst in self.moves.items()}
        for src, dst in extra:
            merged.setdefault(src, set()).add(dst)
        return StateGraph(self.dimension, merged)

    def reachable(self, start: str) -> frozenset[str]:
        """Every state `start` may move to, itself included."""
        return self._reach[start]

    def allows(self, current: str, target: str) -> bool:
        """Whether an order in `current` may move to `target` (staying put is always allowed)."""
        return target in self._reach[current]


def base_graph(dimension: Dimension) -> StateGraph:
    """The core transition graph of a dimension, without any mapping's additions."""
    return _BASE_GRAPHS[dimension] if _BASE_GRAPHS else StateGraph(dimension, MOVES[dimension])


_BASE_GRAPHS: dict[Dimension, StateGraph] = {}


def join(dimension: Dimension, a: str, b: str) -> str | None:
    """What two sources' values of one dimension mean together; None when they conflict.

    The value later in the dimension's precedence wins when it is reachable from the other one.
    Commutative and idempotent; associative over the states that do not conflict.
    """
    order = PRECEDENCE[dimension]
    low, high = sorted((a, b), key=order.index)
    return high if base_graph(dimension).allows(low, high) else None


def one_way_violations(graph: StateGraph, guarded: frozenset[str]) -> list[tuple[str, str]]:
    """Pairs (outside, inside): a state outside `guarded` that can reach a state inside it."""
    return sorted(
        (src, dst)
        for src in graph.moves
        if src not in guarded
        for dst in graph.reachable(src) & guarded
    )


@dataclass(frozen=True)
class Dimensions:
    """Everything the summary status depends on."""

    payment_status: str
    fulfillment_status: str
    return_status: str
    cancelled: bool
    hold_reasons: Sequence[str] = ()


@dataclass(frozen=True)
class StatusRule:
    """One row of the summary-status table: the first rule whose `test` holds decides."""

    name: str
    status: OrderStatus
    when: str
    test: Callable[[Dimensions], bool]


RETURN_IN_PROGRESS: frozenset[str] = frozenset({"requested", "received", "partially_returned"})

STATUS_RULES: tuple[StatusRule, ...] = (
    StatusRule("status.cancelled", "cancelled", "the order was cancelled", lambda d: d.cancelled),
    StatusRule("status.refunded", "refunded", "payment_status is refunded",
               lambda d: d.payment_status == "refunded"),
    StatusRule("status.returned", "returned", "return_status is returned",
               lambda d: d.return_status == "returned"),
    # A held order needs a person before anything else happens to it, also while a return runs.
    StatusRule("status.on_hold", "on_hold", "hold reasons, fulfillment exception or disputed payment",
               lambda d: bool(d.hold_reasons) or d.fulfillment_status == "exception"
               or d.payment_status == "disputed"),
    StatusRule("status.return_requested", "return_requested",
               "return_status is requested, received or partially_returned",
               lambda d: d.return_status in RETURN_IN_PROGRESS),
    StatusRule("status.delivered", "delivered", "fulfillment_status is delivered",
               lambda d: d.fulfillment_status == "delivered"),
    StatusRule("status.shipped", "shipped", "fulfillment_status is shipped",
               lambda d: d.fulfillment_status == "shipped"),
    StatusRule("status.partially_shipped", "partially_shipped", "fulfillment_status is partially_shipped",
               lambda d: d.fulfillment_status == "partially_shipped"),
    StatusRule("status.ready_to_fulfill", "ready_to_fulfill",
               "payment_status is authorized, paid or partially_refunded",
               lambda d: d.payment_status in FULFILLABLE_PAYMENT),
    StatusRule("status.pending_payment", "pending_payment", "otherwise (pending, failed, partially_paid, voided)",
               lambda d: True),
)


def derive_rule(dims: Dimensions) -> StatusRule:
    """The summary-status rule that decides for these dimensions."""
    for rule in STATUS_RULES:
        if rule.test(dims):
            return rule
    raise AssertionError("the last status rule matches everything")  # pragma: no cover


def derive_status(dims: Dimensions) -> OrderStatus:
    """The summary order status of the dimensions (pure; see the table in the module docstring)."""
    return derive_rule(dims).status


def render_tables() -> str:
    """The transition and summary-status tables as plain text (as shown in the module docstrings)."""
    out: list[str] = []
    for dimension, moves in MOVES.items():
        out.append(dimension)
        for state in moves:  # in the order the table literal lists them
            targets = ", ".join(sorted(moves[state])) or "(final)"
            out.append(f"  {state:<18} -> {targets}")
    out.append("precedence when sources disagree, lowest first (later wins if reachable, else conflict)")
    for dimension, order in PRECEDENCE.items():
        out.append(f"  {dimension:<18} " + ", ".join(order))
    out.append("cancellation")
    out.append("  allowed while fulfillment_status is: " + ", ".join(sorted(CANCELLABLE_FULFILLMENT)))
    out.append("summary status (first matching rule wins)")
    for rule in STATUS_RULES:
        out.append(f"  {rule.name:<25} {rule.status:<18} {rule.when}")
    return "\n".join(out)


def _check_tables() -> None:
    """Fail at import if the tables name unknown states, miss a row or re-open cancellation."""
    for dimension, moves in MOVES.items():
        base_graph(dimension)  # raises on unknown names
        missing = set(STATES[dimension]) - set(moves)
        if missing:
            raise TransitionError(f"{dimension}: no row for {sorted(missing)}")
    violations = one_way_violations(base_graph("fulfillment_status"), CANCELLABLE_FULFILLMENT)
    if violations:
        raise TransitionError(f"fulfillment moves re-open cancellation: {violations}")
    unknown = {rule.status for rule in STATUS_RULES} - set(ORDER_STATES)
    if unknown:
        raise TransitionError(f"status rules name unknown order statuses {sorted(unknown)}")
    for dimension, order in PRECEDENCE.items():
        if sorted(order) != sorted(STATES[dimension]):
            raise TransitionError(f"{dimension}: the precedence must list every state once")
        graph = base_graph(dimension)
        for i, low in enumerate(order):
            for high in order[i + 1:]:
                if not graph.allows(low, high) and (low, high) not in INTENDED_CONFLICTS:
                    raise TransitionError(f"{dimension}: {low} precedes {high} but cannot reach it")


_BASE_GRAPHS.update({dimension: StateGraph(dimension, moves) for dimension, moves in MOVES.items()})
_check_tables()
