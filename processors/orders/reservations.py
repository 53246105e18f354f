"""Stock reservations of orders: `reservation_changes(before, after, cause) -> [ReservationChanged]`, pure.

The orders processor (`app.py`) applies each `shop.orders` event with the lifecycle and, when the
lifecycle applied it (not a duplicate, stale or rejected event), hands the order's state before and
after to `reservation_changes`; the records it returns go to `inventory.reservations`, keyed by SKU,
where the inventory processor (`shopstream.processors.inventory.atp`) folds them into ATP. No Faust,
Kafka, Redis, clock or file access happens here; the same inputs always give the same records.

What is reserved
----------------
An order reserves, per SKU, the total quantity over its lines (lines with a quantity of 0 or less
count nothing; a SKU whose total is 0 has no reservation). One ReservationChanged describes the
reservation of one (order_id, SKU) *after* the change: `quantity` is absolute, `delta` the signed
change against the previous total (informational), `line_id` the line when exactly one line carries
the SKU, `location` none (an order does not know the warehouse), `reason` the lifecycle rule
(`order.placed`, `order.created_from_update`, `order.updated`, `order.lines_cancelled`,
`order.cancelled`; `shipment.dispatched` for ship).

When (state before -> state after the event)
--------------------------------------------
  - order created (no state before: OrderPlaced, or an OrderUpdated for an unknown order):
    `reserve` for every SKU with a positive total.
  - live order (not cancelled before or after) whose SKU totals changed (OrderUpdated line
    changes, a partial OrderCancelled): `adjust` for each SKU whose total differs, including a SKU
    new to the order. A SKU that disappears from the lines is adjusted to 0, never released:
    release is terminal in the ATP core and the line may come back with a later snapshot, which
    then adjusts it up again.
  - order cancelled by the event (a whole OrderCancelled, or line cancellations that leave nothing):
    `release` (quantity 0) for every SKU of the lines before. A SKU adjusted to 0 earlier is not in
    them and stays an open reservation of 0 units in the ATP state: it counts nothing, but the
    core's `prune` (released/counted only) never drops it.
  - anything else: nothing. In particular an already-cancelled order emits nothing any more (later
    snapshots still move its payment, and may carry lines, but its reservations are released and
    stay so), and an event that leaves the totals equal (payment or fulfillment moves only) emits
    nothing.

Only the states matter, not which entry point made them: when the adapter moves to
`canonical.apply` (whose lines and `source_updated_at` are the shop view's, moved by shop events
only), it passes the canonical OrderState before and after. An input that applies several steps at
once (a create, then the events parked for it) nets out over before/after: a parked whole cancel
reserves nothing, a parked line cancellation reserves the reduced lines.

Times: `meta.occurred_at` is the ATP core's ordering key
---------------------------------------------------------
The ATP core applies a reserve/adjust only when its `meta.occurred_at` is newer than the last one
it applied for that (order, SKU): so these times must strictly increase per order. They are the
order's source time of the change, which is exactly the lifecycle's `source_updated_at` after the
event: `placed_at` on OrderPlaced, `updated_at` on OrderUpdated, `cancelled_at` on a partial
OrderCancelled. The lifecycle applies an update or a partial cancellation only when that time is
newer than `source_updated_at` before, and stores it, so successive reserve/adjust records of an
order carry strictly increasing times; a replay re-emits the same time, which the core treats as a
duplicate. A line change without a newer `source_updated_at` would be silently ignored by the core,
so it is refused here (ValueError: a lifecycle bug, parked on the DLQ by the adapter).
Release is not ordered by time in the core (it ends an open reservation whatever its time) and a
whole cancellation is not ordered by source time in the lifecycle either; it carries `cancelled_at`.

Ids: `meta.event_id = uuid5(ORDERS_NAMESPACE, "ReservationChanged:<cause event id>:<sku>")`, so
re-processing the same event (after a crash, or a replay) re-emits byte-identical records.
`source` is `shopstream.orders`, `causation_id` the cause event id, `correlation_id` and
`recorded_at` the cause's. Records come sorted by SKU.

Shipments (`shipment_reservations`)
-----------------------------------
`shipment_reservations(event, order, stock_locations)` turns a ShipmentDispatched into one `ship`
per SKU of its lines (quantity: the units of that SKU in the shipment; `meta.occurred_at`:
`dispatched_at`; same id scheme with the dispatch's event id). A dispatch without lines (carrier
scans rarely carry item detail) ships the whole order: the SKU totals of `order`'s lines.
`canonical` emits them for every dispatch it records, whether or not the canonical state moved
(the shop may have reported the fulfilment first).
Location: the ATP core counts a shipped reservation by the next ERP snapshot of *its* location at
or after the dispatch, so the location must be an ERP location code. A carrier reports where it
scanned the parcel ("Hamburg, DE") and Shopify its own numeric location id; neither is one. The
shipment's location is therefore used only when it is one of the deployment's stock locations
(`stock_locations`: the inventory policy's online locations, passed by the orders processor);
otherwise the ship is unlocated and a snapshot of any location at or after the dispatch counts it
(exact for a single warehouse; with several, one counted earlier than the others frees its units
until then only if it was not the dispatching one's count).
Shipped without a dispatch event: `fulfilled_reservations(before, after, cause)` ships the whole
order (SKU totals of its lines, unlocated, at the cause's `occurred_at`) when another event moved
the canonical fulfillment to shipped or delivered — a shop that reports fulfilment itself
(WooCommerce `completed`, a Shopify order updated to `fulfilled`) or a delivery scan without a
dispatch scan. Without it the units of such an order would stay reserved forever. Its ids carry
the part `ship` (a creation already fulfilled reserves and ships with one cause). Should the real
dispatch arrive later, its `ship` is ignored by the core (already shipped).
The ATP core ships a reservation once (a second `ship` for the same order and SKU is ignored, and
units not shipped stop being reserved), so split shipments of one SKU need the core to learn
partial shipping first; and after a ship, line changes of the order still emit `adjust`, which the
core ignores for a shipped reservation.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from shopstream.codecs.avro import event_uuid5
from shopstream.processors.orders.lifecycle import (
    RULE_CANCELLED,
    RULE_CREATED_FROM_UPDATE,
    RULE_LINES_CANCELLED,
    RULE_PLACED,
    RULE_UPDATED,
)
from shopstream.processors.orders.output_meta import ORDERS_NAMESPACE_BYTES, OUTPUT_SOURCE
from shopstream.schemas.models import (
    EventMeta,
    OrderLine,
    OrderState,
    ReservationAction,
    ReservationChanged,
    ShipmentDispatched,
)

RECORD = "ReservationChanged"
REASON_DISPATCHED = "shipment.dispatched"
REASON_FULFILLED = "order.fulfilled"
SHIPPED = frozenset({"shipped", "delivered"})


def sku_totals(lines: Iterable[OrderLine]) -> dict[str, int]:
    """Units per SKU over the lines (non-positive quantities count nothing; zero totals are left out)."""
    totals: dict[str, int] = {}
    for line in lines:
        if line.quantity > 0:
            totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    return totals


def reservation_event_id(cause_event_id: str, sku: str, part: str = "") -> str:
    """The deterministic id of the reservation record one cause event produces for one SKU."""
    return event_uuid5(ORDERS_NAMESPACE_BYTES, f"{RECORD}:{cause_event_id}:{sku}" + (f":{part}" if part else ""))


def fulfilled_reservations(before: OrderState | None, after: OrderState, cause: EventMeta) -> list[ReservationChanged]:
    """`ship` per SKU of the whole order when a non-dispatch event made it shipped (see the module docstring)."""
    if (before is not None and before.fulfillment_status in SHIPPED) or after.fulfillment_status not in SHIPPED:
        return []
    at = cause.occurred_at
    return [ReservationChanged(meta=_meta(cause, sku, at, part="ship"), sku=sku, order_id=after.order_id,
                               action="ship", quantity=qty, delta=None, location=None, line_id=None,
                               reason=REASON_FULFILLED)
            for sku, qty in sorted(sku_totals(after.lines).items())]


def reservation_changes(before: OrderState | None, after: OrderState | None,
                        cause: EventMeta) -> list[ReservationChanged]:
    """The reservation records of one applied order event (see the module docstring for the rules).

    `before`: the stored state (None for a new order); `after`: the lifecycle's new state (None when
    the event changed nothing, which yields nothing); `cause`: the applied event's meta."""
    if after is None:
        return []
    if before is not None and before.order_id != after.order_id:
        raise ValueError(f"states of different orders: {before.order_id!r} -> {after.order_id!r}")
    if before is None:
        if after.cancelled_at is not None:  # not produced by the lifecycle; nothing to hold for it
            return []
        at = _source_time(after)
        reason = RULE_PLACED if after.placed_at is not None else RULE_CREATED_FROM_UPDATE
        return [_record(after, cause, sku, "reserve", qty, qty, at, reason, after.lines)
                for sku, qty in sorted(sku_totals(after.lines).items())]
    if before.cancelled_at is not None:
        return []
    old = sku_totals(before.lines)
    if after.cancelled_at is not None:
        return [_record(after, cause, sku, "release", 0, -qty, after.cancelled_at, RULE_CANCELLED, before.lines)
                for sku, qty in sorted(old.items())]
    new = sku_totals(after.lines)
    changed = sorted(sku for sku in old.keys() | new.keys() if old.get(sku, 0) != new.get(sku, 0))
    if not changed:
        return []
    at = _source_time(after)
    reason = RULE_LINES_CANCELLED if cause.event_type == "OrderCancelled" else RULE_UPDATED
    if before.source_updated_at is not None and at <= before.source_updated_at:
        raise ValueError(
            f"order {after.order_id}: lines changed by {cause.event_type} {cause.event_id} but the source time "
            f"{at.isoformat()} is not after {before.source_updated_at.isoformat()}: the ATP core would ignore "
            "the adjustment")
    return [_record(after, cause, sku, "adjust", new.get(sku, 0), new.get(sku, 0) - old.get(sku, 0), at,
                    reason, after.lines)
            for sku in changed]


def shipment_reservations(event: ShipmentDispatched, order: OrderState | None = None,
                          stock_locations: Collection[str] = ()) -> list[ReservationChanged]:
    """`ship` per SKU of a dispatched shipment (see the module docstring).

    A dispatch that names no lines is the whole order (as `shipments` reads an unlined shipment):
    then the SKU totals of `order`'s lines are shipped, and nothing without the order. The
    shipment's location is the reservation's only when it is one of `stock_locations`."""
    location = event.location if event.location in stock_locations else None
    units: dict[str, int] = {}
    for line in event.lines:
        if line.quantity > 0:
            units[line.sku] = units.get(line.sku, 0) + line.quantity
    if not event.lines and order is not None:
        if order.order_id != event.order_id:
            raise ValueError(f"shipment of order {event.order_id!r} with the state of order {order.order_id!r}")
        units = sku_totals(order.lines)
    return [ReservationChanged(meta=_meta(event.meta, sku, event.dispatched_at), sku=sku, order_id=event.order_id,
                               action="ship", quantity=qty, delta=None, location=location, line_id=None,
                               reason=REASON_DISPATCHED)
            for sku, qty in sorted(units.items())]


# --- helpers ------------------------------------------------------------------------------------


def _source_time(state: OrderState) -> datetime:
    """The order's source time of its latest reserve/adjust-relevant change (set by every creation)."""
    at = state.source_updated_at or state.placed_at
    if at is None:
        raise ValueError(f"order {state.order_id} has no source time (source_updated_at/placed_at)")
    return at


def _meta(cause: EventMeta, sku: str, at: datetime, part: str = "") -> EventMeta:
    return EventMeta.model_construct(event_id=reservation_event_id(cause.event_id, sku, part), event_type=RECORD,
                                     occurred_at=at, recorded_at=cause.recorded_at, source=OUTPUT_SOURCE,
                                     source_event_id=None, correlation_id=cause.correlation_id,
                                     causation_id=cause.event_id)


def _record(state: OrderState, cause: EventMeta, sku: str, action: ReservationAction, quantity: int, delta: int,
            at: datetime, reason: str, lines: Iterable[OrderLine]) -> ReservationChanged:
    line_ids = [line.line_id for line in lines if line.sku == sku]
    return ReservationChanged.model_construct(meta=_meta(cause, sku, at), sku=sku, order_id=state.order_id,
                                              action=action, quantity=quantity, delta=delta, location=None,
                                              line_id=line_ids[0] if len(line_ids) == 1 else None, reason=reason)
