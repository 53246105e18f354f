"""Sample traffic for `shopstream demo` and the benchmarks: real-shaped, signed Shopify order webhooks."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shopstream.config import Settings
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


def feed_demo_orders(settings: Settings, token: str | None, count: int = 5) -> None:
    """Post a few orders (one of them cancelled later) and print what the read API answers (read with `token`)."""
    base = f"http://{settings.http_host}:{settings.connectors_port}"
    api = f"http://{settings.http_host}:{settings.api_port}"
    secret = settings.shopify_secret.get_secret_value()
    first = int(time.time())
    orders = [shopify_order(first + i, financial_status="paid" if i % 2 == 0 else "pending") for i in range(count)]
    for order in orders:
        status, _ = post_shopify(base, secret, "orders/create", order)
        print(f"demo: POST orders/create {order['id']} -> {status}", flush=True)
    status, _ = post_shopify(base, secret, "orders/cancelled", cancelled(orders[-1]))
    print(f"demo: POST orders/cancelled {orders[-1]['id']} -> {status}", flush=True)
    if token is None:
        # SHOPSTREAM_API_TOKENS_FILE names the operator's own tokens: the demo has none of them.
        print("demo: the API needs a token from SHOPSTREAM_API_TOKENS_FILE; not reading the orders back", flush=True)
        return
    deadline = time.monotonic() + 60
    for order in orders:
        while time.monotonic() < deadline:
            code, body = get_json(f"{api}/v1/orders/{order['id']}", token)
            if code == 200 and (order is not orders[-1] or body.get("status") == "cancelled"):
                print(f"demo: GET /v1/orders/{order['id']} -> {body['status']} "
                      f"(payment {body['payment_status']}, total {body['total']['amount']} "
                      f"{body['total']['currency']}, version {body['version']})", flush=True)
                break
            time.sleep(0.3)
