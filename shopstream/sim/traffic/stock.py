"""ERP: the opening stock export (a CSV for `shopstream ingest erp-stock`) and goods receipts (ERP webhook)."""

from __future__ import annotations

from datetime import datetime

from shopstream.sim.steps import Step
from shopstream.sim.traffic import iso
from shopstream.sim.world import World


def export_csv(world: World) -> str:
    """The ERP's stock export of the catalog, one location (`default`), no safety stock."""
    rows = [f"{s.sku};{s.on_hand};{s.title}" for s in world.skus]
    return "sku;on_hand;description\n" + "\n".join(rows) + "\n"


def goods_received(sku: str, quantity: int, at: float, received_at: datetime, ref: str) -> Step:
    """A delivery from a supplier booked into `default`."""
    body = {"type": "goods_received", "id": f"GR-{ref}", "sku": sku, "location": "default", "quantity": quantity,
            "purchase_order": f"PO-{ref}", "supplier": "Sim Supplies", "received_at": iso(received_at)}
    return Step(at=at, source="erp", kind="goods_received", body=body, delivery_id=f"sim-gr-{ref}", subject=sku)
