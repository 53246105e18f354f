"""Signed, real-shaped Shopify order webhooks for the simulator, the benchmarks and the tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shopstream.connectors.shopify import sign


def shopify_order(order_id: int, *, financial_status: str = "paid", created_at: datetime | None = None,
                  lines: list[tuple[str, int, str]] | None = None, currency: str = "EUR") -> dict[str, Any]:
    """A Shopify REST Order resource as `orders/create` delivers it (the fields shopstream reads, and more)."""
    created = created_at or datetime.now(UTC).replace(microsecond=0)
    items = lines or [("TSHIRT-BLK-M", 2, "19.90"), ("MUG-WHT", 1, "9.50")]
    line_items = [{
        "id": order_id * 100 + i, "variant_id": 40000000 + i, "product_id": 7000000 + i, "sku": sku,
        "title": sku.replace("-", " ").title(), "quantity": qty, "price": price, "total_discount": "0.00",
        "requires_shipping": True, "taxable": True, "fulfillment_status": None,
    } for i, (sku, qty, price) in enumerate(items, start=1)]
    subtotal = sum((Decimal(p) * q for _, q, p in items), start=Decimal("0"))
    total = subtotal + Decimal("4.90")
    stamp = created.isoformat()
    return {
        "id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}", "name": f"#{order_id % 100000}",
        # one customer per order: the review rules' velocity limit (orders per email per hour) stays out of the way
        "order_number": order_id % 100000, "email": f"jane.doe+{order_id}@example.com", "created_at": stamp,
        "updated_at": stamp, "processed_at": stamp, "currency": currency, "presentment_currency": currency,
        "total_price": str(total), "subtotal_price": str(subtotal), "total_tax": "0.00",
        "total_shipping_price_set": {"shop_money": {"amount": "4.90", "currency_code": currency}},
        "financial_status": financial_status, "fulfillment_status": None, "cancelled_at": None,
        "cancel_reason": None, "line_items": line_items, "test": False, "tags": "",
        "customer": {"id": 6000000 + order_id % 1000, "email": f"jane.doe+{order_id}@example.com", "orders_count": 3,
                     "first_name": "Jane", "last_name": "Doe"},
        "shipping_address": {"name": "Jane Doe", "address1": "Hauptstr. 1", "address2": None, "city": "Berlin",
                             "zip": "10115", "province_code": "BE", "country_code": "DE"},
        "billing_address": {"name": "Jane Doe", "address1": "Hauptstr. 1", "address2": None, "city": "Berlin",
                            "zip": "10115", "province_code": "BE", "country_code": "DE"},
    }


def cancelled(order: dict[str, Any], *, reason: str = "customer",
              after: timedelta = timedelta(minutes=5)) -> dict[str, Any]:
    """The same order as `orders/cancelled` delivers it."""
    when = datetime.fromisoformat(order["created_at"]) + after
    return {**order, "cancelled_at": when.isoformat(), "updated_at": when.isoformat(), "cancel_reason": reason,
            "financial_status": "voided" if order["financial_status"] != "paid" else "refunded"}


def post_shopify(base_url: str, secret: str, topic: str, payload: dict[str, Any] | bytes,
                 webhook_id: str | None = None, signature: str | None = None) -> tuple[int, dict[str, Any]]:
    """POST one signed Shopify webhook; returns (HTTP status, JSON body)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    req = urllib.request.Request(f"{base_url}/webhooks/shopify", data=body, method="POST", headers={
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature if signature is not None else sign(secret, body),
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Shop-Domain": "demo-shop.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
    })
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def get_json(url: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    """GET a JSON document, with `token` as the bearer token when given; returns (HTTP status, body)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")
