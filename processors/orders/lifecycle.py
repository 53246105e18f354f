"""The shop's order lifecycle: `apply(state, event, mapping) -> Outcome`, pure and deterministic.

The shop's own view of an order (the orders processor's `shop` part of `record.OrderRecord`): shop
events (`shop.orders`) on a bare `OrderState` and the source's status mapping, applied through
`appliers` by `canonical.apply`, which is the processor's entry point (`shopstream worker orders`,
`app.py`) and adds payments, shipments, returns, parking and the derived records. No Faust, Kafka,
Redis, clock or file access happens here; the same inputs always give the same outputs.

What each event does
--------------------
OrderPlaced
  - unknown order: creates it, version 1. payment_status from the mapping of
    `source_financial_status` (no value: pending), fulfillment_status from
    `source_fulfillment_status` (no value: unfulfilled), return_status none, no holds.
    `source_updated_at = placed_at`. Change rule: `order.placed` + the mapping entry ids used.
  - known order: duplicate (also when the order was first created by an OrderUpdated).
OrderUpdated (a whole-order snapshot, ordered by the source's `updated_at`)
  - unknown order: creates it like OrderPlaced (it carries the whole order; `placed_at` unknown).
    Change rule `order.created_from_update` + entry ids.
  - `updated_at <= source_updated_at`: stale or duplicate, not applied (never moves an order back
    because a late snapshot arrived).
  - otherwise the snapshot replaces lines and total, moves payment and fulfillment to the mapped
    states (a status the event does not give keeps the dimension) and sets `source_updated_at`.
    Change rule: ids of the mapping entries whose dimension changed.
  - rejected: a move not allowed by the transition table (see `transitions`), a fulfillment move
    of a cancelled order, a currency change, an unmapped source status.
OrderCancelled (`lines` empty = the whole order)
  - unknown order: rejected ("unknown order"; `canonical.apply` parks it until the order arrives).
  - already cancelled order: duplicate.
  - fulfillment not cancellable (anything but unfulfilled: partially shipped, shipped, delivered,
    exception): rejected.
  - whole order: sets `cancelled_at`, status becomes cancelled (sticky: later snapshots still move
    payment, e.g. to refunded, but the order stays cancelled). Not ordered by source time: an
    OrderUpdated snapshot does not carry the cancellation, so a cancel older than the newest
    snapshot still applies. Change rule `order.cancelled` (+ the financial status entry id when
    `source_financial_status` moved payment).
  - some lines: a delta on the snapshot, so it *is* ordered by source time like a snapshot:
    `cancelled_at <= source_updated_at` is stale (a newer snapshot already shows the lines), else
    the quantities of the named lines are reduced (never below zero; lines the order does not have
    are ignored), emptied lines removed, `source_updated_at = cancelled_at`; nothing left means the
    whole order is cancelled. `total` is left as is (the shop's next snapshot carries it).

Every applied event: `version + 1`, `updated_at = event.meta.recorded_at` (not the wall clock),
`last_event_id = event.meta.event_id`, summary `status` re-derived (`transitions.derive_status`).
`captured`/`refunded` follow the payment status as far as a status tells: entering
paid/partially_refunded/refunded/disputed means at least the total was captured, entering refunded
means everything captured was refunded (exact amounts come from payment events: `canonical` takes
the larger of these and the provider's sums); at creation without payment they are 0 in the order
currency.
`Outcome.change` is produced only when a status dimension, the summary status or the holds changed;
its `rule` joins the rules that decided with "+", e.g. `order.cancelled+shopify.financial_status.voided`.
Produced records carry the processor's deterministic meta (`output_meta`: ids derived from the cause,
so a replay produces identical ids) and are built without validating them again (`output_meta`'s
docstring, "Derived records").

Idempotence (why redelivery and replay change nothing)
------------------------------------------------------
OrderState has no room for a set of seen event ids, so every event is made a no-op on its second
arrival by the state itself, whatever was applied in between:
  - OrderPlaced applies only when there is no state; afterwards there always is one.
  - OrderUpdated and partial OrderCancelled apply only when their source time is newer than
    `source_updated_at`, and applying sets `source_updated_at` to it; `source_updated_at` never
    decreases, so a second arrival is stale.
  - A whole OrderCancelled applies only to a non-cancelled order and cancels it; nothing
    un-cancels an order.
  - An event that was *rejected* stays rejected: every dimension only moves to states reachable
    from its current one, and an allowed target is one reachable from the current state, so a
    target unreachable now is unreachable later too; cancellation needs an unfulfilled order, and
    no fulfillment state leads back to unfulfilled (the mapping loader enforces that too);
    a cancelled order stays cancelled; currency never changes; unmapped values stay unmapped.
  - An event found stale or duplicate stays so, by the same monotonicity.
Hence delivering a sequence with duplicates gives the same final state as delivering it
de-duplicated (tests/unit/test_order_lifecycle.py checks this as a property). The one gap of this
bare-state entry point: an OrderCancelled rejected as "unknown order" applies if it is delivered
again after the order was created. `canonical.apply` closes it by parking the cancel instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeAlias

from shopstream.schemas.models import (
    FulfillmentStatus,
    Money,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderState,
    OrderStatusChanged,
    OrderStatusSnapshot,
    OrderUpdated,
    PaymentStatus,
)

from .mapping import FulfillmentEntry, PaymentEntry, StatusMapping
from .output_meta import output_meta
from .transitions import CANCELLABLE_FULFILLMENT, Dimensions, derive_status

OrderEvent: TypeAlias = OrderPlaced | OrderUpdated | OrderCancelled

RULE_PLACED = "order.placed"
RULE_CREATED_FROM_UPDATE = "order.created_from_update"
RULE_UPDATED = "order.updated"
RULE_CANCELLED = "order.cancelled"
RULE_LINES_CANCELLED = "order.lines_cancelled"

_CAPTURED_PAYMENT = frozenset({"paid", "partially_refunded", "refunded", "disputed"})


@dataclass(frozen=True)
class Outcome:
    """What applying one event did.

    `state`: the new state, None when nothing changes. `change`: the audit record when a status
    changed. `rejected`: why a forbidden transition was refused (state untouched; goes to review).
    `duplicate`: the event was already applied or is stale. `note`: why a duplicate is one.
    """

    state: OrderState | None = None
    change: OrderStatusChanged | None = None
    rejected: str | None = None
    duplicate: bool = False
    note: str | None = None


def apply(state: OrderState | None, event: OrderEvent, mapping: StatusMapping) -> Outcome:
    """Apply one shop order event to an order's state (see the module docstring for the rules)."""
    if state is not None:
        if state.order_id != event.order_id:
            raise ValueError(f"event for order {event.order_id!r} applied to state of order {state.order_id!r}")
        if state.last_event_id == event.meta.event_id:
            return _duplicate(f"event {event.meta.event_id} is the last one applied")
    if isinstance(event, OrderPlaced):
        if state is not None:
            return _duplicate(f"order {event.order_id} already exists")
        return _create(event, mapping, RULE_PLACED, placed_at=event.placed_at, as_of=event.placed_at)
    if isinstance(event, OrderUpdated):
        if state is None:
            return _create(event, mapping, RULE_CREATED_FROM_UPDATE, placed_at=None, as_of=event.updated_at)
        return _update(state, event, mapping)
    return _cancel(state, event, mapping)


def snapshot(state: OrderState) -> OrderStatusSnapshot:
    """The status dimensions of a state."""
    return OrderStatusSnapshot.model_construct(status=state.status, payment_status=state.payment_status,
                               fulfillment_status=state.fulfillment_status,
                               return_status=state.return_status, hold_reasons=list(state.hold_reasons))


# --- event handlers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mapped:
    """Source statuses resolved through a mapping; None = the event says nothing about it."""

    payment: PaymentEntry | None
    fulfillment: FulfillmentEntry | None


def _resolve(mapping: StatusMapping, event: OrderEvent, financial: str | None,
             fulfillment: str | None) -> _Mapped | str:
    payment_entry = mapping.payment_entry(financial)
    if payment_entry is None and financial is not None:
        return (f"unmapped financial_status {financial!r} from {event.meta.source} "
                f"({event.meta.event_type} {event.meta.event_id}; mapping {mapping.source!r})")
    fulfillment_entry = mapping.fulfillment_entry(fulfillment)
    if fulfillment_entry is None and fulfillment is not None:
        return (f"unmapped fulfillment_status {fulfillment!r} from {event.meta.source} "
                f"({event.meta.event_type} {event.meta.event_id}; mapping {mapping.source!r})")
    return _Mapped(payment_entry, fulfillment_entry)


def _create(event: OrderPlaced | OrderUpdated, mapping: StatusMapping, rule: str, *,
            placed_at: datetime | None, as_of: datetime) -> Outcome:
    mapped = _resolve(mapping, event, event.source_financial_status, event.source_fulfillment_status)
    if isinstance(mapped, str):
        return Outcome(rejected=f"cannot create order {event.order_id}: {mapped}")
    payment: PaymentStatus = mapped.payment.canonical if mapped.payment else "pending"
    fulfillment: FulfillmentStatus = mapped.fulfillment.canonical if mapped.fulfillment else "unfulfilled"
    zero = _zero(event.currency)
    captured, refunded = _implied_amounts(payment, event.total, zero, zero)
    state = OrderState.model_construct(
        meta=output_meta("OrderState", event.meta),
        order_id=event.order_id,
        status=derive_status(Dimensions(payment, fulfillment, "none", cancelled=False)),
        payment_status=payment,
        fulfillment_status=fulfillment,
        return_status="none",
        hold_reasons=[],
        currency=event.currency,
        total=event.total,
        captured=captured,
        refunded=refunded,
        lines=list(event.lines),
        placed_at=placed_at,
        cancelled_at=None,
        source_updated_at=as_of,
        version=1,
        updated_at=event.meta.recorded_at,
        last_event_id=event.meta.event_id,
    )
    rules = [rule] + [e.id for e in (mapped.payment, mapped.fulfillment) if e is not None]
    return Outcome(state=state, change=_change(None, state, event, rules))


def _update(state: OrderState, event: OrderUpdated, mapping: StatusMapping) -> Outcome:
    if state.source_updated_at is not None and event.updated_at <= state.source_updated_at:
        return _duplicate(f"stale snapshot: updated_at {event.updated_at.isoformat()} <= "
                          f"{state.source_updated_at.isoformat()} already applied")
    mapped = _resolve(mapping, event, event.source_financial_status, event.source_fulfillment_status)
    if isinstance(mapped, str):
        return Outcome(rejected=f"order {state.order_id}: {mapped}")
    if event.currency != state.currency:
        return Outcome(rejected=_reason(state, event, f"currency {state.currency} -> {event.currency} "
                                                      "is not allowed"))
    moved = _move(state, event, mapping, mapped)
    if isinstance(moved, str):
        return Outcome(rejected=moved)
    payment, fulfillment, rules = moved
    captured, refunded = _implied_amounts(payment, event.total, state.captured, state.refunded)
    new = _next(state, event, payment_status=payment, fulfillment_status=fulfillment,
                total=event.total, captured=captured, refunded=refunded, lines=list(event.lines),
                source_updated_at=event.updated_at)
    return Outcome(state=new, change=_change(state, new, event, rules or [RULE_UPDATED]))


def _cancel(state: OrderState | None, event: OrderCancelled, mapping: StatusMapping) -> Outcome:
    if state is None:
        return Outcome(rejected=f"unknown order {event.order_id}: OrderCancelled {event.meta.event_id} "
                                f"from {event.meta.source} arrived before the order")
    if state.cancelled_at is not None:
        return _duplicate(f"order {state.order_id} is already cancelled")
    partial = bool(event.lines)
    if partial and state.source_updated_at is not None and event.cancelled_at <= state.source_updated_at:
        return _duplicate(f"stale line cancellation: cancelled_at {event.cancelled_at.isoformat()} <= "
                          f"{state.source_updated_at.isoformat()} already applied")
    if state.fulfillment_status not in CANCELLABLE_FULFILLMENT:
        return Outcome(rejected=_reason(
            state, event, f"status {state.status} (fulfillment_status {state.fulfillment_status}) -> "
                          f"cancelled is not allowed: only {', '.join(sorted(CANCELLABLE_FULFILLMENT))} "
                          "orders can be cancelled"))
    mapped = _resolve(mapping, event, event.source_financial_status, None)
    if isinstance(mapped, str):
        return Outcome(rejected=f"order {state.order_id}: {mapped}")
    moved = _move(state, event, mapping, mapped)
    if isinstance(moved, str):
        return Outcome(rejected=moved)
    payment, fulfillment, rules = moved
    captured, refunded = _implied_amounts(payment, state.total, state.captured, state.refunded)
    remaining = _reduce(state.lines, event.lines) if partial else []
    whole = not remaining  # a whole-order cancel, or line cancels that leave nothing
    new = _next(state, event, payment_status=payment, fulfillment_status=fulfillment, total=state.total,
                captured=captured, refunded=refunded,
                lines=list(state.lines) if whole else remaining,  # a cancelled order keeps its lines
                cancelled_at=event.cancelled_at if whole else None,
                source_updated_at=_later(state.source_updated_at, event.cancelled_at) if partial
                else state.source_updated_at)
    rule = RULE_CANCELLED if whole else RULE_LINES_CANCELLED
    return Outcome(state=new, change=_change(state, new, event, [rule, *rules]))


# --- helpers ------------------------------------------------------------------------------------


def _move(state: OrderState, event: OrderEvent, mapping: StatusMapping,
          mapped: _Mapped) -> tuple[PaymentStatus, FulfillmentStatus, list[str]] | str:
    """The dimensions after the event, the ids of the entries that moved them; or a rejection."""
    payment = mapped.payment.canonical if mapped.payment else state.payment_status
    fulfillment = mapped.fulfillment.canonical if mapped.fulfillment else state.fulfillment_status
    rules: list[str] = []
    if payment != state.payment_status:
        assert mapped.payment is not None
        if not mapping.payment_graph.allows(state.payment_status, payment):
            return _reason(state, event, f"payment_status {state.payment_status} -> {payment} is not allowed",
                           mapped.payment.id)
        rules.append(mapped.payment.id)
    if fulfillment != state.fulfillment_status:
        assert mapped.fulfillment is not None
        if state.cancelled_at is not None:
            return _reason(state, event, f"fulfillment_status {state.fulfillment_status} -> {fulfillment} "
                                         "is not allowed: the order is cancelled", mapped.fulfillment.id)
        if not mapping.fulfillment_graph.allows(state.fulfillment_status, fulfillment):
            return _reason(state, event, f"fulfillment_status {state.fulfillment_status} -> {fulfillment} "
                                         "is not allowed", mapped.fulfillment.id)
        rules.append(mapped.fulfillment.id)
    return payment, fulfillment, rules


def _next(state: OrderState, event: OrderEvent, *, payment_status: PaymentStatus,
          fulfillment_status: FulfillmentStatus, total: Money, captured: Money, refunded: Money,
          lines: list[OrderLine], source_updated_at: datetime | None,
          cancelled_at: datetime | None = None) -> OrderState:
    """The state after an applied event: version + 1, bookkeeping from the event, status derived.

    `cancelled_at` None keeps the state's (an order is never un-cancelled)."""
    cancelled_at = state.cancelled_at or cancelled_at
    status = derive_status(Dimensions(payment_status, fulfillment_status, state.return_status,
                                      cancelled=cancelled_at is not None, hold_reasons=state.hold_reasons))
    return state.model_copy(update={
        "meta": output_meta("OrderState", event.meta),
        "status": status,
        "payment_status": payment_status,
        "fulfillment_status": fulfillment_status,
        "total": total,
        "captured": captured,
        "refunded": refunded,
        "lines": lines,
        "cancelled_at": cancelled_at,
        "source_updated_at": source_updated_at,
        "version": state.version + 1,
        "updated_at": event.meta.recorded_at,
        "last_event_id": event.meta.event_id,
    })


def _change(previous: OrderState | None, current: OrderState, event: OrderEvent,
            rules: Sequence[str]) -> OrderStatusChanged | None:
    before = snapshot(previous) if previous is not None else None
    after = snapshot(current)
    if before == after:
        return None
    return OrderStatusChanged.model_construct(
        meta=output_meta("OrderStatusChanged", event.meta),
        order_id=current.order_id,
        version=current.version,
        previous=before,
        current=after,
        cause_event_id=event.meta.event_id,
        cause_event_type=event.meta.event_type,
        source=event.meta.source,
        rule="+".join(rules),
    )


def _reason(state: OrderState, event: OrderEvent, what: str, rule: str | None = None) -> str:
    by = f", rule {rule}" if rule else ""
    return (f"order {state.order_id}: {what} ({event.meta.event_type} {event.meta.event_id} "
            f"from {event.meta.source}{by}; order is {state.status}, payment {state.payment_status}, "
            f"fulfillment {state.fulfillment_status}, version {state.version})")


def _duplicate(note: str) -> Outcome:
    return Outcome(duplicate=True, note=note)


def _zero(currency: str) -> Money:
    return Money.model_construct(amount=Decimal(0), currency=currency)


def _max(a: Money, b: Money) -> Money:
    return b if b.amount > a.amount else a


def _implied_amounts(payment: str, total: Money, captured: Money, refunded: Money) -> tuple[Money, Money]:
    """captured/refunded as far as the payment status implies them (never decreasing)."""
    if payment in _CAPTURED_PAYMENT and total.currency == captured.currency:
        captured = _max(captured, total)
    if payment == "refunded" and captured.currency == refunded.currency:
        refunded = _max(refunded, captured)
    return captured, refunded


def _reduce(lines: Sequence[OrderLine], cancelled: Sequence[OrderLine]) -> list[OrderLine]:
    """Lines minus the cancelled quantities (matched by line_id); emptied lines are dropped."""
    minus: dict[str, int] = {}
    for line in cancelled:
        minus[line.line_id] = minus.get(line.line_id, 0) + line.quantity
    out: list[OrderLine] = []
    for line in lines:
        left = line.quantity - minus.get(line.line_id, 0)
        if left > 0:
            out.append(line if left == line.quantity else line.model_copy(update={"quantity": left}))
    return out


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a
