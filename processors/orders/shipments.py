"""Shipment facts of one order and the fulfillment status they give. Pure.

The events of `fulfillment.shipments` (ShipmentCreated, ShipmentDispatched, ShipmentDelivered,
ShipmentException; from the shop's fulfillments and from carriers) are recorded per `shipment_id` as
a `ShipmentFact`; the order's fulfillment status is derived from all shipments together. Recording
is a merge that is idempotent and commutative, so arrival order and redelivery do not matter:

  - lines: per SKU the largest quantity any event of the shipment named; `unlined`: some created,
    dispatched or delivered event of the shipment named no lines (an exception's lines are the
    affected ones, so an exception without lines says nothing about the contents). An unlined
    shipment is taken to carry the whole order: carrier scans rarely carry item detail (their empty
    list means "the whole shipment"), and a carrier's shipment id (often the tracking number)
    rarely matches the shop's fulfillment id, so what it holds is unknown; most orders ship in one
    parcel. The flag only ever turns on, so coverage only grows as events arrive (counting a
    shipment whole only *until* its lines are known would let a late event shrink it and move the
    order back from shipped to partially_shipped).
  - created_at: the earliest; dispatched_at: the latest; delivered_at: the earliest delivery scan;
    exception_at: the latest exception (its code and event id are kept with it).
  - refused (`record_event` returns a rejection): an exception reported at or after the shipment's
    delivery — `delivered` is final (the transition table has no delivered -> exception), so it goes
    to review. An exception older than the delivery is history and is recorded without effect.

A shipment's own status, by source time (never moved back by a stale scan):
  delivered    a delivery scan exists
  exception    an exception newer than the latest dispatch (or with no dispatch at all)
  in_transit   dispatched
  created      only created (a label / pick order: nothing has left)

The order's fulfillment status (`view`), with "handed over" = dispatched or delivered and the
ordered units per SKU from the order's lines:
  shipments.delivered          every ordered unit is in delivered shipments            delivered
  shipments.exception          every ordered unit is handed over, one shipment is in
                               exception                                               exception
  shipments.shipped            every ordered unit is handed over                       shipped
  shipments.partially_shipped  some units are handed over                              partially_shipped
  shipments.unfulfilled        shipments exist, none handed over                       unfulfilled
and no shipment at all says nothing (None). An exception while the order is only partly handed over
leaves the status `partially_shipped` (the table has no exception -> partially_shipped, so an
exception there could not be resolved without a forbidden move); every exception is surfaced to
review regardless (`open_exceptions`). As shipments accumulate, coverage only grows and the status
only moves along the fulfillment table (exception <-> shipped is a cycle of the table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict

from shopstream.schemas.models import (
    FulfillmentStatus,
    OrderLine,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    ShipmentLine,
)

ShipmentEvent: TypeAlias = ShipmentCreated | ShipmentDispatched | ShipmentDelivered | ShipmentException
SHIPMENT_EVENTS = (ShipmentCreated, ShipmentDispatched, ShipmentDelivered, ShipmentException)
ShipmentStatus = Literal["created", "in_transit", "exception", "delivered"]


class ShipmentFact(BaseModel):
    """Everything known about one shipment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shipment_id: str
    carrier: str | None = None
    tracking_number: str | None = None
    lines: dict[str, int] = {}
    unlined: bool = False
    created_at: datetime | None = None
    dispatched_at: datetime | None = None
    delivered_at: datetime | None = None
    exception_at: datetime | None = None
    exception_code: str | None = None
    exception_event_id: str | None = None

    @property
    def status(self) -> ShipmentStatus:
        """The shipment's own status (see the module docstring)."""
        if self.delivered_at is not None:
            return "delivered"
        if self.exception_at is not None and (self.dispatched_at is None or self.exception_at > self.dispatched_at):
            return "exception"
        if self.dispatched_at is not None:
            return "in_transit"
        return "created"

    @property
    def handed_over(self) -> bool:
        """The carrier has (or had) the parcel."""
        return self.dispatched_at is not None or self.delivered_at is not None


class ShipmentFacts(BaseModel):
    """All shipments of one order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shipments: dict[str, ShipmentFact] = {}

    def is_empty(self) -> bool:
        """No shipment known."""
        return not self.shipments

    def delivered_at(self) -> datetime | None:
        """When the order was delivered: the latest delivery of its delivered shipments."""
        times = [s.delivered_at for s in self.shipments.values() if s.delivered_at is not None]
        return max(times) if times else None


def event_time(event: ShipmentEvent) -> datetime:
    """The source time of a shipment event."""
    if isinstance(event, ShipmentCreated):
        return event.created_at
    if isinstance(event, ShipmentDispatched):
        return event.dispatched_at
    if isinstance(event, ShipmentDelivered):
        return event.delivered_at
    return event.reported_at


def _merge_lines(old: dict[str, int], lines: Sequence[ShipmentLine]) -> dict[str, int]:
    merged = dict(old)
    per_sku: dict[str, int] = {}
    for line in lines:
        per_sku[line.sku] = per_sku.get(line.sku, 0) + line.quantity
    for sku, qty in per_sku.items():
        merged[sku] = max(merged.get(sku, 0), qty)
    return merged


def _earliest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _latest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


@dataclass(frozen=True)
class Recorded:
    """The result of recording one shipment event: new facts, or why nothing changed / a refusal."""

    facts: ShipmentFacts
    note: str | None = None
    rejected: str | None = None


def record_event(facts: ShipmentFacts, event: ShipmentEvent) -> Recorded:
    """The facts after recording one shipment event (see the module docstring)."""
    at = event_time(event)
    old = facts.shipments.get(event.shipment_id) or ShipmentFact(shipment_id=event.shipment_id)
    update: dict[str, object] = {
        "carrier": old.carrier or event.carrier,
        "tracking_number": old.tracking_number or event.tracking_number,
        "lines": _merge_lines(old.lines, event.lines),
        # an exception's lines are the affected ones, not the contents: no lines there says nothing
        "unlined": old.unlined or (not event.lines and not isinstance(event, ShipmentException)),
    }
    if isinstance(event, ShipmentCreated):
        update["created_at"] = _earliest(old.created_at, at)
    elif isinstance(event, ShipmentDispatched):
        update["dispatched_at"] = _latest(old.dispatched_at, at)
    elif isinstance(event, ShipmentDelivered):
        update["delivered_at"] = _earliest(old.delivered_at, at)
    else:
        if old.delivered_at is not None and at >= old.delivered_at:
            return Recorded(facts, rejected=(
                f"shipment {event.shipment_id}: delivered -> exception ({event.exception_code}) is not allowed: "
                f"delivered at {old.delivered_at.isoformat()}, exception reported at {at.isoformat()}"))
        if old.exception_at is None or (at, event.meta.event_id) > (old.exception_at, old.exception_event_id or ""):
            update.update(exception_at=at, exception_code=event.exception_code,
                          exception_event_id=event.meta.event_id)
    new = old.model_copy(update=update)
    if new == old and event.shipment_id in facts.shipments:
        return Recorded(facts, note=f"shipment {event.shipment_id}: {event.meta.event_type} at {at.isoformat()} "
                                    "changes nothing (already known or older)")
    return Recorded(facts.model_copy(update={"shipments": {**facts.shipments, event.shipment_id: new}}))


@dataclass(frozen=True)
class FulfillmentView:
    """What the shipments say about the order's fulfillment (status None: no shipment known)."""

    status: FulfillmentStatus | None
    rule: str | None


def _ordered(lines: Sequence[OrderLine]) -> dict[str, int]:
    ordered: dict[str, int] = {}
    for line in lines:
        if line.quantity > 0:
            ordered[line.sku] = ordered.get(line.sku, 0) + line.quantity
    return ordered


def _covers(shipments: Sequence[ShipmentFact], ordered: dict[str, int]) -> bool:
    if any(s.unlined for s in shipments):
        return True  # a shipment without line detail carries the whole order
    if not ordered:
        return bool(shipments)
    have: dict[str, int] = {}
    for shipment in shipments:
        for sku, qty in shipment.lines.items():
            have[sku] = have.get(sku, 0) + qty
    return all(have.get(sku, 0) >= qty for sku, qty in ordered.items())


def view(facts: ShipmentFacts, lines: Sequence[OrderLine]) -> FulfillmentView:
    """The fulfillment status the shipments give for an order with these lines."""
    if facts.is_empty():
        return FulfillmentView(None, None)
    ordered = _ordered(lines)
    shipments = list(facts.shipments.values())
    handed = [s for s in shipments if s.handed_over]
    delivered = [s for s in shipments if s.status == "delivered"]
    if delivered and _covers(delivered, ordered):
        return FulfillmentView("delivered", "shipments.delivered")
    if handed and _covers(handed, ordered):
        if any(s.status == "exception" for s in shipments):
            return FulfillmentView("exception", "shipments.exception")
        return FulfillmentView("shipped", "shipments.shipped")
    if handed:
        return FulfillmentView("partially_shipped", "shipments.partially_shipped")
    return FulfillmentView("unfulfilled", "shipments.unfulfilled")


def open_exceptions(facts: ShipmentFacts) -> list[ShipmentFact]:
    """Shipments whose current status is an exception (each exception is surfaced to review once)."""
    return [s for _, s in sorted(facts.shipments.items()) if s.status == "exception"]
