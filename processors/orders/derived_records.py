"""The once-only records that follow from an order's record: holds, releases, invoices, returns, refunds. Pure.

`derived_outputs` runs after every step that changed the canonical state (and after the expiry
sweep); it emits each record whose condition now holds and remembers it in the record's `done` /
`released`, so a redelivery or a replay emits nothing twice. The table also names three records
emitted elsewhere: CancelFulfillment (`appliers`), OrderStatusChanged (`settle`) and OrderState
(`outcome`); the reservations are `reservations`'.

Derived records (after every applied step, from the record: each once)
----------------------------------------------------------------------
  commands.fulfillment  ReleaseOrder     the order became payable-and-not-held
                                         (`transitions.releasable`) and none was sent since the
                                         last HoldOrder
  commands.fulfillment  HoldOrder        the hold reasons gained a reason (all reasons listed),
                        + ReviewItem     kind `hold`
  commands.fulfillment  CancelFulfillment  an OrderCancelled applied (whole order: no lines; line
                                         cancellation: those lines); only unshipped orders can be
                                         cancelled at all
  commands.erp          CreateInvoice    captured equals total exactly, once per order; or one per
                                         shipment handed over (invoice on shipment; `invoicing`)
  commands.erp          CreateCreditNote every refund the provider reported, once an invoice exists
  alerts.anomalies      AnomalyAlert     a reconciliation finding (`payments.anomalies`: over_capture,
                        + ReviewItem     double_capture, currency_mismatch, refund_exceeds_capture,
                                         chargeback), once per finding key; severity from the policy
  review.queue          ReviewItem       a shipment in exception (kind `shipment_exception`), once
                                         per exception
  commands.fulfillment  CreateReturnLabel  a return request approved by the returns policy
                        or ReviewItem    (`returns.decide_label`; waits until the order is delivered)
  commands.payments     IssueRefund      an inspection of an approved return, amount per policy
                        or ReviewItem    (`returns.refund_for`); an inspection of a refused return,
                                         or one that cannot be priced, goes to review instead
  inventory.stock       StockAdjusted    restockable units of an inspection, per SKU (reason
                                         `return_restock`, positive delta, keyed by SKU)
  commands.payments     IssueRefund      the shipping charge, when the policy refunds it and every
                                         unit came back through approved, refunded returns
  orders.status-changes OrderStatusChanged  per step, see `settle`
  orders.state          OrderState       once per `apply` call, the final state, when it changed
Conditions are evaluated on the record, not on the event, so a record that waits for something (a
refund for its return's approval, a label decision for the delivery) is emitted by whichever later
event completes the picture; its cause — and hence its id — is still the event it belongs to (the
request, the inspection).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from shopstream.schemas.models import (
    AnomalyAlert,
    EventMeta,
    HoldOrder,
    IssueRefund,
    OrderState,
    ReleaseOrder,
    StockAdjusted,
)

from . import invoicing, labels, payments, returns, shipments
from .context import Context
from .outcome import TOPIC_ALERTS, TOPIC_ERP, TOPIC_FULFILLMENT, TOPIC_PAYMENTS, TOPIC_STOCK, Run
from .output_meta import output_meta
from .record import OrderRecord
from .transitions import releasable

REVIEW_HOLD = "review:"  # prefix of the hold reasons the review rules set (`review:<rule-id>`)


def decided(done: Iterable[str], return_id: str) -> bool:
    """Whether the return's request got its label decision (a label, or a review instead)."""
    keys = set(done)
    return f"return.label:{return_id}" in keys or f"return.review:{return_id}" in keys


def derived_outputs(prev: OrderState | None, rec: OrderRecord, cause: EventMeta, ctx: Context,
                     run: Run) -> OrderRecord:
    """Emit every once-only record whose condition now holds (see the module docstring); remember it."""
    state = rec.state
    assert state is not None
    oid = rec.order_id
    done = set(rec.done)
    released = rec.released

    for anomaly in payments.anomalies(rec.payments, state.total, state.captured.amount, state.refunded.amount):
        if anomaly.key in done:
            continue
        done.add(anomaly.key)
        evidence = {"order_id": oid, **anomaly.evidence}
        run.emit(TOPIC_ALERTS, f"order:{oid}", AnomalyAlert(
            meta=output_meta("AnomalyAlert", cause, anomaly.key), kind=anomaly.kind, subject=f"order:{oid}",
            severity=ctx.policy.severity(anomaly.kind), summary=f"order {oid}: {anomaly.summary}", evidence=evidence,
            detected_at=cause.recorded_at))
        run.review(oid, cause, anomaly.kind, f"order {oid}: {anomaly.summary}", part=anomaly.key, details=evidence,
                   rule=f"reconciliation.{anomaly.kind}")

    for shipment in shipments.open_exceptions(rec.shipments):
        key = f"shipment_exception:{shipment.shipment_id}:{shipment.exception_event_id}"
        if key in done:
            continue
        done.add(key)
        run.review(oid, cause, "shipment_exception",
                   f"order {oid}: shipment {shipment.shipment_id} ({shipment.carrier or 'carrier unknown'}, "
                   f"tracking {shipment.tracking_number or '-'}) reports {shipment.exception_code}",
                   part=key, details={"shipment_id": shipment.shipment_id,
                                      "exception_code": shipment.exception_code or "",
                                      "exception_event_id": shipment.exception_event_id or ""},
                   rule="shipments.exception")

    before_holds = set(prev.hold_reasons) if prev is not None else set()
    gained = set(state.hold_reasons) - before_holds
    if gained:
        reasons = list(state.hold_reasons)
        run.emit(TOPIC_FULFILLMENT, oid, HoldOrder(meta=output_meta("HoldOrder", cause), order_id=oid,
                                                   reasons=reasons))
        # The review worker raises its own work item (with the rules' evidence) for review:* reasons; this
        # one names the others, which is what approving it lifts.
        others = [r for r in reasons if not r.startswith(REVIEW_HOLD)]
        if any(not r.startswith(REVIEW_HOLD) for r in gained):
            run.review(oid, cause, "hold", f"order {oid} is on hold: {', '.join(reasons)}",
                       details={"hold_reasons": ",".join(others)}, rule="holds")
        released = False

    if not released and not rec.awaiting_review and releasable(
            state.payment_status, state.fulfillment_status, state.cancelled_at is not None, state.hold_reasons):
        run.emit(TOPIC_FULFILLMENT, oid, ReleaseOrder(
            meta=output_meta("ReleaseOrder", cause), order_id=oid,
            reason=f"payment {state.payment_status}, no hold"))
        released = True

    for document in invoicing.outputs(rec, state, done, ctx.policy.invoicing, cause):
        run.emit(TOPIC_ERP, oid, document)

    _return_outputs(rec, state, done, ctx, run)
    return replace(rec, done=frozenset(done), released=released)


def _return_outputs(rec: OrderRecord, state: OrderState, done: set[str], ctx: Context, run: Run) -> None:
    oid = rec.order_id
    policy = ctx.returns_policy
    delivered_at = rec.shipments.delivered_at() if state.fulfillment_status == "delivered" else None
    for rid, ret in sorted(rec.returns.returns.items()):
        request = ret.request
        if request is not None and not decided(done, rid):
            decision = returns.decide_label(request, delivered_at, policy)
            if decision is not None and decision.approved:
                done.add(f"return.label:{rid}")
                run.emit(TOPIC_FULFILLMENT, oid, labels.build_label(rec, state.lines, rid, request, policy))
            elif decision is not None:
                done.add(f"return.review:{rid}")
                run.review(oid, request.meta, decision.kind or "return_refused",
                           f"return {rid} of order {oid}: {decision.reason}", part=f"{decision.kind}:{rid}",
                           details={"return_id": rid, "skus": ",".join(sorted({x.sku for x in request.lines}))},
                           rule=decision.rule)
        for iid, inspection in sorted(ret.inspections.items(), key=lambda kv: (kv[1].inspected_at, kv[0])):
            if f"return.restock:{iid}" not in done:
                done.add(f"return.restock:{iid}")
                for sku, location, units in returns.restock(inspection, policy):
                    run.emit(TOPIC_STOCK, sku, StockAdjusted(
                        meta=output_meta("StockAdjusted", inspection.meta, f"{sku}@{location}"), sku=sku,
                        location=location, delta=units, reason="return_restock", reference=rid,
                        adjusted_at=inspection.inspected_at))
            if f"return.refund:{iid}" in done:
                continue
            if f"return.label:{rid}" in done:
                done.add(f"return.refund:{iid}")
                refund = returns.refund_for(inspection, state.lines, state.currency, policy)
                if isinstance(refund, str):
                    run.review(oid, inspection.meta, "return_refund_unpriced", f"return {rid} of order {oid}: {refund}",
                               part=f"return_refund_unpriced:{iid}", details={"return_id": rid},
                               rule="returns_policy.refund_fraction")
                elif refund.amount.amount > 0:
                    payment_id, provider = payments.main_payment(rec.payments)
                    run.emit(TOPIC_PAYMENTS, oid, IssueRefund(
                        meta=output_meta("IssueRefund", inspection.meta), order_id=oid, payment_id=payment_id,
                        provider=provider, amount=refund.amount, reason="return", return_id=rid,
                        lines=refund.lines, policy=refund.rule))
                else:
                    run.review(oid, inspection.meta, "return_refund_zero",
                               f"return {rid} of order {oid}: nothing to refund under the policy ({refund.rule})",
                               part=f"return_refund_zero:{iid}", details={"return_id": rid}, rule=refund.rule)
            elif f"return.review:{rid}" in done:
                done.add(f"return.refund:{iid}")
                run.review(oid, inspection.meta, "return_inspected_unapproved",
                           f"return {rid} of order {oid} was inspected but its request was not approved: "
                           "no automatic refund", part=f"return_inspected_unapproved:{iid}",
                           details={"return_id": rid})
    _shipping_refund(rec, state, done, ctx, run)


def _shipping_refund(rec: OrderRecord, state: OrderState, done: set[str], ctx: Context, run: Run) -> None:
    shipping = rec.shipping
    if (not ctx.returns_policy.refund_shipping or "return.shipping" in done or shipping is None
            or shipping.amount <= 0 or shipping.currency != state.currency
            or not returns.all_back(rec.returns, state.lines)):
        return
    inspections = [(i.inspected_at, iid, rid, i) for rid, r in rec.returns.returns.items()
                   for iid, i in r.inspections.items()]
    if not inspections:
        return
    for _, iid, rid, _ in inspections:
        if f"return.label:{rid}" not in done or f"return.refund:{iid}" not in done:
            return
    _, _, rid, last = max(inspections, key=lambda x: (x[0], x[1]))
    done.add("return.shipping")
    payment_id, provider = payments.main_payment(rec.payments)
    run.emit(TOPIC_PAYMENTS, rec.order_id, IssueRefund(
        meta=output_meta("IssueRefund", last.meta, "shipping"), order_id=rec.order_id, payment_id=payment_id,
        provider=provider, amount=shipping, reason="return_shipping", return_id=rid, lines=[],
        policy="returns_policy.refund_shipping"))
