"""The per-source event appliers of the canonical order: shop events, facts, decisions. Pure.

`apply_one(record, event, ...)` applies one event to an order whose canonical state exists (`canonical`
parks the others): it records the event into the source's view, then hands the candidate to
`settle`, which derives the canonical state and accepts or rejects it.

Order known:
  - OrderPlaced for an order first created by an OrderUpdated fills in `placed_at` (and nothing
    else: the newer snapshot stays); otherwise shop events go through `lifecycle.apply` on the
    shop's view (duplicates, stale snapshots, rejections as documented there).
    OrderCancelled is also refused when the *canonical* fulfillment is no longer cancellable (a
    carrier already has the parcel even if the shop does not know).
  - payment / shipment / return events are recorded as facts (a fact adding nothing is a duplicate;
    an exception after a delivery is refused, see `shipments`).
  - decisions from `review.decisions` are planned by `decisions` and carried out like any event.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shopstream.schemas.models import (
    CancelFulfillment,
    OrderCancelled,
    OrderPlaced,
    OrderReviewed,
    OrderState,
    OrderStatusChanged,
    OrderUpdated,
    WorkItemDecided,
)

from . import decisions, lifecycle, payments, returns, shipments
from .context import Context
from .lifecycle import (
    RULE_CANCELLED,
    RULE_CREATED_FROM_UPDATE,
    RULE_LINES_CANCELLED,
    RULE_PLACED,
    RULE_UPDATED,
)
from .mapping import StatusMapping
from .outcome import TOPIC_CHANGES, TOPIC_FULFILLMENT, TOPIC_SHOP, Output, Run
from .output_meta import output_meta
from .parking import AnyEvent, DecisionEvent
from .record import OrderRecord
from .settle import reject, settle
from .transitions import CANCELLABLE_FULFILLMENT

RULE_PLACED_LATE = "order.placed_after_update"


def apply_one(rec: OrderRecord, event: AnyEvent, ctx: Context, run: Run) -> OrderRecord:
    """Record one event of a known order into its source's view and settle the canonical state."""
    if isinstance(event, OrderPlaced | OrderUpdated | OrderCancelled):
        return _apply_shop(rec, event, ctx, run)
    if isinstance(event, OrderReviewed | WorkItemDecided):
        return _apply_decision(rec, event, ctx, run)
    assert rec.state is not None and rec.shop is not None
    if isinstance(event, payments.PAYMENT_EVENTS):
        facts, note = payments.record_event(rec.payments, event, rec.shop.currency)
        if note is not None:
            run.notes.append(note)
            return rec
        return settle(rec, replace(rec, payments=facts), event, ctx, run, [])
    if isinstance(event, shipments.SHIPMENT_EVENTS):
        recorded = shipments.record_event(rec.shipments, event)
        if recorded.rejected is not None:
            return reject(rec, event, recorded.rejected, run)
        if recorded.note is not None:
            run.notes.append(recorded.note)
            return rec
        return settle(rec, replace(rec, shipments=recorded.facts), event, ctx, run, [])
    facts_r, note_r = returns.record_event(rec.returns, event)
    if note_r is not None:
        run.notes.append(note_r)
        return rec
    return settle(rec, replace(rec, returns=facts_r), event, ctx, run, [])


def _apply_decision(rec: OrderRecord, event: DecisionEvent, ctx: Context, run: Run) -> OrderRecord:
    """A verdict or a person's decision (see `decisions`): planned there, carried out like any event."""
    assert rec.state is not None
    plan = decisions.plan(rec, event)
    if plan.noop is not None:
        run.notes.append(plan.noop)
        return rec
    mark = len(run.outputs)
    if plan.cancel is not None:
        was_cancelled = rec.state.cancelled_at is not None
        out = _apply_shop(plan.record, plan.cancel, ctx, run, mapping=decisions.NO_STATUS_MAPPING)
        if out.state is not None and out.state.cancelled_at is not None and not was_cancelled:
            run.emit(TOPIC_SHOP, rec.order_id, decisions.cancel_command(event, rec.order_id, plan.cancel.reason))
    else:
        out = settle(rec, plan.record, event, ctx, run, list(plan.rules))
    changes = [i for i in range(mark, len(run.outputs)) if run.outputs[i].topic == TOPIC_CHANGES]
    for i in changes:
        change = run.outputs[i].record
        assert isinstance(change, OrderStatusChanged)
        run.outputs[i] = Output(TOPIC_CHANGES, rec.order_id, decisions.annotate(change, plan))
    if not changes and plan.always_record and out.state is not None:
        state, change = decisions.recorded(out.state, event, plan)
        run.emit(TOPIC_CHANGES, rec.order_id, change)
        out = replace(out, state=state)
    return out


def _apply_shop(rec: OrderRecord, event: OrderPlaced | OrderUpdated | OrderCancelled, ctx: Context,
                run: Run, mapping: StatusMapping | None = None) -> OrderRecord:
    mapping = mapping or ctx.mapping_for(event.meta.source)
    canon, shop = rec.state, rec.shop
    if (isinstance(event, OrderCancelled) and canon is not None and canon.cancelled_at is None
            and canon.fulfillment_status not in CANCELLABLE_FULFILLMENT):
        return reject(rec, event, (
            f"status {canon.status} (fulfillment_status {canon.fulfillment_status}) -> cancelled is not allowed: "
            f"only {', '.join(sorted(CANCELLABLE_FULFILLMENT))} orders can be cancelled"), run)
    if isinstance(event, OrderPlaced) and shop is not None and shop.placed_at is None:
        new_shop = shop.model_copy(update={
            "placed_at": event.placed_at, "meta": output_meta("OrderState", event.meta), "version": shop.version + 1,
            "updated_at": event.meta.recorded_at, "last_event_id": event.meta.event_id})
        rules = [RULE_PLACED_LATE]
    else:
        out = lifecycle.apply(shop, event, mapping)
        if out.duplicate:
            run.notes.append(out.note or "duplicate")
            return rec
        if out.rejected is not None:
            return reject(rec, event, out.rejected, run)
        if out.state is None:  # pragma: no cover - lifecycle gives a state, a rejection or a duplicate
            return rec
        new_shop = out.state
        rules = out.change.rule.split("+") if out.change is not None else [_shop_rule(event, shop)]
    cand = rec
    if isinstance(event, OrderPlaced | OrderUpdated):
        newest = shop is None or isinstance(event, OrderUpdated)
        cand = _keep_details(rec, event, newest)
    cand = replace(cand, shop=new_shop)
    if canon is None and ctx.policy.review.await_verdict:
        cand = replace(cand, awaiting_review=True)  # no ReleaseOrder before the review rules' verdict
    settled = settle(rec, cand, event, ctx, run, rules, payment_graph=mapping.payment_graph,
                      fulfillment_graph=mapping.fulfillment_graph)
    if settled is not rec and isinstance(event, OrderCancelled):
        assert shop is not None
        whole = new_shop.cancelled_at is not None and shop.cancelled_at is None
        if whole or event.lines:
            run.emit(TOPIC_FULFILLMENT, rec.order_id, CancelFulfillment(
                meta=output_meta("CancelFulfillment", event.meta), order_id=rec.order_id,
                lines=[] if whole else list(event.lines),
                reason=event.reason or ("order cancelled" if whole else "lines cancelled")))
    return settled


def _keep_details(rec: OrderRecord, event: OrderPlaced | OrderUpdated, newest: bool) -> OrderRecord:
    """What the commands need from the shop's snapshots: the newest one's values win, gaps are filled."""
    def pick(mine: Any, theirs: Any) -> Any:
        return (theirs if theirs is not None else mine) if newest else (mine if mine is not None else theirs)
    return replace(rec, order_number=pick(rec.order_number, event.order_number),
                   shipping=pick(rec.shipping, event.shipping), customer=pick(rec.customer, event.customer),
                   billing_address=pick(rec.billing_address, event.billing_address),
                   shipping_address=pick(rec.shipping_address, event.shipping_address),
                   payment_gateway=pick(rec.payment_gateway, event.payment_gateway),
                   taxes_included=pick(rec.taxes_included, event.taxes_included))


def _shop_rule(event: OrderPlaced | OrderUpdated | OrderCancelled, before: OrderState | None) -> str:
    if isinstance(event, OrderPlaced):
        return RULE_PLACED
    if isinstance(event, OrderUpdated):
        return RULE_CREATED_FROM_UPDATE if before is None else RULE_UPDATED
    return RULE_CANCELLED if not event.lines else RULE_LINES_CANCELLED
