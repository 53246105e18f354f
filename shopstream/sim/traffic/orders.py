"""Shop front (Shopify): `orders/create` and `orders/cancelled` of a simulated order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shopstream.dev.shopify_samples import cancelled, shopify_order
from shopstream.sim.steps import SimOrder, Step


def order_body(order: SimOrder) -> dict[str, Any]:
    """The Shopify Order resource of `order`: its customer, lines, and (gift segment) another shipping address."""
    body = shopify_order(int(order.order_id), financial_status="pending", created_at=order.placed_at,
                         lines=[(ln.sku, ln.quantity, str(ln.price)) for ln in order.lines])
    c = order.customer
    body["email"] = c.email
    body["customer"] = {"id": c.customer_id, "email": c.email, "orders_count": order.orders_count,
                        "first_name": "Sim", "last_name": f"Customer {c.customer_id}"}
    address = {"name": "Sim Customer", "address1": "Hauptstr. 1", "address2": None, "city": c.city,
               "zip": "10115", "province_code": "BE", "country_code": "DE"}
    body["billing_address"] = dict(address)
    body["shipping_address"] = {**address, "address1": "Gartenweg 9", "city": "Potsdam"} if order.gift else address
    return body


def create(order: SimOrder, at: float) -> Step:
    """The order placed."""
    return Step(at=at, source="shopify", kind="orders/create", body=order_body(order),
                delivery_id=f"sim-{order.order_id}-create", subject=order.order_id)


def cancel(order: SimOrder, at: float) -> Step:
    """The customer cancels before anything shipped."""
    body = cancelled(order_body(order), after=timedelta(seconds=2))
    return Step(at=at, source="shopify", kind="orders/cancelled", body=body,
                delivery_id=f"sim-{order.order_id}-cancel", subject=order.order_id)
