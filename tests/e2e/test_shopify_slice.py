"""First slice through public faces only: signed Shopify webhook → Kafka → orders worker → Redis → read API."""

from __future__ import annotations

import json
import random
import time

import pytest

from shopstream.dev.shopify_samples import cancelled, get_json, post_shopify, shopify_order
from tests.e2e.conftest import SECRET, RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def _order_id() -> int:
    return random.randint(10**12, 10**13)


def _poll_order(stack: RunningStack, order_id: int, until: str | None = None, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    body: dict = {}
    while time.monotonic() < deadline:
        code, body = get_json(f"{stack.api}/v1/orders/{order_id}", stack.token)
        if code == 200 and (until is None or body["status"] == until):
            return body
        time.sleep(0.3)
    raise AssertionError(f"order {order_id} not readable (last: {body}; the service logs follow in the report)")


def _records_with_key(stack: RunningStack, topic: str, key: int) -> list:
    return [m for m in stack.read_topic(topic) if m.key() == str(key).encode()]


def test_order_created_then_cancelled_is_readable(stack: RunningStack) -> None:
    order_id = _order_id()
    order = shopify_order(order_id, financial_status="paid",
                          lines=[("SKU-A", 2, "19.90"), ("SKU-B", 1, "9.99")])
    status, body = post_shopify(stack.connectors, SECRET, "orders/create", order)
    assert status == 200, body
    assert body["status"] == "accepted"

    view = _poll_order(stack, order_id)
    assert view["order_id"] == str(order_id)
    assert view["status"] == "ready_to_fulfill"
    assert view["payment_status"] == "paid"
    assert view["fulfillment_status"] == "unfulfilled"
    assert view["total"] == {"amount": "54.69", "currency": "EUR"}  # 2 x 19.90 + 9.99 + 4.90 shipping
    assert sorted((line["sku"], line["quantity"]) for line in view["lines"]) == [("SKU-A", 2), ("SKU-B", 1)]
    assert view["version"] == 1

    status, body = post_shopify(stack.connectors, SECRET, "orders/cancelled", cancelled(order))
    assert status == 200, body
    view = _poll_order(stack, order_id, until="cancelled")
    assert view["version"] == 2

    changes = _records_with_key(stack, "orders.status-changes", order_id)
    assert len(changes) == 2


def test_wrong_signature_is_401_and_publishes_nothing(stack: RunningStack) -> None:
    order_id = _order_id()
    order = shopify_order(order_id)
    status, body = post_shopify(stack.connectors, SECRET, "orders/create", order, signature="bm90LXRoZS1zaWc=")
    assert status == 401
    assert "signature" in body["error"]
    status, _ = post_shopify(stack.connectors, "another-secret", "orders/create", order)
    assert status == 401
    assert _records_with_key(stack, "shop.orders", order_id) == []
    assert get_json(f"{stack.api}/v1/orders/{order_id}", stack.token)[0] == 404


def test_same_webhook_id_twice_publishes_one_event(stack: RunningStack) -> None:
    order_id = _order_id()
    order = shopify_order(order_id)
    first = post_shopify(stack.connectors, SECRET, "orders/create", order, webhook_id=f"wh-{order_id}")
    second = post_shopify(stack.connectors, SECRET, "orders/create", order, webhook_id=f"wh-{order_id}")
    assert first[0] == 200 and first[1]["status"] == "accepted"
    assert second[0] == 200 and second[1]["status"] == "duplicate"
    assert len(_records_with_key(stack, "shop.orders", order_id)) == 1


def test_malformed_body_is_422_and_kept_on_the_connector_dlq(stack: RunningStack) -> None:
    raw = b'{"id": 123, "line_items": [ this is not json'
    status, body = post_shopify(stack.connectors, SECRET, "orders/create", raw, webhook_id="wh-malformed-1")
    assert status == 422
    assert "not JSON" in body["error"]
    not_an_order = json.dumps({"id": 5, "currency": "EUR"}).encode()
    status, body = post_shopify(stack.connectors, SECRET, "orders/create", not_an_order)
    assert status == 422
    assert "total_price" in body["error"] and "line_items" in body["error"]

    parked = {m.value(): dict(m.headers() or []) for m in stack.read_topic("connectors.dlq", partitions=1)}
    assert raw in parked and not_an_order in parked
    headers = parked[raw]
    assert headers["shopstream.dlq.original.topic"] == b"webhook:shopify"
    assert headers["shopstream.dlq.stage"] == b"connector"
    assert headers["shopstream.dlq.error.class"].endswith(b"PayloadError")
    assert b"not JSON" in headers["shopstream.dlq.error.message"]
    assert headers["http.x-shopify-topic"] == b"orders/create"
    # Kept for `dlq redrive`: the signature of this body, so it can be verified again.
    assert "http.x-shopify-hmac-sha256" in headers


def test_health_ready_and_metrics(stack: RunningStack) -> None:
    for base in (stack.connectors, stack.api):
        assert get_json(f"{base}/healthz")[0] == 200
    # /readyz and /metrics live on the admin ports only.
    for base in (stack.dev.connectors_admin_url, stack.dev.api_admin_url):
        code, body = get_json(f"{base}/readyz")
        assert code == 200, body
    import urllib.request

    with urllib.request.urlopen(f"{stack.dev.connectors_admin_url}/metrics") as resp:
        text = resp.read().decode()
    assert 'shopstream_webhook_requests_total{source="shopify",status="200"}' in text
    assert 'status="401"' in text or "shopstream_webhook_requests_total" in text
