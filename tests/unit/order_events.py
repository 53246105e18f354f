"""Builders of canonical events of one order for the order processor's unit tests (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shopstream.processors.orders.canonical import apply
from shopstream.processors.orders.context import Context
from shopstream.processors.orders.mapping import load_mapping
from shopstream.processors.orders.outcome import RecordOutcome
from shopstream.processors.orders.parking import AnyEvent
from shopstream.processors.orders.policy import OrdersPolicy, Parking, ReturnsPolicy
from shopstream.processors.orders.record import OrderRecord
from shopstream.schemas.models import (
    ChargebackOpened,
    EventMeta,
    Money,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderUpdated,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    RefundIssued,
    ReturnInspected,
    ReturnLine,
    ReturnReceived,
    ReturnRequested,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    ShipmentLine,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ORDER = "1001"
_NS = uuid.UUID("5d3c7c3e-2b9f-4a0e-9f57-0c8f4c1b7a21")
MAPPINGS = {source: load_mapping(source) for source in ("shopify", "woocommerce")}


def context(*, orders: OrdersPolicy | None = None, returns: ReturnsPolicy | None = None) -> Context:
    """A context with the shipped mappings and the given (default: built-in) policies."""
    return Context(mapping_for=MAPPINGS.__getitem__, policy=orders or OrdersPolicy(),
                   returns_policy=returns or ReturnsPolicy())


CTX = context()
LONG_WAIT = context(orders=OrdersPolicy(parking=Parking(max_events_per_order=500, expire_after=timedelta(days=3650))))


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def meta(event_type: str, key: str, minute: float, source: str = "shopify") -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid5(_NS, f"{event_type}:{key}")), event_type=event_type,
                     occurred_at=at(minute), recorded_at=at(minute) + timedelta(seconds=7), source=source,
                     source_event_id=f"src-{key}", correlation_id=f"order:{ORDER}")


def money(amount: int | str | Decimal, currency: str = "EUR") -> Money:
    return Money(amount=Decimal(amount), currency=currency)


def lines(spec: Iterable[tuple[str, int]] = (("l1", 2), ("l2", 1)), price: str = "5") -> list[OrderLine]:
    return [OrderLine(line_id=lid, sku=f"SKU-{lid}", quantity=q, unit_price=money(price)) for lid, q in spec]


LINES = lines()  # 2 x SKU-l1 + 1 x SKU-l2 at 5 EUR: total 15 EUR


def total(order_lines: Sequence[OrderLine]) -> Money:
    return money(sum((line.unit_price.amount * line.quantity for line in order_lines), Decimal(0)))


def placed(financial: str | None = "pending", fulfillment: str | None = None, minute: float = 0, key: str = "p",
           order_lines: list[OrderLine] | None = None, shipping: str | None = None, source: str = "shopify",
           currency: str = "EUR") -> OrderPlaced:
    order_lines = LINES if order_lines is None else order_lines
    amount = total(order_lines).amount + (Decimal(shipping) if shipping else 0)
    return OrderPlaced(meta=meta("OrderPlaced", key, minute, source), order_id=ORDER, order_number="#1001",
                       placed_at=at(minute), currency=currency, total=money(amount, currency), lines=order_lines,
                       shipping=money(shipping, currency) if shipping else None,
                       source_financial_status=financial, source_fulfillment_status=fulfillment)


def updated(minute: float, financial: str | None = None, fulfillment: str | None = None, key: str | None = None,
            order_lines: list[OrderLine] | None = None, shipping: str | None = None) -> OrderUpdated:
    order_lines = LINES if order_lines is None else order_lines
    amount = total(order_lines).amount + (Decimal(shipping) if shipping else 0)
    return OrderUpdated(meta=meta("OrderUpdated", key or f"u{minute}", minute), order_id=ORDER,
                        updated_at=at(minute), currency="EUR", total=money(amount), lines=order_lines,
                        shipping=money(shipping) if shipping else None,
                        source_financial_status=financial, source_fulfillment_status=fulfillment)


def cancelled(minute: float, financial: str | None = None, key: str | None = None,
              order_lines: list[OrderLine] | None = None) -> OrderCancelled:
    return OrderCancelled(meta=meta("OrderCancelled", key or f"c{minute}", minute), order_id=ORDER,
                          cancelled_at=at(minute), reason="customer", source_financial_status=financial,
                          lines=order_lines or [])


def authorized(minute: float, amount: str = "15", payment: str = "pi_1", key: str | None = None,
               risk: str | None = None, currency: str = "EUR") -> PaymentAuthorized:
    return PaymentAuthorized(meta=meta("PaymentAuthorized", key or f"auth-{payment}-{minute}", minute, "stripe"),
                             order_id=ORDER, payment_id=payment, provider="stripe", amount=money(amount, currency),
                             authorized_at=at(minute), risk_level=risk)


def captured(minute: float, amount: str = "15", payment: str = "pi_1", key: str | None = None, final: bool = True,
             currency: str = "EUR") -> PaymentCaptured:
    return PaymentCaptured(meta=meta("PaymentCaptured", key or f"cap-{payment}-{minute}-{amount}", minute, "stripe"),
                           order_id=ORDER, payment_id=payment, provider="stripe", amount=money(amount, currency),
                           captured_at=at(minute), final_capture=final)


def failed(minute: float, payment: str = "pi_1", key: str | None = None) -> PaymentFailed:
    return PaymentFailed(meta=meta("PaymentFailed", key or f"fail-{payment}-{minute}", minute, "stripe"),
                         order_id=ORDER, payment_id=payment, provider="stripe", amount=money("15"),
                         failed_at=at(minute), failure_code="card_declined")


def refunded(minute: float, amount: str, refund_id: str = "ch_1/cumulative", payment: str = "pi_1",
             key: str | None = None, currency: str = "EUR", return_id: str | None = None) -> RefundIssued:
    return RefundIssued(meta=meta("RefundIssued", key or f"ref-{refund_id}-{minute}-{amount}", minute, "stripe"),
                        order_id=ORDER, payment_id=payment, provider="stripe", refund_id=refund_id,
                        amount=money(amount, currency), refunded_at=at(minute), return_id=return_id)


def chargeback(minute: float, dispute: str = "dp_1", amount: str = "15", payment: str = "pi_1") -> ChargebackOpened:
    return ChargebackOpened(meta=meta("ChargebackOpened", f"cb-{dispute}", minute, "stripe"), order_id=ORDER,
                            payment_id=payment, provider="stripe", dispute_id=dispute, amount=money(amount),
                            opened_at=at(minute), reason_code="fraudulent")


def _ship_lines(spec: Iterable[tuple[str, int]]) -> list[ShipmentLine]:
    return [ShipmentLine(sku=sku, quantity=q) for sku, q in spec]


def ship_created(minute: float, shipment: str = "s1", spec: Iterable[tuple[str, int]] = ()) -> ShipmentCreated:
    return ShipmentCreated(meta=meta("ShipmentCreated", f"{shipment}-created-{minute}", minute, "shopify"),
                           order_id=ORDER, shipment_id=shipment, carrier="dhl", lines=_ship_lines(spec),
                           created_at=at(minute))


def dispatched(minute: float, shipment: str = "s1", spec: Iterable[tuple[str, int]] = ()) -> ShipmentDispatched:
    return ShipmentDispatched(meta=meta("ShipmentDispatched", f"{shipment}-dispatched-{minute}", minute, "carrier"),
                              order_id=ORDER, shipment_id=shipment, carrier="dhl", tracking_number=f"T-{shipment}",
                              lines=_ship_lines(spec), dispatched_at=at(minute))


def delivered(minute: float, shipment: str = "s1", spec: Iterable[tuple[str, int]] = ()) -> ShipmentDelivered:
    return ShipmentDelivered(meta=meta("ShipmentDelivered", f"{shipment}-delivered-{minute}", minute, "carrier"),
                             order_id=ORDER, shipment_id=shipment, carrier="dhl", tracking_number=f"T-{shipment}",
                             delivered_at=at(minute), lines=_ship_lines(spec))


def ship_exception(minute: float, shipment: str = "s1", code: str = "address_issue") -> ShipmentException:
    return ShipmentException(meta=meta("ShipmentException", f"{shipment}-exception-{minute}", minute, "carrier"),
                             order_id=ORDER, shipment_id=shipment, carrier="dhl", tracking_number=f"T-{shipment}",
                             exception_code=code, reported_at=at(minute))


def return_lines(spec: Iterable[tuple[str, int]], grade: str | None = None,
                 restockable: bool | None = None) -> list[ReturnLine]:
    return [ReturnLine(sku=f"SKU-{lid}", quantity=q, line_id=lid, condition_grade=grade, restockable=restockable)
            for lid, q in spec]


def return_requested(minute: float, spec: Iterable[tuple[str, int]] = (("l1", 1),), return_id: str = "r1",
                     skus: Sequence[str] | None = None) -> ReturnRequested:
    ret_lines = return_lines(spec) if skus is None else [ReturnLine(sku=s, quantity=1) for s in skus]
    return ReturnRequested(meta=meta("ReturnRequested", f"{return_id}-req", minute, "returns"), order_id=ORDER,
                           return_id=return_id, lines=ret_lines, requested_at=at(minute))


def return_received(minute: float, spec: Iterable[tuple[str, int]] = (("l1", 1),),
                    return_id: str = "r1") -> ReturnReceived:
    return ReturnReceived(meta=meta("ReturnReceived", f"{return_id}-rcv-{minute}", minute, "returns"),
                          order_id=ORDER, return_id=return_id, lines=return_lines(spec), received_at=at(minute),
                          location="WH-BER")


def return_inspected(minute: float, spec: Iterable[tuple[str, int]] = (("l1", 1),), return_id: str = "r1",
                     grade: str = "as_new", restockable: bool = True, location: str | None = "WH-BER",
                     key: str | None = None) -> ReturnInspected:
    return ReturnInspected(meta=meta("ReturnInspected", key or f"{return_id}-insp-{minute}", minute, "returns"),
                           order_id=ORDER, return_id=return_id, location=location,
                           lines=return_lines(spec, grade, restockable), inspected_at=at(minute))


def feed(*events: AnyEvent, record: OrderRecord | None = None, ctx: Context = CTX,
         allow_rejects: bool = False) -> tuple[OrderRecord | None, list[RecordOutcome]]:
    """Apply events in turn; returns the final record and every outcome."""
    outcomes = []
    for event in events:
        out = apply(record, event, ctx)
        assert allow_rejects or not out.rejected, out.rejected
        outcomes.append(out)
        record = out.record
    return record, outcomes


def records_of(outcomes: Iterable[RecordOutcome], kind: type[Any], topic: str | None = None) -> list[Any]:
    """Every produced record of a type (optionally on one topic), in emission order."""
    return [o.record for out in outcomes for o in out.outputs
            if isinstance(o.record, kind) and (topic is None or o.topic == topic)]
