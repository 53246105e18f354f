"""Carrier hub (AfterShip statuses): the parcel's in-transit and delivered scans."""

from __future__ import annotations

from datetime import timedelta

from shopstream.sim.steps import SimOrder, Step
from shopstream.sim.traffic import iso


def scan(order: SimOrder, at: float, status: str, delay_s: float) -> Step:
    """One tracking update (`InTransit`, `Delivered`) at source time placed_at + `delay_s`."""
    body = {"tracking_number": f"1ZSIM{order.order_id}", "carrier": "UPS", "order_id": order.order_id,
            "status": status, "status_system": "aftership",
            "occurred_at": iso(order.placed_at + timedelta(seconds=delay_s)), "location": "Hamburg, DE"}
    if status == "Delivered":
        body["signed_by"] = "SIM"
    return Step(at=at, source="carrier", kind=status, body=body, delivery_id=f"sim-{order.order_id}-{status}",
                subject=order.order_id)
