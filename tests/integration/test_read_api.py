"""The read API against real Redis and a real broker, through aiohttp's test server."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shopstream.config import Settings
from shopstream.views.orders import OrderView, order_document
from tests.integration.test_order_view import make_state
from tests.workers import api_client, api_clients, auth_header, write_test_tokens

ClientFactory = Callable[[Settings], AbstractAsyncContextManager[TestClient]]


@pytest.fixture
def settings(kafka_bootstrap: str, redis_url: str, redis_prefix: str) -> Settings:
    return Settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url,
                    redis_key_prefix=redis_prefix)


@pytest.fixture
def api() -> ClientFactory:
    return api_client


@pytest.fixture
def stored_order(settings: Settings) -> str:
    view = OrderView.from_url(settings.redis_url, settings.redis_key_prefix)
    view.put(order_document(make_state("1001", 4, status="shipped")))
    view.close()
    return "1001"


async def test_get_order_shape(api: ClientFactory, settings: Settings, stored_order: str) -> None:
    async with api(settings) as client:
        resp = await client.get(f"/v1/orders/{stored_order}")
        assert resp.status == 200
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body == {
        "order_id": "1001", "status": "shipped", "payment_status": "paid",
        "fulfillment_status": "unfulfilled", "return_status": "none", "hold_reasons": [],
        "lines": [{"line_id": "l1", "sku": "SKU-1", "quantity": 2,
                   "unit_price": {"amount": "6.25", "currency": "EUR"}, "title": "Mug"}],
        "total": {"amount": "12.50", "currency": "EUR"},
        "captured": {"amount": "12.50", "currency": "EUR"},
        "refunded": {"amount": "0.00", "currency": "EUR"},
        "placed_at": "2024-05-01T12:00:00.123Z", "cancelled_at": None,
        "version": 4, "updated_at": "2024-05-01T12:00:04.123Z",
    }


async def test_unknown_order_is_404(api: ClientFactory, settings: Settings) -> None:
    async with api(settings) as client:
        resp = await client.get("/v1/orders/nope-42")
        assert resp.status == 404
        assert await resp.json() == {"error": "order not found", "order_id": "nope-42"}


@pytest.mark.parametrize("bad", ["a%20b", "-leading-dash", "x" * 129, "%C3%A9t%C3%A9", "a%00b"])
async def test_malformed_order_id_is_400(api: ClientFactory, settings: Settings, bad: str) -> None:
    async with api(settings) as client:
        resp = await client.get(f"/v1/orders/{bad}")
        assert resp.status == 400
        body = await resp.json()
        assert body["error"] == "invalid order_id" and body["reason"]


async def test_orders_batch_answers_found_documents_in_query_order_and_the_unknown(
        api: ClientFactory, settings: Settings, stored_order: str) -> None:
    view = OrderView.from_url(settings.redis_url, settings.redis_key_prefix)
    view.put(order_document(make_state("1002", 2)))
    view.close()
    async with api(settings) as client:
        resp = await client.get("/v1/orders", params=[("order_id", "1002"), ("order_id", "nope-1"),
                                                      ("order_id", stored_order), ("order_id", "1002")])
        assert resp.status == 200
        body = await resp.json()
        single = await (await client.get(f"/v1/orders/{stored_order}")).json()
    assert [(d["order_id"], d["version"], d["status"]) for d in body["items"]] == [
        ("1002", 2, "ready_to_fulfill"), ("1001", 4, "shipped")]
    assert body["unknown"] == ["nope-1"]
    assert body["items"][1] == single


@pytest.mark.parametrize(("query", "reason"), [
    ("", "give 1 to 100 order_id parameters, e.g. /v1/orders?order_id=1001&order_id=1002"),
    ("?" + "&".join(f"order_id=o{i}" for i in range(101)), "at most 100 order_id parameters per request, got 101"),
    ("?order_id=1001&order_id=-x", "order_id parameter 2: order_id may contain only letters, digits and . _ : - "
                                   "(and must start with a letter or digit)"),
])
async def test_orders_batch_refusals_are_400(api: ClientFactory, settings: Settings, query: str, reason: str) -> None:
    async with api(settings) as client:
        resp = await client.get(f"/v1/orders{query}")
        assert resp.status == 400
        assert await resp.json() == {"error": "invalid request", "reason": reason}


async def test_health_and_readiness(settings: Settings) -> None:
    async with api_clients(settings) as (client, admin):
        resp = await client.get("/healthz")
        assert resp.status == 200 and await resp.json() == {"status": "ok"}
        # Readiness and metrics are on the admin port only.
        assert (await client.get("/readyz")).status == 404
        assert (await client.get("/metrics")).status == 404
        resp = await admin.get("/readyz")
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"status": "ready", "checks": {"redis": "ok", "kafka": "ok"}}


async def test_not_ready_without_redis(settings: Settings) -> None:
    # Port 1 on loopback refuses connections: Redis is "down", the broker is up.
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with api_clients(broken) as (client, admin):
        resp = await admin.get("/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body["failed"] == ["redis"]
        assert body["checks"]["kafka"] == "ok"
        assert body["checks"]["redis"].startswith("error")
        # Liveness does not depend on Redis, and an order lookup says the view is unavailable.
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/v1/orders/1001")).status == 503


async def test_metrics_count_requests(settings: Settings, stored_order: str) -> None:
    async with api_clients(settings) as (client, admin):
        await client.get(f"/v1/orders/{stored_order}")
        await client.get("/v1/orders/missing")
        await client.get("/no/such/route")
        resp = await admin.get("/metrics")
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    assert 'shopstream_api_requests_total{method="GET",route="/v1/orders/{order_id}",status="200"}' in text
    assert 'shopstream_api_requests_total{method="GET",route="/v1/orders/{order_id}",status="404"}' in text
    assert 'route="unmatched",status="404"' in text


async def test_every_read_endpoint_needs_a_viewer_token(settings: Settings, stored_order: str) -> None:
    reads = [f"/v1/orders/{stored_order}", f"/v1/orders/{stored_order}/history", f"/v1/orders?order_id={stored_order}",
             "/v1/atp/A-1", "/v1/atp?sku=A-1"]
    async with api_client(settings, role=None) as client:
        for path in reads:
            resp = await client.get(path)
            assert resp.status == 401, path
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await resp.json())["error"] == "unauthorized"
            wrong = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
            assert wrong.status == 401, path
            assert (await client.get(path, headers={"Authorization": "Basic dXNlcjpwdw=="})).status == 401
            for role in ("viewer", "reviewer", "operator", "admin"):
                assert (await client.get(path, headers=auth_header(role))).status in (200, 404), (path, role)
        # liveness stays open; readiness and metrics are not on the public port at all (admin port)
        assert (await client.get("/healthz")).status == 200
        for internal in ("/metrics", "/readyz"):
            assert (await client.get(internal, headers=auth_header("admin"))).status == 404, internal


async def test_without_a_tokens_file_every_read_is_refused(settings: Settings, stored_order: str,
                                                           tmp_path: Path) -> None:
    async with api_client(settings.model_copy(update={"api_tokens_file": ""}), role="admin") as client:
        assert (await client.get(f"/v1/orders/{stored_order}")).status == 200  # api_client wrote a tokens file
    from shopstream.api.app import make_app

    app = make_app(settings)  # no tokens file at all
    async with TestClient(TestServer(app), headers=auth_header("admin")) as client:
        resp = await client.get(f"/v1/orders/{stored_order}")
        assert resp.status == 401
        assert "SHOPSTREAM_API_TOKENS_FILE" in (await resp.json())["reason"]
    tokens = write_test_tokens(tmp_path)
    rotated = settings.model_copy(update={"api_tokens_file": str(tokens)})
    async with TestClient(TestServer(make_app(rotated)), headers=auth_header("viewer")) as client:
        assert (await client.get(f"/v1/orders/{stored_order}")).status == 200
        tokens.write_text("tokens: []\n")  # a rotated Secret applies without a restart
        os.utime(tokens, (time.time() + 5, time.time() + 5))
        assert (await client.get(f"/v1/orders/{stored_order}")).status == 401
