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

`lifecycle.apply(state, event, mapping)` (shop events on a bare OrderState) is the shop's own view of
the order, which `appliers` keeps in the record's `shop` part.

The core is split by what each part does; this module holds the entry points and parking:
  - `context`: what `apply` needs besides the record and the event (`Context`: mappings, policies);
  - `outcome`: what a call produces (`RecordOutcome`, its `Output`s and `Step`s, the output topics);
  - `appliers`: each source's events recorded into the order's record (shop, facts, decisions);
  - `settle`: how the canonical state is derived from the sources' views, accepted or rejected;
  - `derived_records`: the once-only records that follow from the record (commands, alerts, reviews).

What each event does
--------------------
Order not seen yet (no canonical state):
  - OrderPlaced / OrderUpdated create it through the shop lifecycle; then every parked event is
    applied, in source-time order (`parking.in_source_order`), each as its own step with its own
    cause (a parked event that is now rejected goes to review like any other).
  - any other event (payments, shipments, returns, OrderCancelled) is **parked** in the record
    (bounded, expiring: `parking`). Events parked too long go to review (kind `parked_expired`),
    the ones beyond the bound too (kind `parking_overflow`).
Order known: each event is recorded into its source's view (`appliers`), the canonical state is
derived from all views and adopted or rejected (`settle`), and every once-only record whose
condition now holds is emitted (`derived_records`, which lists them all).

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

from dataclasses import replace
from datetime import datetime

from shopstream.schemas.models import OrderPlaced, OrderUpdated, WorkItemDecided

from .appliers import apply_one
from .context import Context
from .derived_records import decided, derived_outputs
from .outcome import RecordOutcome, Run
from .parking import AnyEvent, ParkedEvent, expired, in_source_order, order_id_of, park
from .record import OrderRecord

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
    run = Run()
    if isinstance(event, WorkItemDecided) and event.subject_type != "order":
        # A decision about another subject (an unmatched payment) is not this processor's: never parked.
        run.notes.append(f"decision {event.meta.event_id} is about a {event.subject_type}, not an order")
        return run.outcome(start, start)
    rec = start
    if rec.state is None:
        if isinstance(event, OrderPlaced | OrderUpdated):
            rec = apply_one(rec, event, context, run)
            if rec.state is not None and rec.parked:
                waiting = in_source_order(rec.parked)
                rec = replace(rec, parked=())
                for parked in waiting:
                    rec = apply_one(rec, parked.event, context, run)
        else:
            rec = _expire_parked(rec, context, now, run)
            rec = _park(rec, event, context, now, run)
    else:
        rec = _sweep_waiting(rec, context, now, run)
        rec = apply_one(rec, event, context, run)
    return run.outcome(start, rec)


def expire(record: OrderRecord, context: Context, now: datetime) -> RecordOutcome:
    """The periodic sweep: parked events and waiting return decisions older than the policy allows go to review."""
    run = Run()
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
        if ret.request is not None and not decided(record.done, rid):
            return True
        if any(f"return.refund:{iid}" not in record.done for iid in ret.inspections):
            return True
    return False


# --- parking ------------------------------------------------------------------------------------------


def _parked_details(parked: ParkedEvent) -> dict[str, str]:
    return {"event_type": type(parked.event).__name__, "source": parked.event.meta.source,
            "parked_at": parked.parked_at.isoformat(), "event": parked.event.model_dump_json()}


def _park(rec: OrderRecord, event: AnyEvent, ctx: Context, now: datetime, run: Run) -> OrderRecord:
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


def _expire_parked(rec: OrderRecord, ctx: Context, now: datetime, run: Run) -> OrderRecord:
    keep, gone = expired(rec.parked, now, ctx.policy.parking.expire_after)
    for parked in gone:
        run.review(rec.order_id, parked.event.meta, "parked_expired",
                   f"order {rec.order_id} did not arrive within {ctx.policy.parking.expire_after} of "
                   f"{parked.event.meta.event_type} {parked.event.meta.event_id}",
                   details=_parked_details(parked))
    return replace(rec, parked=keep) if gone else rec


def _sweep_waiting(rec: OrderRecord, ctx: Context, now: datetime, run: Run) -> OrderRecord:
    """Return requests still waiting for a delivery, inspections still waiting for a request: to review."""
    if rec.state is None:
        return rec
    wait = ctx.policy.parking.expire_after
    done = set(rec.done)
    for rid, ret in sorted(rec.returns.returns.items()):
        request = ret.request
        if request is not None and not decided(done, rid) and now - request.meta.recorded_at >= wait:
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
    return derived_outputs(rec.state, replace(rec, done=frozenset(done)), rec.state.meta, ctx, run)
