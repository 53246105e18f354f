"""What the plan is made of: one delivery to one face of the system, and the simulated order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from shopstream.sim.world import Customer


@dataclass(frozen=True)
class Line:
    """One order line."""

    sku: str
    quantity: int
    price: Decimal


@dataclass
class SimOrder:
    """One simulated order and what happens to it (`scenario`), decided by the plan."""

    order_id: str
    customer: Customer
    lines: tuple[Line, ...]
    placed_at: datetime
    scenario: str
    orders_count: int  # the shop's count of this customer's orders, this one included
    gift: bool = False
    holds: tuple[str, ...] = ()  # hold reasons the review rules must give it (rules.predict_holds)
    decision: str = ""  # approve | reject: what the simulated reviewer decides on its hold
    return_lines: tuple[tuple[str, int, str, bool], ...] = ()  # (sku, quantity, grade, restockable)
    faults: set[str] = field(default_factory=set)

    @property
    def total(self) -> Decimal:
        """Lines plus the flat 4.90 shipping that `shopify_order` adds."""
        return sum((ln.price * ln.quantity for ln in self.lines), start=Decimal("0")) + Decimal("4.90")


@dataclass(frozen=True)
class Step:
    """One delivery at `at` seconds after the start: a webhook body for `source`, and the answer it must get."""

    at: float
    source: str  # shopify | stripe | carrier | returns | erp
    kind: str  # the Shopify topic, the Stripe event type, or the body's type
    body: dict[str, Any] | bytes
    delivery_id: str
    subject: str  # order id or SKU
    expect: int = 200
    fault: str = ""  # dup | reorder | malformed | badsig
