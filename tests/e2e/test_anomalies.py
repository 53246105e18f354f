"""Anomalies and KPIs through the public faces: Shopify and carrier webhooks in, `/v1/alerts` and `/v1/kpis` out.

`shopstream dev` runs every worker, the anomalies worker included. A week of normal history is posted
with past source times (shop hours 09-17, 4 orders of one SKU an hour, 1 of them cancelled, the others
dispatched two hours after they were placed), then an hour in which 30 of 40 orders of that SKU are
cancelled, then normal hours again. Shown: exactly one `cancellation_rate` alert for the SKU, with the
baseline and the spike's orders as evidence; it is resolved once the rate is back to normal; the 7-day
KPIs show the cancellation rate and the fulfilment lead time the test posted.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shopstream.dev.shopify_samples import cancelled, post_shopify, shopify_order
from tests.e2e.conftest import SHOPIFY_SECRET, RunningStack
from tests.e2e.test_order_lifecycle import _accepted, _order_id, _wait, post_carrier

pytestmark = pytest.mark.broker
SKU = f"ANOM-{uuid.uuid4().hex[:6].upper()}"
LEAD = timedelta(hours=2)
DAY0 = (datetime.now(UTC) - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
SPIKE = DAY0 + timedelta(days=7, hours=10)
HOUR = timedelta(hours=1)


def _get(stack: RunningStack, path: str) -> dict[str, Any]:
    req = urllib.request.Request(f"{stack.api}{path}", headers={"Authorization": f"Bearer {stack.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


def _hour(stack: RunningStack, start: datetime, orders: int, cancels: int, posted: dict[str, list[Any]]) -> None:
    step = (HOUR - timedelta(minutes=10)) / orders
    for i in range(orders):
        order_id = _order_id()
        at = (start + i * step).replace(microsecond=0)
        order = shopify_order(order_id, created_at=at, lines=[(SKU, 1, "20.00")])
        _accepted(post_shopify(stack.connectors, SHOPIFY_SECRET, "orders/create", order))
        posted["orders"].append((order_id, at))
        if i < cancels:
            _accepted(post_shopify(stack.connectors, SHOPIFY_SECRET, "orders/cancelled",
                                   cancelled(order, after=timedelta(minutes=1))))
            posted["cancels"].append((order_id, at))
        else:
            _accepted(post_carrier(stack, order_id, "InTransit", at + LEAD))
            posted["dispatched"].append((order_id, at))


def test_a_cancellation_spike_is_one_alert_that_resolves_and_the_kpis_match(stack: RunningStack) -> None:
    posted: dict[str, list[Any]] = {"orders": [], "cancels": [], "dispatched": []}
    for day in range(7):
        for h in range(9, 17):
            _hour(stack, DAY0 + timedelta(days=day, hours=h), 4, 1, posted)
    spike_orders = len(posted["orders"])
    _hour(stack, SPIKE, 40, 30, posted)
    spike_ids = {str(order_id) for order_id, _ in posted["orders"][spike_orders:spike_orders + 30]}
    for h in range(1, 11):
        _hour(stack, SPIKE + h * HOUR, 4, 1, posted)

    def resolved() -> list[dict[str, Any]] | None:
        items = _get(stack, f"/v1/alerts?kind=cancellation_rate&subject=sku:{SKU}")["items"]
        return items if items and items[0]["status"] == "resolved" else None

    items = _wait("the cancellation_rate alert to open and resolve", resolved, stack, timeout_s=300)
    assert len(items) == 1
    alert = items[0]
    assert alert["evidence"]["baseline"] == "0.25" and alert["evidence"]["observed"] == "0.75"
    assert alert["evidence"]["window_start"] == SPIKE.isoformat().replace("+00:00", "Z")
    assert set(alert["evidence"]["orders"].split(",")) <= spike_ids
    assert alert["resolved_at"] is not None

    newest = max(at + LEAD for _, at in posted["dispatched"])
    end = newest.replace(minute=0, second=0) + HOUR
    start = end - timedelta(days=7)

    def kpis() -> dict[str, Any] | None:
        body = _get(stack, "/v1/kpis?window=7d")
        return body if body.get("fulfilment_lead_time_s", {}).get("count") == sum(
            start <= at + LEAD < end for _, at in posted["dispatched"]) else None

    report = _wait("the 7-day KPIs", kpis, stack, timeout_s=120)
    orders = sum(start <= at < end for _, at in posted["orders"])
    cancels = sum(start <= at + timedelta(minutes=1) < end for _, at in posted["cancels"])
    assert report["orders"] == orders and report["cancellations"] == cancels
    assert report["cancellation_rate"] == round(cancels / orders, 6)
    assert report["fulfilment_lead_time_s"]["p50"] == report["fulfilment_lead_time_s"]["p90"] == 7200
