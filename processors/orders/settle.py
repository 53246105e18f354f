"""Deriving and settling the canonical state of an order from the shop's view and the facts. Pure.

`settle(before, candidate, event, ...)` derives the canonical dimensions of a candidate record (an
event recorded into it), refuses the event or adopts the new state, and emits what follows: the
OrderStatusChanged, the reservations and the derived records (`derived_records`). `reject` is the
one way an event is refused (a ReviewItem names the event and both states).

How the canonical state is made
-------------------------------
Each source keeps its own view in the record, and the canonical dimensions are *derived* from them
after every event (`_derive`):
  - the shop's view (`record.shop`), moved by OrderPlaced / OrderUpdated / OrderCancelled exactly as
    `lifecycle` documents (snapshots ordered by the source's `updated_at`, mapping entries, strict
    transitions); it also owns lines, total, currency, placed/cancelled times;
  - the payment facts (`payments`), the shipment facts (`shipments`), the return facts (`returns`):
    recorded by idempotent, commutative merges, so neither redelivery nor arrival order matters
    and a stale update can never move anything back (a newer figure or scan always wins by source
    time, an older one is history);
  - payment_status = `transitions.join` of the shop's and the payment facts' status,
    fulfillment_status = join of the shop's and the shipments', return_status = the returns';
    `join` takes the value later in the dimension's precedence when it is reachable from the other
    (shop `pending` + provider captured in full = `paid`) and reports a conflict otherwise;
  - captured / refunded = the larger of the provider sums and what the shop's status implies
    (exact Decimals in the order currency; the two describe the same money, so never added);
  - hold_reasons = the payment facts' holds (`chargeback:<dispute id>`, `payment_risk:<level>`);
  - status = `transitions.derive_status` of all of it.

What settling does with an event recorded into the record
--------------------------------------------------------
  - the canonical state is derived. It is **rejected** (nothing is stored, a ReviewItem of kind
    `rejected_transition` names the event, the current and the attempted dimensions) when the shop's
    and another source's view conflict, when a dimension would move to a state the transition table
    does not reach from the current one (the shop event's mapping adds its `allow_from` moves), or
    when the fulfillment of a cancelled order would move.
  - otherwise, when anything of the canonical order changed: `version + 1`, `updated_at` = the
    event's `recorded_at`, `last_event_id`, and — when a status dimension, the summary status or
    the holds changed — an OrderStatusChanged with the previous and new value of every dimension,
    the cause event id and type, its source system and `rule`: the rules that decided joined with
    "+" (the shop's mapping entries / lifecycle rule, `payments.*`, `shipments.*`, `returns.*`,
    `holds.*`; see those modules' tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import cast

from shopstream.schemas.models import (
    EventMeta,
    FulfillmentStatus,
    Money,
    OrderState,
    OrderStatusChanged,
    OrderStatusSnapshot,
    PaymentStatus,
    ReturnStatus,
    ShipmentDispatched,
)

from . import payments, returns, shipments
from .context import Context
from .derived_records import REVIEW_HOLD, derived_outputs
from .lifecycle import snapshot
from .outcome import TOPIC_CHANGES, TOPIC_RESERVATIONS, Run, Step
from .output_meta import output_meta
from .parking import AnyEvent
from .record import OrderRecord
from .reservations import fulfilled_reservations, reservation_changes, shipment_reservations
from .transitions import Dimension, Dimensions, StateGraph, base_graph, derive_rule, join

RULE_HOLD_CHARGEBACK = "holds.chargeback"
RULE_HOLD_RISK = "holds.payment_risk"
RULE_HOLD_REVIEW = "holds.review"


@dataclass(frozen=True)
class _Derived:
    payment: str
    fulfillment: str
    returned: str
    holds: list[str]
    captured: Decimal
    refunded: Decimal
    rules: dict[str, str]  # dimension (or "hold_reasons") -> rule that gave its value, when not the shop


def _derive(rec: OrderRecord, ctx: Context) -> _Derived | str:
    """The canonical dimensions and amounts from the shop's view and the facts; a reason on conflict."""
    shop = rec.shop
    assert shop is not None
    total = shop.total
    captured = max(shop.captured.amount, payments.provider_captured(rec.payments))
    refunded = max(shop.refunded.amount, payments.provider_refunded(rec.payments))
    rules: dict[str, str] = {}
    pay_view = payments.view(rec.payments, total, refunded)
    ful_view = shipments.view(rec.shipments, shop.lines)
    ret_view = returns.view(rec.returns, shop.lines)
    values: dict[Dimension, str] = {}
    views: tuple[tuple[Dimension, str, str | None, str | None], ...] = (
        ("payment_status", shop.payment_status, pay_view.status, pay_view.rule),
        ("fulfillment_status", shop.fulfillment_status, ful_view.status, ful_view.rule),
        ("return_status", shop.return_status, ret_view.status, ret_view.rule))
    for dimension, own, other, rule in views:
        if other is None:
            values[dimension] = own
            continue
        joined = join(dimension, own, other)
        if joined is None:
            return (f"{dimension}: the shop says {own}, {rule} says {other}, and neither can follow the other "
                    "(conflicting sources)")
        values[dimension] = joined
        if joined == other and joined != own and rule is not None:
            rules[dimension] = rule
    holds = (set(shop.hold_reasons) | payments.hold_reasons(rec.payments, ctx.policy.holds.payment_risk_levels)
             | rec.review_holds) - rec.lifted  # a person's approval lifts a reason for good
    for reason in sorted(holds - set(shop.hold_reasons)):
        rules.setdefault(f"hold:{reason}", RULE_HOLD_CHARGEBACK if reason.startswith("chargeback:")
                         else RULE_HOLD_REVIEW if reason.startswith(REVIEW_HOLD) else RULE_HOLD_RISK)
    return _Derived(values["payment_status"], values["fulfillment_status"], values["return_status"],
                    sorted(holds), captured, refunded, rules)


def _build(prev: OrderState | None, shop: OrderState, derived: _Derived, cause: EventMeta) -> OrderState:
    dims = Dimensions(derived.payment, derived.fulfillment, derived.returned, cancelled=shop.cancelled_at is not None,
                      hold_reasons=derived.holds)
    currency = shop.currency
    return OrderState.model_construct(  # from validated parts (`output_meta`'s docstring, "Derived records")
        meta=output_meta("OrderState", cause),
        order_id=shop.order_id,
        status=derive_rule(dims).status,
        # `join` moves along each dimension's graph of these symbols (and the Avro writer refuses any other).
        payment_status=cast(PaymentStatus, derived.payment),
        fulfillment_status=cast(FulfillmentStatus, derived.fulfillment),
        return_status=cast(ReturnStatus, derived.returned),
        hold_reasons=derived.holds,
        currency=currency,
        total=shop.total,
        captured=Money.model_construct(amount=derived.captured, currency=currency),
        refunded=Money.model_construct(amount=derived.refunded, currency=currency),
        lines=list(shop.lines),
        placed_at=shop.placed_at,
        cancelled_at=shop.cancelled_at,
        source_updated_at=shop.source_updated_at,
        version=(prev.version + 1) if prev is not None else 1,
        updated_at=cause.recorded_at,
        last_event_id=cause.event_id,
    )


_BOOKKEEPING = frozenset({"meta", "version", "updated_at", "last_event_id"})


def _same_order(a: OrderState, b: OrderState) -> bool:
    """Equal apart from the bookkeeping fields (meta, version, updated_at, last_event_id)."""
    return a.model_dump(exclude=set(_BOOKKEEPING)) == b.model_dump(exclude=set(_BOOKKEEPING))


def _forbidden_move(prev: OrderState, new: OrderState, graphs: dict[Dimension, StateGraph]) -> str | None:
    for dimension in ("payment_status", "fulfillment_status", "return_status"):
        before, after = getattr(prev, dimension), getattr(new, dimension)
        if before == after:
            continue
        if dimension == "fulfillment_status" and prev.cancelled_at is not None:
            return f"fulfillment_status {before} -> {after} is not allowed: the order is cancelled"
        if not graphs[dimension].allows(before, after):
            return f"{dimension} {before} -> {after} is not allowed"
    return None


def settle(before: OrderRecord, cand: OrderRecord, event: AnyEvent, ctx: Context, run: Run, rules: list[str], *,
            payment_graph: StateGraph | None = None, fulfillment_graph: StateGraph | None = None) -> OrderRecord:
    """Derive the canonical state of `cand`; reject (keep `before`) or adopt it and emit what follows."""
    prev = before.state
    assert cand.shop is not None
    derived = _derive(cand, ctx)
    if isinstance(derived, str):
        return reject(before, event, derived, run)
    new = _build(prev, cand.shop, derived, event.meta)
    if prev is not None:
        graphs: dict[Dimension, StateGraph] = {
            "payment_status": payment_graph or base_graph("payment_status"),
            "fulfillment_status": fulfillment_graph or base_graph("fulfillment_status"),
            "return_status": base_graph("return_status"),
        }
        problem = _forbidden_move(prev, new, graphs)
        if problem is not None:
            return reject(before, event, problem, run, attempted=snapshot(new))
        if _same_order(prev, new):
            new = prev
    if new is not prev:
        rule = _rule(prev, new, rules, derived)
        run.steps.append(Step(cause=event.meta, before=prev, after=new, rule=rule))
        change = _change(prev, new, event.meta, rule)
        if change is not None:
            run.emit(TOPIC_CHANGES, new.order_id, change)
        for reservation in reservation_changes(prev, new, event.meta):
            run.emit(TOPIC_RESERVATIONS, reservation.sku, reservation)
        if not isinstance(event, ShipmentDispatched):
            for reservation in fulfilled_reservations(prev, new, event.meta):
                run.emit(TOPIC_RESERVATIONS, reservation.sku, reservation)
    if isinstance(event, ShipmentDispatched):
        # Whether or not the canonical state moved (the shop may have reported the fulfilment first),
        # a recorded dispatch ships its units; the ATP core ships a reservation once.
        for reservation in shipment_reservations(event, cand.shop, ctx.stock_locations):
            run.emit(TOPIC_RESERVATIONS, reservation.sku, reservation)
    return derived_outputs(prev, replace(cand, state=new), event.meta, ctx, run)


def _rule(prev: OrderState | None, new: OrderState, rules: Sequence[str], derived: _Derived) -> str:
    """The rules that decided: the shop's (mapping entries / lifecycle rule), then each changed dimension's."""
    out = list(rules)
    for dimension in ("payment_status", "fulfillment_status", "return_status"):
        if (prev is None or getattr(prev, dimension) != getattr(new, dimension)) and dimension in derived.rules:
            out.append(derived.rules[dimension])
    before = set(prev.hold_reasons) if prev is not None else set()
    for reason in new.hold_reasons:
        if reason not in before and f"hold:{reason}" in derived.rules:
            out.append(derived.rules[f"hold:{reason}"])
    if not out:
        out.append(derive_rule(Dimensions(new.payment_status, new.fulfillment_status, new.return_status,
                                          new.cancelled_at is not None, new.hold_reasons)).name)
    return "+".join(dict.fromkeys(out))


def _change(prev: OrderState | None, new: OrderState, cause: EventMeta, rule: str) -> OrderStatusChanged | None:
    before: OrderStatusSnapshot | None = snapshot(prev) if prev is not None else None
    after = snapshot(new)
    if before == after:
        return None
    return OrderStatusChanged.model_construct(meta=output_meta("OrderStatusChanged", cause), order_id=new.order_id,
                              version=new.version, previous=before, current=after, cause_event_id=cause.event_id,
                              cause_event_type=cause.event_type, source=cause.source, rule=rule)


def _dims(prefix: str, snap: OrderStatusSnapshot) -> dict[str, str]:
    return {f"{prefix}.status": snap.status, f"{prefix}.payment_status": snap.payment_status,
            f"{prefix}.fulfillment_status": snap.fulfillment_status, f"{prefix}.return_status": snap.return_status,
            f"{prefix}.hold_reasons": ",".join(snap.hold_reasons)}


def reject(rec: OrderRecord, event: AnyEvent, reason: str, run: Run,
            attempted: OrderStatusSnapshot | None = None) -> OrderRecord:
    """Refuse an event: the record stays, a ReviewItem names the event and both states."""
    state = rec.state
    details = {"event_type": event.meta.event_type, "event_id": event.meta.event_id, "source": event.meta.source}
    if state is not None:
        details.update(_dims("current", snapshot(state)))
        details["current.version"] = str(state.version)
        where = (f"order {rec.order_id}: {reason} ({event.meta.event_type} {event.meta.event_id} from "
                 f"{event.meta.source}; order is {state.status}, payment {state.payment_status}, fulfillment "
                 f"{state.fulfillment_status}, return {state.return_status}, version {state.version})")
    else:
        where = f"order {rec.order_id}: {reason}"
    if attempted is not None:
        details.update(_dims("attempted", attempted))
    run.rejected.append(where)
    run.review(rec.order_id, event.meta, "rejected_transition", where, details=details)
    return rec
