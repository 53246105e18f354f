"""The read API's ATP endpoints against real Redis (and a real broker for readiness), through aiohttp's
test server: GET /v1/atp/{sku}, GET /v1/atp?sku=..., their 400/404/503 answers and metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import pytest
import redis
from aiohttp.test_utils import TestClient

from shopstream.config import Settings
from shopstream.schemas.models import AtpLocation
from shopstream.views.atp import AtpView, atp_key
from shopstream.views.batch import MAX_BATCH
from shopstream.views.guard import CHUNK
from tests.unit.test_atp_view import make_level
from tests.workers import api_client, api_clients

ClientFactory = Callable[[Settings], AbstractAsyncContextManager[TestClient]]
STORED = ["A-1", "B/2", "Ü 3"]


@pytest.fixture
def settings(kafka_bootstrap: str, redis_url: str, redis_prefix: str) -> Settings:
    return Settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url, redis_key_prefix=redis_prefix)


@pytest.fixture
def api() -> ClientFactory:
    return api_client


@pytest.fixture
def stored(settings: Settings) -> list[str]:
    view = AtpView.from_url(settings.redis_url, settings.redis_key_prefix)
    view.put_levels([make_level(sku, 4 + i, on_hand=10 * (i + 1)) for i, sku in enumerate(STORED)])
    view.close()
    return STORED


@pytest.fixture
async def client(api: ClientFactory, settings: Settings, stored: list[str]) -> AsyncIterator[TestClient]:
    async with api(settings) as c:
        yield c


async def test_get_atp_shape(client: TestClient) -> None:
    resp = await client.get("/v1/atp/A-1")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.json() == {
        "sku": "A-1", "on_hand": 10, "reserved": 3, "safety_stock": 2, "incoming": 40, "available": 5,
        "version": 4, "updated_at": "2024-05-01T12:00:00.123Z",
        "locations": [{"location": "main", "on_hand": 10, "reserved": 3, "safety_stock": 2, "incoming": 40,
                       "as_of": "2024-05-01T06:00:00.000Z"}],
    }


@pytest.mark.parametrize(("path", "sku"), [("/v1/atp/B%2F2", "B/2"), ("/v1/atp/B/2", "B/2"),
                                           ("/v1/atp/%C3%9C%203", "Ü 3")])
async def test_sku_with_slash_space_and_umlaut(client: TestClient, path: str, sku: str) -> None:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["sku"] == sku


async def test_unknown_sku_is_404(client: TestClient) -> None:
    resp = await client.get("/v1/atp/nope-42")
    assert resp.status == 404
    assert await resp.json() == {"error": "sku not found", "sku": "nope-42"}


@pytest.mark.parametrize(("path", "reason"), [
    ("/v1/atp/a%00b", "sku contains control characters"),
    ("/v1/atp/" + "x" * 256, "sku is longer than 255 characters"),
])
async def test_malformed_sku_is_400(client: TestClient, path: str, reason: str) -> None:
    resp = await client.get(path)
    assert resp.status == 400
    assert await resp.json() == {"error": "invalid sku", "reason": reason}


async def test_batch_returns_found_items_and_unknown_skus(client: TestClient) -> None:
    resp = await client.get("/v1/atp", params=[("sku", "Ü 3"), ("sku", "missing"), ("sku", "A-1"),
                                               ("sku", "Ü 3"), ("sku", "B/2")])
    assert resp.status == 200
    body = await resp.json()
    assert [(d["sku"], d["version"], d["on_hand"]) for d in body["items"]] == [
        ("Ü 3", 6, 30), ("A-1", 4, 10), ("B/2", 5, 20)]
    assert body["unknown"] == ["missing"]
    single = await (await client.get("/v1/atp/A-1")).json()
    assert body["items"][1] == single


async def test_batch_of_the_maximum_size_is_one_mget(client: TestClient, settings: Settings) -> None:
    skus = [f"max-{i}" for i in range(MAX_BATCH)]
    view = AtpView.from_url(settings.redis_url, settings.redis_key_prefix)
    view.put_levels([make_level(s, 1) for s in skus[::2]])
    view.close()
    probe = redis.Redis.from_url(settings.redis_url)
    before = probe.info("commandstats").get("cmdstat_mget", {}).get("calls", 0)
    resp = await client.get("/v1/atp", params=[("sku", s) for s in skus])
    assert resp.status == 200
    after = probe.info("commandstats").get("cmdstat_mget", {}).get("calls", 0)
    probe.close()
    body = await resp.json()
    assert [d["sku"] for d in body["items"]] == skus[::2]
    assert body["unknown"] == skus[1::2]
    assert after - before >= 1  # other tests may MGET at the same time; ours is one of them
    assert MAX_BATCH < CHUNK


@pytest.mark.parametrize(("query", "reason"), [
    ("", "give 1 to 100 sku parameters, e.g. /v1/atp?sku=A-1&sku=B-2"),
    ("?skus=A-1", "give 1 to 100 sku parameters, e.g. /v1/atp?sku=A-1&sku=B-2"),
    ("?" + "&".join(f"sku=s{i}" for i in range(MAX_BATCH + 1)), "at most 100 sku parameters per request, got 101"),
    ("?sku=A-1&sku=", "sku parameter 2: sku is empty"),
])
async def test_batch_refusals_are_400(client: TestClient, query: str, reason: str) -> None:
    resp = await client.get(f"/v1/atp{query}")
    assert resp.status == 400
    assert await resp.json() == {"error": "invalid request", "reason": reason}


async def test_never_counted_location(client: TestClient, settings: Settings) -> None:
    never = AtpLocation(location="popup", on_hand=0, reserved=2, safety_stock=0, incoming=0,
                        as_of=datetime(1970, 1, 1, tzinfo=UTC))
    view = AtpView.from_url(settings.redis_url, settings.redis_key_prefix)
    view.put_levels([make_level("P-1", 1, locations=[never])])
    view.close()
    body = await (await client.get("/v1/atp/P-1")).json()
    assert body["locations"] == [{"location": "popup", "on_hand": 0, "reserved": 2, "safety_stock": 0,
                                  "incoming": 0, "as_of": None}]


async def test_stored_document_is_passed_through(client: TestClient, settings: Settings) -> None:
    raw = redis.Redis.from_url(settings.redis_url).get(atp_key(settings.redis_key_prefix, "A-1"))
    resp = await client.get("/v1/atp/A-1")
    assert raw is not None and await resp.read() == raw
    assert json.loads(raw)["version"] == 4


async def test_atp_unavailable_without_redis(api: ClientFactory, settings: Settings) -> None:
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with api(broken) as c:
        resp = await c.get("/v1/atp/A-1")
        assert resp.status == 503 and await resp.json() == {"error": "atp view unavailable"}
        resp = await c.get("/v1/atp?sku=A-1")
        assert resp.status == 503 and await resp.json() == {"error": "atp view unavailable"}


async def test_metrics_count_atp_routes(settings: Settings, stored: list[str]) -> None:
    async with api_clients(settings) as (client, admin):
        await client.get("/v1/atp/A-1")
        await client.get("/v1/atp/missing")
        await client.get("/v1/atp?sku=A-1")
        await client.get("/v1/atp")
        text = await (await admin.get("/metrics")).text()
    assert 'shopstream_api_requests_total{method="GET",route="/v1/atp/{sku}",status="200"}' in text
    assert 'shopstream_api_requests_total{method="GET",route="/v1/atp/{sku}",status="404"}' in text
    assert 'shopstream_api_requests_total{method="GET",route="/v1/atp",status="200"}' in text
    assert 'shopstream_api_requests_total{method="GET",route="/v1/atp",status="400"}' in text
