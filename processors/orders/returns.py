"""Return facts of one order, the return status they give, and the returns policy decisions. Pure.

The events of `returns` (ReturnRequested, ReturnReceived, ReturnInspected) are recorded per
`return_id` as a `ReturnFact` (idempotent, commutative merges):
  - the request: the earliest by (requested_at, event id) — one request per return id;
  - receipts and inspections: by event id (a return may arrive or be inspected in several parcels).

The order's return status (`view`), with "units back" = per SKU and return the larger of the units
received and the units inspected, summed over returns, against the ordered units per SKU:
  returns.returned            every ordered unit is back                         returned
  returns.partially_returned  an inspection exists                               partially_returned
  returns.received            a receipt exists                                   received
  returns.requested           a request exists                                   requested
and no return at all says nothing (None). Each condition only ever turns true, and the status is the
first that holds, so it only moves forward along the return table.

Policy decisions (`topology/returns_policy.yaml`, `policy.ReturnsPolicy`):
  - `decide_label(request, delivered_at, policy)`: a request naming a non-returnable SKU is refused
    (review, kind `return_not_returnable`); without a known delivery the decision waits (None); a
    request at most `window_days` after the delivery is approved (`CreateReturnLabel`), a later one
    refused (review, kind `return_outside_window`). The window is judged on source times
    (requested_at vs the order's delivery), never on arrival times, so the decision does not depend
    on the order the events arrive in.
  - `refund_for(inspection, order lines, policy)`: per inspected line, the unit price of the order
    line it names (`line_id`, else the first line with that SKU) x quantity x the policy's fraction
    for the line's condition grade, rounded half-up to the currency's minor units
    (`shopstream.money.minor_units`), exact Decimals throughout. A line whose SKU the order does not
    have, or without a grade, cannot be priced: the inspection goes to review instead.
  - `restock(inspection, policy)`: restockable units per SKU and location (the inspection's, else
    the policy's `restock_location`), for a StockAdjusted with reason `return_restock`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeAlias

from pydantic import BaseModel, ConfigDict

from shopstream.money import minor_units
from shopstream.schemas.models import (
    EventMeta,
    Money,
    OrderLine,
    RefundLine,
    ReturnInspected,
    ReturnLine,
    ReturnReceived,
    ReturnRequested,
    ReturnStatus,
)

from .policy import ReturnsPolicy

ReturnEvent: TypeAlias = ReturnRequested | ReturnReceived | ReturnInspected
RETURN_EVENTS = (ReturnRequested, ReturnReceived, ReturnInspected)


class _Fact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReturnRequest(_Fact):
    """The request of one return (its meta is the cause of the label decision's records)."""

    meta: EventMeta
    requested_at: datetime
    lines: list[ReturnLine]


class ReturnReceipt(_Fact):
    """One arrival of returned units."""

    event_id: str
    received_at: datetime
    location: str | None = None
    lines: list[ReturnLine]


class ReturnInspection(_Fact):
    """One inspection (its meta is the cause of the refund and restock records)."""

    meta: EventMeta
    inspected_at: datetime
    location: str | None = None
    lines: list[ReturnLine]


class ReturnFact(_Fact):
    """Everything known about one return."""

    return_id: str
    request: ReturnRequest | None = None
    receipts: dict[str, ReturnReceipt] = {}
    inspections: dict[str, ReturnInspection] = {}


class ReturnFacts(_Fact):
    """All returns of one order."""

    returns: dict[str, ReturnFact] = {}

    def is_empty(self) -> bool:
        """No return known."""
        return not self.returns


def event_time(event: ReturnEvent) -> datetime:
    """The source time of a return event."""
    if isinstance(event, ReturnRequested):
        return event.requested_at
    if isinstance(event, ReturnReceived):
        return event.received_at
    return event.inspected_at


def record_event(facts: ReturnFacts, event: ReturnEvent) -> tuple[ReturnFacts, str | None]:
    """The facts after recording one return event; (unchanged facts, note) when it adds nothing."""
    old = facts.returns.get(event.return_id) or ReturnFact(return_id=event.return_id)
    eid = event.meta.event_id
    if isinstance(event, ReturnRequested):
        if old.request is not None and (old.request.requested_at, old.request.meta.event_id) <= (
                event.requested_at, eid):
            return facts, f"return {event.return_id}: the request is already recorded"
        new = old.model_copy(update={"request": ReturnRequest(meta=event.meta, requested_at=event.requested_at,
                                                              lines=list(event.lines))})
    elif isinstance(event, ReturnReceived):
        if eid in old.receipts:
            return facts, f"return {event.return_id}: receipt {eid} is already recorded"
        receipt = ReturnReceipt(event_id=eid, received_at=event.received_at, location=event.location,
                                lines=list(event.lines))
        new = old.model_copy(update={"receipts": {**old.receipts, eid: receipt}})
    else:
        if eid in old.inspections:
            return facts, f"return {event.return_id}: inspection {eid} is already recorded"
        inspection = ReturnInspection(meta=event.meta, inspected_at=event.inspected_at, location=event.location,
                                      lines=list(event.lines))
        new = old.model_copy(update={"inspections": {**old.inspections, eid: inspection}})
    return facts.model_copy(update={"returns": {**facts.returns, event.return_id: new}}), None


def _units(lines: Sequence[ReturnLine]) -> dict[str, int]:
    units: dict[str, int] = {}
    for line in lines:
        units[line.sku] = units.get(line.sku, 0) + line.quantity
    return units


def units_back(facts: ReturnFacts) -> dict[str, int]:
    """Units back per SKU: per return the larger of received and inspected, summed over returns."""
    back: dict[str, int] = {}
    for ret in facts.returns.values():
        received: dict[str, int] = {}
        for receipt in ret.receipts.values():
            for sku, qty in _units(receipt.lines).items():
                received[sku] = received.get(sku, 0) + qty
        inspected: dict[str, int] = {}
        for inspection in ret.inspections.values():
            for sku, qty in _units(inspection.lines).items():
                inspected[sku] = inspected.get(sku, 0) + qty
        for sku in received.keys() | inspected.keys():
            back[sku] = back.get(sku, 0) + max(received.get(sku, 0), inspected.get(sku, 0))
    return back


def all_back(facts: ReturnFacts, lines: Sequence[OrderLine]) -> bool:
    """Every ordered unit came back."""
    ordered: dict[str, int] = {}
    for line in lines:
        if line.quantity > 0:
            ordered[line.sku] = ordered.get(line.sku, 0) + line.quantity
    back = units_back(facts)
    return bool(ordered) and all(back.get(sku, 0) >= qty for sku, qty in ordered.items())


@dataclass(frozen=True)
class ReturnView:
    """What the returns say (status None: no return known)."""

    status: ReturnStatus | None
    rule: str | None


def view(facts: ReturnFacts, lines: Sequence[OrderLine]) -> ReturnView:
    """The return status the returns give for an order with these lines."""
    if facts.is_empty():
        return ReturnView(None, None)
    returns = facts.returns.values()
    if all_back(facts, lines):
        return ReturnView("returned", "returns.returned")
    if any(r.inspections for r in returns):
        return ReturnView("partially_returned", "returns.partially_returned")
    if any(r.receipts for r in returns):
        return ReturnView("received", "returns.received")
    if any(r.request is not None for r in returns):
        return ReturnView("requested", "returns.requested")
    return ReturnView(None, None)  # pragma: no cover - a recorded return has a request, receipt or inspection


@dataclass(frozen=True)
class LabelDecision:
    """Approve a return (CreateReturnLabel) or refuse it (review item of `kind`)."""

    approved: bool
    rule: str
    reason: str
    kind: str | None = None


def decide_label(request: ReturnRequest, delivered_at: datetime | None, policy: ReturnsPolicy) -> LabelDecision | None:
    """The policy decision on a return request; None while the order's delivery is unknown."""
    blocked = sorted({line.sku for line in request.lines} & policy.non_returnable_skus)
    if blocked:
        return LabelDecision(False, "returns_policy.non_returnable_skus",
                             f"non-returnable SKU(s) {', '.join(blocked)}", kind="return_not_returnable")
    if delivered_at is None:
        return None
    age = request.requested_at - delivered_at
    days = age.total_seconds() / 86400
    if age <= policy.window:
        return LabelDecision(True, "returns_policy.window_days",
                             f"requested {days:.1f} days after delivery, within {policy.window_days} days")
    return LabelDecision(False, "returns_policy.window_days",
                         f"requested {days:.1f} days after delivery, outside the {policy.window_days}-day window",
                         kind="return_outside_window")


@dataclass(frozen=True)
class RefundDecision:
    """The refund an inspection earns under the policy."""

    amount: Money
    lines: list[RefundLine]
    rule: str


def _price(line: ReturnLine, order_lines: Sequence[OrderLine]) -> OrderLine | None:
    if line.line_id is not None:
        for order_line in order_lines:
            if order_line.line_id == line.line_id:
                return order_line
    return next((o for o in order_lines if o.sku == line.sku), None)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """An amount rounded half-up to the currency's minor units."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def refund_for(inspection: ReturnInspection, order_lines: Sequence[OrderLine], currency: str,
               policy: ReturnsPolicy) -> RefundDecision | str:
    """The refund of an inspection, or why it cannot be priced (a reason for review)."""
    lines: list[RefundLine] = []
    total = Decimal(0)
    grades: dict[str, Decimal] = {}
    for line in inspection.lines:
        order_line = _price(line, order_lines)
        if order_line is None:
            return f"SKU {line.sku} (line {line.line_id}) is not a line of the order: cannot price the refund"
        if line.condition_grade is None:
            return f"SKU {line.sku} has no condition grade: cannot apply the refund policy"
        if order_line.unit_price.currency != currency:
            return f"SKU {line.sku} is priced in {order_line.unit_price.currency}, the order in {currency}"
        fraction = policy.fraction(line.condition_grade)
        grades[line.condition_grade] = fraction
        amount = quantize(order_line.unit_price.amount * line.quantity * fraction, currency)
        total += amount
        lines.append(RefundLine(sku=line.sku, quantity=line.quantity, amount=Money(amount=amount, currency=currency)))
    rule = "returns_policy.refund_fraction:" + ",".join(f"{g}={f}" for g, f in sorted(grades.items()))
    return RefundDecision(Money(amount=total, currency=currency), lines, rule)


def restock(inspection: ReturnInspection, policy: ReturnsPolicy) -> list[tuple[str, str, int]]:
    """(sku, location, units) of the restockable units of an inspection, sorted by SKU."""
    location = inspection.location or policy.restock_location
    units: dict[str, int] = {}
    for line in inspection.lines:
        if line.restockable and line.quantity > 0:
            units[line.sku] = units.get(line.sku, 0) + line.quantity
    return [(sku, location, qty) for sku, qty in sorted(units.items())]
