"""What the detectors and KPIs read from an event: one plain `Fact` per canonical event (pure).

Event time is the domain timestamp the event carries (placed_at, cancelled_at, failed_at, as_of, ...),
so windows are the same whenever and however often the history is replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from shopstream.schemas.models import (
    AtpLevel,
    GoodsReceived,
    OrderCancelled,
    OrderPlaced,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    ProductUpserted,
    RefundIssued,
    ReturnRequested,
    ShipmentDelivered,
    ShipmentDispatched,
    StockAdjusted,
    StockSnapshot,
    TicketCreated,
)

FactType = Literal["order", "cancel", "payment_ok", "payment_failed", "refund", "dispatched", "delivered",
                   "return", "stock_snapshot", "stock_adjusted", "goods_received", "atp", "product", "ticket"]


@dataclass(frozen=True)
class Fact:
    """One event reduced to what the anomaly and KPI cores need."""

    type: FactType
    event_id: str
    at_ms: int
    order_id: str | None = None
    sku: str | None = None
    #: (sku, quantity) of an order, shipment or return
    lines: tuple[tuple[str, int], ...] = ()
    gateway: str | None = None
    method: str | None = None
    #: refund amount, price (major units)
    amount: float | None = None
    #: on-hand, adjustment delta, received quantity or ATP available
    value: int | None = None
    category: str | None = None
    location: str | None = None
    cost: float | None = None
    #: the order-topic partition it came from (`orders:<p>`), set by the worker: the watermark's clock
    src: str | None = None
    #: an ATP level's version (rises with every level of its SKU; levels share a time): its dedupe
    version: int | None = None

    def to_list(self) -> list[Any]:
        """A compact JSON-able form (the `anomalies.facts` value)."""
        return [self.type, self.event_id, self.at_ms, self.order_id, self.sku, [list(x) for x in self.lines],
                self.gateway, self.method, self.amount, self.value, self.category, self.location, self.cost,
                self.src, self.version]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Fact:
        """Back from `to_list` (14 elements: written before `version` existed)."""
        (ftype, event_id, at_ms, order_id, sku, lines, gateway, method, amount, value, category, location,
         cost, src) = raw[:14]
        version = raw[14] if len(raw) > 14 else None
        return cls(ftype, event_id, at_ms, order_id, sku, tuple((s, q) for s, q in lines), gateway, method,
                   amount, value, category, location, cost, src, version)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _lines(lines: Any) -> tuple[tuple[str, int], ...]:
    return tuple((line.sku, int(line.quantity)) for line in lines)


#: The AtpLevel fields an ATP fact uses, as a reader projection (`AvroSerde.decode_datum`): a stock export
#: sends every SKU's level (1M on a first load), and building the pydantic model of each cost more than
#: the rest of the facts stage.
ATP_PROJECTION: dict[str, Any] = {
    "type": "record", "name": "AtpLevel", "namespace": "io.shopstream.events", "fields": [
        {"name": "meta", "type": {"type": "record", "name": "EventMeta", "fields": [
            {"name": "event_id", "type": "string"}]}},
        {"name": "sku", "type": "string"},
        {"name": "available", "type": "int"},
        {"name": "version", "type": "long"},
        {"name": "updated_at", "type": "long"},
    ]}


def atp_fact(datum: dict[str, Any]) -> Fact:
    """The fact of an AtpLevel read through `ATP_PROJECTION` (the same as `from_event` of its model)."""
    return Fact("atp", datum["meta"]["event_id"], datum["updated_at"], sku=datum["sku"], value=datum["available"],
                version=datum["version"])


def from_event(event: BaseModel) -> Fact | None:
    """The fact an event carries, or None for events no detector or KPI reads."""
    meta = getattr(event, "meta", None)
    if meta is None:
        return None
    eid = str(meta.event_id)
    e: Any = event
    match event:
        case OrderPlaced():
            return Fact("order", eid, _ms(e.placed_at), order_id=e.order_id, lines=_lines(e.lines),
                        gateway=e.payment_gateway)
        case OrderCancelled():
            return Fact("cancel", eid, _ms(e.cancelled_at), order_id=e.order_id)
        case PaymentAuthorized():
            return Fact("payment_ok", eid, _ms(e.authorized_at), order_id=e.order_id, gateway=e.provider,
                        method=e.method)
        case PaymentCaptured():
            return None  # an authorisation already counted the attempt as successful
        case PaymentFailed():
            return Fact("payment_failed", eid, _ms(e.failed_at), order_id=e.order_id, gateway=e.provider,
                        method=getattr(e, "method", None))
        case RefundIssued():
            return Fact("refund", eid, _ms(e.refunded_at), order_id=e.order_id, gateway=e.provider,
                        amount=float(e.amount.amount))
        case ShipmentDispatched():
            return Fact("dispatched", eid, _ms(e.dispatched_at), order_id=e.order_id, lines=_lines(e.lines))
        case ShipmentDelivered():
            return Fact("delivered", eid, _ms(e.delivered_at), order_id=e.order_id, lines=_lines(e.lines))
        case ReturnRequested():
            return Fact("return", eid, _ms(e.requested_at), order_id=e.order_id, lines=_lines(e.lines))
        case StockSnapshot():
            return Fact("stock_snapshot", eid, _ms(e.as_of), sku=e.sku, location=e.location, value=e.on_hand)
        case StockAdjusted():
            return Fact("stock_adjusted", eid, _ms(e.adjusted_at), sku=e.sku, location=e.location, value=e.delta)
        case GoodsReceived():
            return Fact("goods_received", eid, _ms(e.received_at), sku=e.sku, location=e.location,
                        value=e.quantity)
        case AtpLevel():
            return Fact("atp", eid, _ms(e.updated_at), sku=e.sku, value=e.available, version=e.version)
        case ProductUpserted():
            price = None if e.price is None else float(e.price.amount)
            cost = getattr(e, "cost", None)  # not in ProductUpserted yet: below_cost stays quiet until it is
            return Fact("product", eid, _ms(e.updated_at), sku=e.sku, category=e.category, amount=price,
                        cost=None if cost is None else float(getattr(cost, "amount", cost)))
        case TicketCreated():
            return Fact("ticket", eid, _ms(e.created_at), order_id=e.order_id)
    return None
