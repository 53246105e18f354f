"""The canonical order across shop, payments, shipments and returns: `apply(record, event, context)`. Pure.

This is the whole behaviour of the orders processor once it consumes `shop.orders`, `payments`,
`fulfillment.shipments` and `returns` (all keyed by order id, one copartition group): the adapter
feeds every event with the order's table entry (`record.OrderRecord`) to `apply`, sends every
`RecordOutcome.outputs` entry `(topic, key, record)`, waits for the broker, then stores
`RecordOutcome.record.to_dict()` when `RecordOutcome.changed`. A periodic timer calls
`expire(record, context, now)` for the entries `waiting(record)` names (parked events, undecided
returns). No Faust, Kafka, Redis, clock or file access happens here; the same inputs always give the
same outputs (`now` defaults to the event's `recorded_at`, so a replay parks, expires and emits
exactly as the first run did).

The older entry point `lifecycle.apply(state, event, mapping)` (shop events on a bare OrderState)
is unchanged and still used by the current adapter; this module uses it for the shop's view.

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

What each event does
--------------------
Order not seen yet (no canonical state):
  - OrderPlaced / OrderUpdated create it through the shop lifecycle; then every parked event is
    applied, in source-time order (`parking.in_source_order`), each as its own step with its own
    cause (a parked event that is now rejected goes to review like any other).
  - any other event (payments, shipments, returns, OrderCancelled) is **parked** in the record
    (bounded, expiring: `parking`). Events parked too long go to review (kind `parked_expired`),
    the ones beyond the bound too (kind `parking_overflow`).
Order known:
  - OrderPlaced for an order first created by an OrderUpdated fills in `placed_at` (and nothing
    else: the newer snapshot stays); otherwise shop events go through `lifecycle.apply` on the
    shop's view (duplicates, stale snapshots, rejections as documented there).
    OrderCancelled is also refused when the *canonical* fulfillment is no longer cancellable (a
    carrier already has the parcel even if the shop does not know).
  - payment / shipment / return events are recorded as facts (a fact adding nothing is a duplicate;
    an exception after a delivery is refused, see `shipments`).
  - then the canonical state is derived. It is **rejected** (nothing is stored, a ReviewItem of kind
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
  orders.status-changes OrderStatusChanged  per step, see above
  orders.state          OrderState       once per `apply` call, the final state, when it changed
Conditions are evaluated on the record, not on the event, so a record that waits for something (a
refund for its return's approval, a label decision for the delivery) is emitted by whichever later
event completes the picture; its cause — and hence its id — is still the event it belongs to (the
request, the inspection).

Ids: every produced record has `meta.event_id = uuid5(ORDERS_NAMESPACE, "<record>:<cause event
id>[:<part>]")` (`output_meta`), `source` `shopstream.orders`, `causation_id` the cause,
times and `correlation_id` the cause's; AnomalyAlert `detected_at` is the cause's `recorded_at`. A
replay re-emits byte-identical records.

Idempotence and arrival order
-----------------------------
  - Facts are merged with max / union / first-by-key rules, so a redelivered fact event leaves the
    facts equal, the derived state equal, and — the once-only outputs being remembered in `done` /
    `released` — emits nothing. Shop events are idempotent as `lifecycle` shows.
  - A parked event is parked once per event id; once its order arrived it is applied like any
    other event, and its later redelivery is a duplicate.
  - Each source's view only moves forward as its knowledge grows, and `join` of forward-moving
    views only moves along the transition table (see `transitions`), so for the events of a
    consistent order every arrival order reaches the same facts and the same canonical state
    (tests/unit/test_order_canonical.py checks this as a property over permutations with
    duplicates). What does depend on arrival order is *which* intermediate states are published
    and which records a transition emits on the way (an anomaly judged on what was known then).
  - A rejected event is not recorded; redelivered, it meets a state from which its target is still
    unreachable (reachability is transitive; conflicting values stay conflicting), so it is
    rejected again with an identical ReviewItem (same id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel

from shopstream.schemas.models import (
    AnomalyAlert,
    CancelFulfillment,
    EventMeta,
    FulfillmentStatus,
    HoldOrder,
    IssueRefund,
    Money,
    OrderCancelled,
    OrderPlaced,
    OrderReviewed,
    OrderState,
    OrderStatusChanged,
    OrderStatusSnapshot,
    OrderUpdated,
    PaymentStatus,
    ReleaseOrder,
    ReturnStatus,
    ReviewItem,
    ShipmentDispatched,
    StockAdjusted,
    WorkItemDecided,
)
from shopstream.topology import names

from . import decisions, invoicing, labels, lifecycle, payments, returns, shipments
from .lifecycle import (
    RULE_CANCELLED,
    RULE_CREATED_FROM_UPDATE,
    RULE_LINES_CANCELLED,
    RULE_PLACED,
    RULE_UPDATED,
    snapshot,
)
from .mapping import StatusMapping
from .output_meta import output_meta
from .parking import AnyEvent, DecisionEvent, ParkedEvent, expired, in_source_order, order_id_of, park
from .policy import OrdersPolicy, ReturnsPolicy, load_orders_policy, load_returns_policy
from .record import OrderRecord
from .reservations import fulfilled_reservations, reservation_changes, shipment_reservations
from .transitions import (
    CANCELLABLE_FULFILLMENT,
    Dimension,
    Dimensions,
    StateGraph,
    base_graph,
    derive_rule,
    join,
    releasable,
)

TOPIC_STATE = names.ORDERS_STATE
TOPIC_CHANGES = names.ORDERS_STATUS_CHANGES
TOPIC_REVIEW = names.REVIEW_QUEUE
TOPIC_ERP = names.COMMANDS_ERP
TOPIC_FULFILLMENT = names.COMMANDS_FULFILLMENT
TOPIC_PAYMENTS = names.COMMANDS_PAYMENTS
TOPIC_ALERTS = names.ALERTS_ANOMALIES
TOPIC_STOCK = names.INVENTORY_STOCK
TOPIC_RESERVATIONS = names.INVENTORY_RESERVATIONS
TOPIC_SHOP = names.COMMANDS_SHOP

RULE_PLACED_LATE = "order.placed_after_update"
RULE_HOLD_CHARGEBACK = "holds.chargeback"
RULE_HOLD_RISK = "holds.payment_risk"
RULE_HOLD_REVIEW = "holds.review"
REVIEW_HOLD = "review:"  # prefix of the hold reasons the review rules set (`review:<rule-id>`)


@dataclass(frozen=True)
class Context:
    """What `apply` needs besides the record and the event: status mappings and policies.

    `mapping_for(source)` returns the status mapping of a shop source system (the adapter passes its
    caching loader; a missing mapping raises `MappingError`, which the adapter parks on the DLQ).
    """

    mapping_for: Callable[[str], StatusMapping]
    policy: OrdersPolicy = field(default_factory=OrdersPolicy)
    returns_policy: ReturnsPolicy = field(default_factory=ReturnsPolicy)
    stock_locations: frozenset[str] = frozenset()  # ERP location codes a ship may name (reservations)

    @classmethod
    def from_files(cls, mapping_for: Callable[[str], StatusMapping], orders_policy: Path | str | None = None,
                   returns_policy: Path | str | None = None) -> Context:
        """A context with the policies read from their files (default: the shipped ones; I/O, for adapters).

        The stock locations are the inventory policy's online locations (topology/inventory.yaml),
        the ones the ATP worker sums."""
        from shopstream.processors.inventory.config import load_inventory_config

        return cls(mapping_for=mapping_for, policy=load_orders_policy(orders_policy),
                   returns_policy=load_returns_policy(returns_policy),
                   stock_locations=frozenset(load_inventory_config().online_locations))


@dataclass(frozen=True)
class Output:
    """One record to publish: logical topic name, key (the adapter encodes it as UTF-8), record."""

    topic: str
    key: str
    record: BaseModel


@dataclass(frozen=True)
class Step:
    """One applied event that changed the canonical state (for per-step consumers such as reservations)."""

    cause: EventMeta
    before: OrderState | None
    after: OrderState
    rule: str


@dataclass(frozen=True)
class RecordOutcome:
    """What applying one event (or an expiry sweep) did.

    `record`: the order's table entry afterwards; store `record.to_dict()` when `changed` (after the
    broker confirmed every output). `outputs`: every record to publish, in order. `state`: the new
    canonical state when it changed (also among `outputs`). `steps`: each applied event that changed
    the canonical state (several when parked events were applied). `duplicate`: the event changed
    nothing and emitted nothing. `parked`: the event waits for its order. `rejected`: reasons of
    refused events (their ReviewItems are among `outputs`). `notes`: why things were no-ops.
    """

    record: OrderRecord
    changed: bool
    outputs: tuple[Output, ...] = ()
    state: OrderState | None = None
    steps: tuple[Step, ...] = ()
    duplicate: bool = False
    parked: bool = False
    rejected: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class _Run:
    """Accumulates the outputs of one `apply` / `expire` call."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.steps: list[Step] = []
        self.rejected: list[str] = []
        self.notes: list[str] = []
        self.parked = False

    def emit(self, topic: str, key: str, record: BaseModel) -> None:
        self.outputs.append(Output(topic, key, record))

    def review(self, order_id: str, cause: EventMeta, kind: str, reason: str, *, part: str = "",
               details: dict[str, str] | None = None, rule: str | None = None) -> None:
        self.emit(TOPIC_REVIEW, order_id, ReviewItem(
            meta=output_meta("ReviewItem", cause, part or kind), order_id=order_id, kind=kind, reason=reason,
            details=details or {}, event_id=cause.event_id, event_type=cause.event_type, rule=rule))

    def outcome(self, start: OrderRecord, end: OrderRecord) -> RecordOutcome:
        changed = end != start
        outputs = list(self.outputs)
        state = end.state if end.state is not None and end.state != start.state else None
        if state is not None:
            outputs.append(Output(TOPIC_STATE, end.order_id, state))
        duplicate = not changed and not outputs and not self.rejected and not self.parked
        return RecordOutcome(record=end, changed=changed, outputs=tuple(outputs), state=state,
                             steps=tuple(self.steps), duplicate=duplicate, parked=self.parked,
                             rejected=tuple(self.rejected), notes=tuple(self.notes))


# --- entry points -----------------------------------------------------------------------------------


def apply(record: OrderRecord | None, event: AnyEvent, context: Context, now: datetime | None = None) -> RecordOutcome:
    """Apply one event of any order topic to the order's record (see the module docstring).

    `record` None means the table has no entry for the order yet. `now` (default: the event's
    `recorded_at`) is the processor's clock for parking and expiry.
    """
    order_id = order_id_of(event)
    if record is not None and record.order_id != order_id:
        raise ValueError(f"event for order {order_id!r} applied to the record of order {record.order_id!r}")
    now = now or event.meta.recorded_at
    start = record or OrderRecord(order_id=order_id)
    run = _Run()
    if isinstance(event, WorkItemDecided) and event.subject_type != "order":
        # A decision about another subject (an unmatched payment) is not this processor's: never parked.
        run.notes.append(f"decision {event.meta.event_id} is about a {event.subject_type}, not an order")
        return run.outcome(start, start)
    rec = start
    if rec.state is None:
        if isinstance(event, OrderPlaced | OrderUpdated):
            rec = _apply_one(rec, event, context, run)
            if rec.state is not None and rec.parked:
                waiting = in_source_order(rec.parked)
                rec = replace(rec, parked=())
                for parked in waiting:
                    rec = _apply_one(rec, parked.event, context, run)
        else:
            rec = _expire_parked(rec, context, now, run)
            rec = _park(rec, event, context, now, run)
    else:
        rec = _sweep_waiting(rec, context, now, run)
        rec = _apply_one(rec, event, context, run)
    return run.outcome(start, rec)


def expire(record: OrderRecord, context: Context, now: datetime) -> RecordOutcome:
    """The periodic sweep: parked events and waiting return decisions older than the policy allows go to review."""
    run = _Run()
    if record.state is None:
        rec = _expire_parked(record, context, now, run)
    else:
        rec = _sweep_waiting(record, context, now, run)
    return run.outcome(record, rec)


def waiting(record: OrderRecord) -> bool:
    """Whether `expire` may ever have something to do for this record (the adapter's sweep visits only these).

    True while events are parked, a return request awaits its label decision, or an inspection its
    refund decision.
    """
    if record.parked:
        return True
    for rid, ret in record.returns.returns.items():
        if ret.request is not None and not _decided(record.done, rid):
            return True
        if any(f"return.refund:{iid}" not in record.done for iid in ret.inspections):
            return True
    return False


# --- parking ------------------------------------------------------------------------------------------


def _parked_details(parked: ParkedEvent) -> dict[str, str]:
    return {"event_type": type(parked.event).__name__, "source": parked.event.meta.source,
            "parked_at": parked.parked_at.isoformat(), "event": parked.event.model_dump_json()}


def _park(rec: OrderRecord, event: AnyEvent, ctx: Context, now: datetime, run: _Run) -> OrderRecord:
    kept, evicted, duplicate = park(rec.parked, event, now, ctx.policy.parking.max_events_per_order)
    if duplicate:
        run.notes.append(f"{event.meta.event_type} {event.meta.event_id} is already parked")
        return rec
    for gone in evicted:
        run.review(rec.order_id, gone.event.meta, "parking_overflow",
                   f"order {rec.order_id} has not arrived and already has "
                   f"{ctx.policy.parking.max_events_per_order} parked events: this one is not kept",
                   details=_parked_details(gone))
    if any(p.event.meta.event_id == event.meta.event_id for p in kept):
        run.parked = True
        run.notes.append(f"order {rec.order_id} not seen yet: {event.meta.event_type} {event.meta.event_id} parked")
    return replace(rec, parked=kept)


def _expire_parked(rec: OrderRecord, ctx: Context, now: datetime, run: _Run) -> OrderRecord:
    keep, gone = expired(rec.parked, now, ctx.policy.parking.expire_after)
    for parked in gone:
        run.review(rec.order_id, parked.event.meta, "parked_expired",
                   f"order {rec.order_id} did not arrive within {ctx.policy.parking.expire_after} of "
                   f"{parked.event.meta.event_type} {parked.event.meta.event_id}",
                   details=_parked_details(parked))
    return replace(rec, parked=keep) if gone else rec


def _sweep_waiting(rec: OrderRecord, ctx: Context, now: datetime, run: _Run) -> OrderRecord:
    """Return requests still waiting for a delivery, inspections still waiting for a request: to review."""
    if rec.state is None:
        return rec
    wait = ctx.policy.parking.expire_after
    done = set(rec.done)
    for rid, ret in sorted(rec.returns.returns.items()):
        request = ret.request
        if request is not None and not _decided(done, rid) and now - request.meta.recorded_at >= wait:
            run.review(rec.order_id, request.meta, "return_delivery_unknown",
                       f"return {rid}: no delivery of order {rec.order_id} known within {wait} of the request, "
                       "so the return window cannot be checked", part=f"return_delivery_unknown:{rid}",
                       details={"return_id": rid}, rule="returns_policy.window_days")
            done.add(f"return.review:{rid}")
        for iid, inspection in sorted(ret.inspections.items()):
            if (f"return.refund:{iid}" not in done and request is None
                    and now - inspection.meta.recorded_at >= wait):
                run.review(rec.order_id, inspection.meta, "return_without_request",
                           f"return {rid} was inspected but never requested: no refund without an approved request",
                           part=f"return_without_request:{iid}", details={"return_id": rid})
                done.add(f"return.refund:{iid}")
    if done == set(rec.done):
        return rec
    return _derived_outputs(rec.state, replace(rec, done=frozenset(done)), rec.state.meta, ctx, run)


# --- one event ------------------------------------------------------------------------------------------


def _apply_one(rec: OrderRecord, event: AnyEvent, ctx: Context, run: _Run) -> OrderRecord:
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
        return _settle(rec, replace(rec, payments=facts), event, ctx, run, [])
    if isinstance(event, shipments.SHIPMENT_EVENTS):
        recorded = shipments.record_event(rec.shipments, event)
        if recorded.rejected is not None:
            return _reject(rec, event, recorded.rejected, run)
        if recorded.note is not None:
            run.notes.append(recorded.note)
            return rec
        return _settle(rec, replace(rec, shipments=recorded.facts), event, ctx, run, [])
    facts_r, note_r = returns.record_event(rec.returns, event)
    if note_r is not None:
        run.notes.append(note_r)
        return rec
    return _settle(rec, replace(rec, returns=facts_r), event, ctx, run, [])


def _apply_decision(rec: OrderRecord, event: DecisionEvent, ctx: Context, run: _Run) -> OrderRecord:
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
        out = _settle(rec, plan.record, event, ctx, run, list(plan.rules))
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
                run: _Run, mapping: StatusMapping | None = None) -> OrderRecord:
    mapping = mapping or ctx.mapping_for(event.meta.source)
    canon, shop = rec.state, rec.shop
    if (isinstance(event, OrderCancelled) and canon is not None and canon.cancelled_at is None
            and canon.fulfillment_status not in CANCELLABLE_FULFILLMENT):
        return _reject(rec, event, (
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
            return _reject(rec, event, out.rejected, run)
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
    settled = _settle(rec, cand, event, ctx, run, rules, payment_graph=mapping.payment_graph,
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


# --- deriving and settling the canonical state ------------------------------------------------------------


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


def _settle(before: OrderRecord, cand: OrderRecord, event: AnyEvent, ctx: Context, run: _Run, rules: list[str], *,
            payment_graph: StateGraph | None = None, fulfillment_graph: StateGraph | None = None) -> OrderRecord:
    """Derive the canonical state of `cand`; reject (keep `before`) or adopt it and emit what follows."""
    prev = before.state
    assert cand.shop is not None
    derived = _derive(cand, ctx)
    if isinstance(derived, str):
        return _reject(before, event, derived, run)
    new = _build(prev, cand.shop, derived, event.meta)
    if prev is not None:
        graphs: dict[Dimension, StateGraph] = {
            "payment_status": payment_graph or base_graph("payment_status"),
            "fulfillment_status": fulfillment_graph or base_graph("fulfillment_status"),
            "return_status": base_graph("return_status"),
        }
        problem = _forbidden_move(prev, new, graphs)
        if problem is not None:
            return _reject(before, event, problem, run, attempted=snapshot(new))
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
    return _derived_outputs(prev, replace(cand, state=new), event.meta, ctx, run)


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


def _reject(rec: OrderRecord, event: AnyEvent, reason: str, run: _Run,
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


# --- derived records -----------------------------------------------------------------------------------------


def _decided(done: Iterable[str], return_id: str) -> bool:
    keys = set(done)
    return f"return.label:{return_id}" in keys or f"return.review:{return_id}" in keys


def _derived_outputs(prev: OrderState | None, rec: OrderRecord, cause: EventMeta, ctx: Context,
                     run: _Run) -> OrderRecord:
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


def _return_outputs(rec: OrderRecord, state: OrderState, done: set[str], ctx: Context, run: _Run) -> None:
    oid = rec.order_id
    policy = ctx.returns_policy
    delivered_at = rec.shipments.delivered_at() if state.fulfillment_status == "delivered" else None
    for rid, ret in sorted(rec.returns.returns.items()):
        request = ret.request
        if request is not None and not _decided(done, rid):
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


def _shipping_refund(rec: OrderRecord, state: OrderState, done: set[str], ctx: Context, run: _Run) -> None:
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
