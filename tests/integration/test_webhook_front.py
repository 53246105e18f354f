"""The connectors service in-process (aiohttp test server) on the real broker, registry and Redis.

A webhook is acknowledged only after Kafka confirmed the write; a broker outage answers 503 and
releases the dedupe claim so the source's retry goes through; Redis dedupe states on real Redis.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis
import redis.asyncio as aioredis
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Message
from pydantic import SecretStr

from shopstream.config import Settings
from shopstream.connectors.dedupe import PENDING_TTL_S, Claim, DeliveryDedupe
from shopstream.connectors.payload import MAX_BODY, PARKED_PREFIX
from shopstream.connectors.shopify import sign
from shopstream.connectors.webhook import TRUNCATED_HEADER
from shopstream.dev.shopify_samples import shopify_order
from shopstream.dlq import PREFIX, header_map
from shopstream.schemas.models import OrderPlaced
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from tests.webhook_client import client_for, read_topic

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

SECRET = "front-test-secret"
ORDERS = "shop.orders"


@pytest.fixture
def front_settings(settings: Settings) -> Settings:
    """The test's settings with a Shopify secret, and every topic created under its prefix."""
    s = settings.model_copy(update={"shopify_secret": SecretStr(SECRET)})
    report = apply(load_topology(), s.kafka_client_config(), prefix=s.topic_prefix, timeout_s=30)
    assert report.failed == {}
    assert s.topic(ORDERS) in report.created
    return s


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shopify_request(order_id: int, webhook_id: str, topic: str = "orders/create",
                    secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(shopify_order(order_id, created_at=datetime(2024, 5, 1, 9, 30, tzinfo=UTC))).encode()
    return body, {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Shop-Domain": "demo-shop.myshopify.com",
    }


def headers_of(msg: Message) -> list[tuple[str, bytes]]:
    raw = msg.headers() or []
    items = list(raw.items()) if isinstance(raw, dict) else raw
    return [(k, v) for k, v in items if isinstance(v, bytes)]


def dedupe_key(settings: Settings, webhook_id: str) -> str:
    return f"{settings.redis_key_prefix}webhook:shopify:{webhook_id}"


async def test_signed_order_is_published_once_keyed_by_order_id(front_settings: Settings, redis_url: str) -> None:
    s = front_settings
    webhook_id = str(uuid.uuid4())
    body, headers = shopify_request(880011, webhook_id)
    async with client_for(s) as client:
        # A bad signature first: 401 and nothing published, nothing claimed.
        bad = dict(headers, **{"X-Shopify-Hmac-Sha256": sign("not-the-secret", body)})
        resp = await client.post("/webhooks/shopify", data=body, headers=bad)
        assert resp.status == 401
        assert redis.Redis.from_url(redis_url).get(dedupe_key(s, webhook_id)) is None

        resp = await client.post("/webhooks/shopify", data=body, headers=headers)
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
        assert answer["status"] == "accepted" and len(answer["events"]) == 1

        # Shopify retries the same delivery (same webhook id): acknowledged, not published again.
        again = await client.post("/webhooks/shopify", data=body, headers=headers)
        assert again.status == 200
        assert (await again.json())["status"] == "duplicate"

    records = read_topic(s, ORDERS, partitions=4, want=1)
    assert len(records) == 1
    msg = records[0]
    assert msg.key() == b"880011"
    # Keyed like every other producer would place it (murmur2), on the 4-partition topic.
    assert msg.partition() == DefaultPartitioner()(b"880011", [0, 1, 2, 3], [0, 1, 2, 3])
    value = msg.value()
    # Confluent framing: magic 0 + 4-byte schema id, then the Avro body.
    assert isinstance(value, bytes) and value[0] == 0 and len(value) > 5
    decoded = AvroSerde(make_registry_client(s.schema_registry_url)).decode(value)
    assert type(decoded) is OrderPlaced
    assert decoded.order_id == "880011"
    assert decoded.meta.event_id == answer["events"][0]
    assert header_map(headers_of(msg))["shopstream.source"] == b"shopify"

    client_sync = redis.Redis.from_url(redis_url)
    assert client_sync.get(dedupe_key(s, webhook_id)) == b"done"
    assert client_sync.ttl(dedupe_key(s, webhook_id)) > PENDING_TTL_S  # the long dedupe TTL


async def test_broker_down_answers_503_and_releases_the_claim(front_settings: Settings, redis_url: str) -> None:
    s = front_settings
    webhook_id = str(uuid.uuid4())
    body, headers = shopify_request(880022, webhook_id)
    down = s.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{closed_port()}"})

    started = time.monotonic()
    async with client_for(down, **{"message.timeout.ms": 1500}) as client:
        resp = await client.post("/webhooks/shopify", data=body, headers=headers)
        assert resp.status == 503
        assert "retry" in (await resp.json())["error"]
    assert time.monotonic() - started < 20
    # The claim was released: the retry must not be treated as in flight or as a duplicate.
    assert redis.Redis.from_url(redis_url).get(dedupe_key(s, webhook_id)) is None

    # Shopify retries the same delivery once the broker is back.
    async with client_for(s) as client:
        resp = await client.post("/webhooks/shopify", data=body, headers=headers)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "accepted"

    records = read_topic(s, ORDERS, partitions=4, want=1)
    assert [m.key() for m in records] == [b"880022"]
    assert redis.Redis.from_url(redis_url).get(dedupe_key(s, webhook_id)) == b"done"


async def test_malformed_body_is_422_and_kept_on_the_connector_dlq(front_settings: Settings) -> None:
    s = front_settings
    webhook_id = str(uuid.uuid4())
    body = b'{"id": 1, "currency": "EUR"}'  # no total_price, no line_items
    headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": sign(SECRET, body),
               "X-Shopify-Webhook-Id": webhook_id, "Content-Type": "application/json"}
    async with client_for(s) as client:
        resp = await client.post("/webhooks/shopify", data=body, headers=headers)
        assert resp.status == 422
        assert "total_price" in (await resp.json())["error"]

    (parked,) = read_topic(s, "connectors.dlq", partitions=1, want=1)
    assert parked.value() == body and parked.key() == webhook_id.encode()
    h = header_map(headers_of(parked))
    assert h[PREFIX + "original.topic"] == b"webhook:shopify"
    assert h[PREFIX + "stage"] == b"connector"
    assert h["http.x-shopify-topic"] == b"orders/create"
    # The signature is kept (a redrive verifies it again); headers outside the allowlist are not.
    assert h["http.x-shopify-hmac-sha256"] == sign(SECRET, body).encode()
    assert read_topic(s, ORDERS, partitions=4, want=0, settle_s=0.5) == []
    # The claim was released: the same delivery id is not answered "duplicate" for days.
    assert redis.Redis.from_url(s.redis_url).get(dedupe_key(s, webhook_id)) is None


async def test_hostile_requests_get_a_4xx_never_a_500(front_settings: Settings) -> None:
    s = front_settings.model_copy(update={"stripe_secret": SecretStr(SECRET)})
    body, headers = shopify_request(880033, str(uuid.uuid4()))
    async with client_for(s) as client:
        # A signature header sent twice: a proxy and this service could read different ones.
        twice = [*headers.items(), ("X-Shopify-Hmac-Sha256", "AAAA")]
        resp = await client.post("/webhooks/shopify", data=body, headers=twice)
        assert resp.status == 400 and "more than once" in (await resp.json())["error"]
        # Unicode digits and a 5,000-digit timestamp in Stripe-Signature: 401, not int() blowing up.
        for t in ("\u00b2", "9" * 5000):
            resp = await client.post("/webhooks/stripe", data=b"{}",
                                     headers={"Stripe-Signature": f"t={t},v1=00".encode().decode("latin-1")})
            assert resp.status == 401
        # Larger than the broker takes: 413, the start of it parked (marked truncated).
        big = b'{"x": "' + b"a" * (MAX_BODY + 10) + b'"}'
        resp = await client.post("/webhooks/shopify", data=big, headers=headers)
        assert resp.status == 413 and "larger than" in (await resp.json())["error"]
    (parked,) = read_topic(s, "connectors.dlq", partitions=1, want=1)
    h = header_map(headers_of(parked))
    assert h[TRUNCATED_HEADER] == str(len(big)).encode() and len(parked.value()) == PARKED_PREFIX


@pytest.fixture
async def dedupe(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[DeliveryDedupe, aioredis.Redis]]:
    client = aioredis.Redis.from_url(redis_url)
    yield DeliveryDedupe(client, redis_prefix, ttl_s=3600), client
    await client.aclose()


async def test_dedupe_states_on_real_redis(dedupe: tuple[DeliveryDedupe, aioredis.Redis],
                                           redis_prefix: str) -> None:
    store, client = dedupe
    key = f"{redis_prefix}webhook:shopify:d-1"

    assert await store.claim("shopify", "d-1") is Claim.NEW
    assert await client.get(key) == b"pending"
    assert 0 < await client.ttl(key) <= PENDING_TTL_S
    assert await store.claim("shopify", "d-1") is Claim.IN_FLIGHT  # a concurrent delivery
    # Another source with the same delivery id is a different delivery.
    assert await store.claim("stripe", "d-1") is Claim.NEW

    await store.release("shopify", "d-1")  # publish failed
    assert await client.exists(key) == 0
    assert await store.claim("shopify", "d-1") is Claim.NEW  # the retry goes through

    await store.complete("shopify", "d-1")  # publish confirmed
    assert await client.get(key) == b"done"
    assert PENDING_TTL_S < await client.ttl(key) <= 3600
    assert await store.claim("shopify", "d-1") is Claim.DONE
    assert await store.claim("shopify", "d-1") is Claim.DONE  # claiming a done id does not reset it
    assert await client.get(key) == b"done"


async def test_concurrent_claims_only_one_wins(dedupe: tuple[DeliveryDedupe, aioredis.Redis]) -> None:
    import asyncio

    store, _ = dedupe
    results = await asyncio.gather(*(store.claim("shopify", "race") for _ in range(20)))
    assert results.count(Claim.NEW) == 1
    assert results.count(Claim.IN_FLIGHT) == 19


async def test_a_source_at_its_concurrency_bound_gets_503(front_settings: Settings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from shopstream.connectors import webhook

    monkeypatch.setattr(webhook, "MAX_CONCURRENT_PER_SOURCE", 0)  # every slot taken
    monkeypatch.setattr(webhook, "BUSY_WAIT_S", 0.1)
    body, headers = shopify_request(880044, str(uuid.uuid4()))
    async with client_for(front_settings) as client:
        resp = await client.post("/webhooks/shopify", data=body, headers=headers)
        assert resp.status == 503 and "too many shopify deliveries" in (await resp.json())["error"]


async def test_a_registry_refusing_our_schema_is_503_and_parks_nothing(front_settings: Settings) -> None:
    # Someone registered an incompatible OrderPlaced under our subject: registering ours is a 409. That is
    # our deployment's fault, not the sender's body: 503 (Shopify retries), nothing parked, claim released.
    s = front_settings
    from confluent_kafka.schema_registry import Schema

    subject = f"{s.topic(ORDERS)}-{OrderPlaced.AVRO_NAME}"
    other = {"type": "record", "name": "OrderPlaced", "namespace": "io.shopstream.events",
             "fields": [{"name": "x", "type": "int"}]}
    make_registry_client(s.schema_registry_url).register_schema(subject, Schema(json.dumps(other), "AVRO"))
    webhook_id = str(uuid.uuid4())
    body, headers = shopify_request(880055, webhook_id)
    async with client_for(s) as client:
        resp = await client.post("/webhooks/shopify", data=body, headers=headers)
        assert resp.status == 503, await resp.text()
    assert read_topic(s, "connectors.dlq", partitions=1, want=0, settle_s=0.5) == []
    assert redis.Redis.from_url(s.redis_url).get(dedupe_key(s, webhook_id)) is None
