"""Returns platform: a return requested and inspected (condition grade per unit)."""

from __future__ import annotations

from datetime import timedelta

from shopstream.sim.steps import SimOrder, Step
from shopstream.sim.traffic import iso


def requested(order: SimOrder, at: float) -> Step:
    """The customer asks to return the lines the plan picked."""
    lines = [{"sku": sku, "quantity": qty, "reason": "too_small"} for sku, qty, _, _ in order.return_lines]
    body = {"type": "requested", "return_id": f"RMA-{order.order_id}", "order_id": order.order_id,
            "occurred_at": iso(order.placed_at + timedelta(seconds=6)), "lines": lines}
    return Step(at=at, source="returns", kind="requested", body=body, delivery_id=f"sim-{order.order_id}-rma-req",
                subject=order.order_id)


def inspected(order: SimOrder, at: float) -> Step:
    """The warehouse grades the returned units; restockable ones go back on the shelf."""
    lines = [{"sku": sku, "quantity": qty, "reason": "too_small", "condition_grade": grade, "restockable": restock}
             for sku, qty, grade, restock in order.return_lines]
    body = {"type": "inspected", "return_id": f"RMA-{order.order_id}", "order_id": order.order_id,
            "occurred_at": iso(order.placed_at + timedelta(seconds=8)), "lines": lines,
            "location": "default", "inspector": "sim-warehouse"}
    return Step(at=at, source="returns", kind="inspected", body=body, delivery_id=f"sim-{order.order_id}-rma-insp",
                subject=order.order_id)
