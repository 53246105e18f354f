"""The shipped review rules as the README documents them, mirrored to predict each order's holds (pure).

Derived from the README ("Shipped rules") and `topology/rules/review.yaml`, not from the review worker:
`high-value` holds above 150 EUR, `address-mismatch` holds a billing/shipping difference,
`email-velocity` holds the 4th and later order of one email within 1 h (counted on event time, the
order itself included, ties by order id). `first-order` only flags (a work item, no hold); the lists
are empty as shipped and the simulated customers carry no IP, so `blocked-*` and `trusted-customer`
never fire.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from shopstream.sim.steps import SimOrder

HIGH_VALUE_EUR = Decimal("150")
VELOCITY_WINDOW = timedelta(hours=1)
VELOCITY_LIMIT = 3


def predict_holds(orders: Sequence[SimOrder]) -> dict[str, tuple[str, ...]]:
    """Hold reasons per order id (sorted) the shipped rules give; orders without holds are left out."""
    by_email: dict[str, list[SimOrder]] = defaultdict(list)
    for order in orders:
        by_email[order.customer.email].append(order)
    holds: dict[str, tuple[str, ...]] = {}
    for order in orders:
        reasons = []
        if order.total > HIGH_VALUE_EUR:
            reasons.append("review:high-value")
        if order.gift:
            reasons.append("review:address-mismatch")
        mine = (order.placed_at, int(order.order_id))
        count = sum(1 for other in by_email[order.customer.email]
                    if order.placed_at - VELOCITY_WINDOW < other.placed_at
                    and (other.placed_at, int(other.order_id)) <= mine)
        if count > VELOCITY_LIMIT:
            reasons.append("review:email-velocity")
        if reasons:
            holds[order.order_id] = tuple(sorted(reasons))
    return holds


def flagged(order: SimOrder) -> bool:
    """`first-order` flags a customer's first order (the shop's count ≤ 1)."""
    return order.orders_count <= 1
