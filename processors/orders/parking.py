"""Parking: events for an order that has not arrived yet wait in the order's table entry. Pure.

A payment, shipment or return event — or an OrderCancelled — whose order the processor has not seen
(no OrderPlaced / OrderUpdated applied yet) is kept as a `ParkedEvent` in `OrderRecord.parked`
instead of being rejected (see `canonical` for when parking happens and how parked events are
applied). The helpers here keep that list bounded and ordered:

  - `park`: adds an event (a second arrival of the same event id is a duplicate). At most
    `max_events_per_order` are kept: the list is sorted by source time (`source_time`; ties by event
    id) and the latest ones beyond the bound are evicted (the caller sends them to review, kind
    `parking_overflow`). Keeping the earliest makes the kept set independent of arrival order.
  - `expired`: splits off the events parked at least `expire_after` before `now` (the caller sends
    them to review, kind `parked_expired`, with the event itself so a person can republish it).
    `parked_at` is the processor's clock when the event was parked (by default the parked event's
    own `recorded_at`, so a replay parks and expires exactly as the first run did).
  - `in_source_order`: the order parked events are applied in once the order arrives: by source
    time, ties by event id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from pydantic import BaseModel

from shopstream.schemas.models import (
    OrderCancelled,
    OrderPlaced,
    OrderReviewed,
    OrderUpdated,
    UtcDatetime,
    WorkItemDecided,
)

from . import payments, returns, shipments
from .lifecycle import OrderEvent
from .payments import PaymentEvent
from .returns import ReturnEvent
from .shipments import ShipmentEvent

#: Decisions on `review.decisions`: the review rules' verdict and a person's decision on a work item.
DecisionEvent: TypeAlias = OrderReviewed | WorkItemDecided
DECISION_EVENTS: tuple[type[OrderReviewed], type[WorkItemDecided]] = (OrderReviewed, WorkItemDecided)
AnyEvent: TypeAlias = OrderEvent | PaymentEvent | ShipmentEvent | ReturnEvent | DecisionEvent

#: Every event class the orders processor applies, by record name.
EVENT_CLASSES: dict[str, type[BaseModel]] = {
    cls.__name__: cls
    for cls in (OrderPlaced, OrderUpdated, OrderCancelled, *payments.PAYMENT_EVENTS, *shipments.SHIPMENT_EVENTS,
                *returns.RETURN_EVENTS, *DECISION_EVENTS)
}


def order_id_of(event: AnyEvent) -> str:
    """The order an event is about (a decision names it as its subject)."""
    return event.subject_id if isinstance(event, WorkItemDecided) else event.order_id


def source_time(event: AnyEvent) -> datetime:
    """When the event happened at its source (the field each record carries for it)."""
    if isinstance(event, OrderPlaced):
        return event.placed_at
    if isinstance(event, OrderUpdated):
        return event.updated_at
    if isinstance(event, OrderCancelled):
        return event.cancelled_at
    if isinstance(event, WorkItemDecided):
        return event.decided_at
    if isinstance(event, OrderReviewed):
        return event.meta.occurred_at
    if isinstance(event, payments.PAYMENT_EVENTS):
        return payments.event_time(event)
    if isinstance(event, shipments.SHIPMENT_EVENTS):
        return shipments.event_time(event)
    return returns.event_time(event)


def order_key(event: AnyEvent) -> tuple[datetime, str]:
    """Sort key: source time, then event id."""
    return source_time(event), event.meta.event_id


@dataclass(frozen=True)
class ParkedEvent:
    """An event waiting for its order, and when it was parked."""

    event: AnyEvent
    parked_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (for the state-store changelog)."""
        return {"type": type(self.event).__name__, "event": self.event.model_dump(mode="json"),
                "parked_at": self.parked_at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParkedEvent:
        """Inverse of `to_dict`."""
        kind = EVENT_CLASSES.get(str(data.get("type")))
        if kind is None:
            raise ValueError(f"parked event of unknown type {data.get('type')!r}")
        event: Any = kind.model_validate(data["event"])
        parked_at = _Stamp.model_validate({"at": data["parked_at"]}).at
        return cls(event=event, parked_at=parked_at)


class _Stamp(BaseModel):
    at: UtcDatetime


def park(parked: Sequence[ParkedEvent], event: AnyEvent, now: datetime,
         max_events: int) -> tuple[tuple[ParkedEvent, ...], list[ParkedEvent], bool]:
    """(kept, evicted, duplicate) after parking `event` (see the module docstring)."""
    if any(p.event.meta.event_id == event.meta.event_id for p in parked):
        return tuple(parked), [], True
    ordered = sorted([*parked, ParkedEvent(event, now)], key=lambda p: order_key(p.event))
    return tuple(ordered[:max_events]), ordered[max_events:], False


def expired(parked: Sequence[ParkedEvent], now: datetime,
            expire_after: timedelta) -> tuple[tuple[ParkedEvent, ...], list[ParkedEvent]]:
    """(still waiting, expired) at `now`."""
    keep = tuple(p for p in parked if now - p.parked_at < expire_after)
    gone = [p for p in parked if now - p.parked_at >= expire_after]
    return keep, gone


def in_source_order(parked: Sequence[ParkedEvent]) -> list[ParkedEvent]:
    """Parked events in the order they are applied once the order arrives."""
    return sorted(parked, key=lambda p: order_key(p.event))
