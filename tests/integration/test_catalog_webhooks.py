"""Catalog in through the connectors service in-process, on the real broker, registry and Redis: an Akeneo
event delivery and a Shopify products/update land on `catalog.products` keyed by SKU (murmur2 partition);
a bad Akeneo signature publishes nothing; a redelivery is a duplicate; a Shopify products/delete becomes one
ProductDeleted per SKU the product index learnt from the upserts, and an unknown id is parked."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import SecretStr

from shopstream.config import Settings
from shopstream.connectors.shopify import sign
from shopstream.connectors.signing import hmac_sha256_hex
from shopstream.kafka import partition_for
from shopstream.schemas.models import ProductDeleted, ProductUpserted
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from tests.unit.catalog_fixtures import AKENEO_EVENTS, SHOPIFY_PRODUCT
from tests.webhook_client import client_for, partitions_of, read_topic

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]
AKENEO = "akeneo-integration-secret-0123456789abcdef"
SHOPIFY = "shopify-integration-secret-0123456789abcdef"


@pytest.fixture
def catalog_settings(settings: Settings) -> Settings:
    report = apply(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix, timeout_s=30)
    assert report.failed == {}
    return settings.model_copy(update={"akeneo_secret": SecretStr(AKENEO), "shopify_secret": SecretStr(SHOPIFY)})


def akeneo_headers(body: bytes, secret: str = AKENEO) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"Content-Type": "application/json", "X-Akeneo-Request-Timestamp": stamp,
            "X-Akeneo-Request-Signature": hmac_sha256_hex(secret, stamp.encode() + b"." + body)}


async def test_akeneo_and_shopify_products_land_keyed_by_sku(catalog_settings: Settings) -> None:
    s = catalog_settings
    akeneo = json.dumps(AKENEO_EVENTS).encode()
    shopify = json.dumps(SHOPIFY_PRODUCT).encode()
    async with client_for(s) as client:
        bad = await client.post("/webhooks/pim", data=akeneo, headers=akeneo_headers(akeneo, "wrong"))
        assert bad.status == 401
        resp = await client.post("/webhooks/pim", data=akeneo, headers=akeneo_headers(akeneo))
        assert resp.status == 200, await resp.text()
        again = await client.post("/webhooks/pim", data=akeneo, headers=akeneo_headers(akeneo))
        assert (await again.json())["status"] == "duplicate"
        resp = await client.post("/webhooks/shopify", data=shopify, headers={
            "X-Shopify-Topic": "products/update", "X-Shopify-Hmac-Sha256": sign(SHOPIFY, shopify),
            "X-Shopify-Webhook-Id": "product-delivery-1", "Content-Type": "application/json"})
        assert resp.status == 200, await resp.text()
    serde = AvroSerde(make_registry_client(s.schema_registry_url))
    messages = read_topic(s, "catalog.products", want=3)
    seen = []
    for msg in messages:
        record = serde.decode(msg.value())
        assert isinstance(record, ProductUpserted) and msg.key() == record.sku.encode()
        assert msg.partition() == partition_for(msg.key(), partitions_of("catalog.products"))
        seen.append((record.meta.source, record.sku))
    assert sorted(seen) == [("pim", "SWE-MER-S-NAV"), ("shopify", "SWE-MER-M-NAV"), ("shopify", "SWE-MER-S-NAV")]


def shopify_headers(topic: str, body: bytes, delivery: str) -> dict[str, str]:
    return {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": sign(SHOPIFY, body),
            "X-Shopify-Webhook-Id": delivery, "Content-Type": "application/json"}


async def test_a_shopify_deletion_deletes_the_indexed_skus_and_an_unknown_id_is_parked(
        catalog_settings: Settings) -> None:
    s = catalog_settings
    created = json.dumps(SHOPIFY_PRODUCT).encode()
    gone = json.dumps({"id": SHOPIFY_PRODUCT["id"]}).encode()
    unknown = json.dumps({"id": 4711}).encode()
    async with client_for(s) as client:
        early = await client.post("/webhooks/shopify", data=gone, headers=shopify_headers("products/delete", gone,
                                                                                           "delete-early"))
        assert early.status == 202 and (await early.json())["status"] == "parked"  # no SKU known yet
        resp = await client.post("/webhooks/shopify", data=created, headers=shopify_headers("products/create",
                                                                                             created, "create-1"))
        assert resp.status == 200, await resp.text()
        resp = await client.post("/webhooks/shopify", data=unknown, headers=shopify_headers("products/delete",
                                                                                             unknown, "delete-4711"))
        answer = await resp.json()
        assert resp.status == 202 and answer["status"] == "parked" and "product 4711" in answer["reason"]
        resp = await client.post("/webhooks/shopify", data=gone, headers=shopify_headers("products/delete", gone,
                                                                                          "delete-1"))
        assert resp.status == 200 and len((await resp.json())["events"]) == 2, await resp.text()
        again = await client.post("/webhooks/shopify", data=gone, headers=shopify_headers("products/delete", gone,
                                                                                           "delete-2"))
        assert again.status == 202  # the product's SKUs were forgotten with its deletion
    serde = AvroSerde(make_registry_client(s.schema_registry_url))
    records = [serde.decode(m.value()) for m in read_topic(s, "catalog.products", want=4)]
    deleted = [r for r in records if isinstance(r, ProductDeleted)]
    assert sorted(r.sku for r in deleted) == ["SWE-MER-M-NAV", "SWE-MER-S-NAV"]
    assert {r.product_id for r in deleted} == {str(SHOPIFY_PRODUCT["id"])}
    parked = read_topic(s, "connectors.dlq", want=3)
    reasons = [dict(m.headers() or [])["shopstream.dlq.error.message"].decode() for m in parked]
    assert len(reasons) == 3 and sum("product 4711 deleted" in r for r in reasons) == 1
    assert all("no SKU of it is known" in r for r in reasons)
