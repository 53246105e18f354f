"""The product quality view end to end: ProductQuality on `catalog.quality` -> `worker views` (run_sink in a
thread) -> Redis (version guard) -> `GET /v1/products/{sku}/quality` with a viewer token; an older version
never overwrites a newer one; a record under another key is parked on `catalog.quality.dlq`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient

from shopstream.config import Settings
from shopstream.schemas.models import EventMeta, ProductQuality
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from shopstream.views.products import QualityRoute
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.workers import api_client, running_sink, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]
AT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


@pytest.fixture
def topics(settings: Settings) -> Settings:
    report = apply(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    assert report.failed == {}
    return settings


@pytest.fixture
def sink(topics: Settings) -> Iterator[None]:
    with running_sink(topics, batch_size=5):
        yield


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[TestClient]:
    async with api_client(settings) as client:
        yield client


def quality(sku: str, version: int, score: int) -> ProductQuality:
    meta = EventMeta(event_id=f"5f0c3d3e-1111-4a4a-9a9a-{version:012d}", event_type="ProductQuality",
                     occurred_at=AT, recorded_at=AT, source="shopstream.catalog")
    doc = {"sku": sku, "score": score, "complete": score == 100, "rules_version": "r1",
           "channels": {"ecommerce": {"de_DE": {"completeness": score, "missing": [], "score": score, "failed": []}}}}
    return ProductQuality(meta=meta, sku=sku, version=version, score=score, complete=score == 100,
                          document=json.dumps(doc))


async def test_quality_documents_are_served_newest_first_and_poison_parked(topics: Settings, sink: None,
                                                                          api: TestClient) -> None:
    settings, topic = topics, topics.topic("catalog.quality")
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    producer = make_producer(settings)
    for key, record in [(b"Q-1", quality("Q-1", 2, 80)), (b"Q-1", quality("Q-1", 1, 20)),
                        (b"WRONG", quality("Q-2", 1, 50)), (b"Q-3", quality("Q-3", 1, 100))]:
        producer.produce(topic, key=key, value=serde.encode(topic, record))
    assert producer.flush(30) == 0

    async def fetched() -> dict[str, object] | None:
        resp = await api.get("/v1/products/Q-3/quality")
        return await resp.json() if resp.status == 200 else None

    deadline = datetime.now(UTC).timestamp() + 60
    doc = None
    while doc is None and datetime.now(UTC).timestamp() < deadline:
        doc = await fetched()
    assert doc is not None and doc["complete"] is True
    resp = await api.get("/v1/products/Q-1/quality")
    body = await resp.json()
    assert resp.status == 200 and body["version"] == 2 and body["score"] == 80
    assert body["channels"]["ecommerce"]["de_DE"]["completeness"] == 80
    missing = await api.get("/v1/products/NOPE/quality")
    assert missing.status == 404 and (await missing.json())["error"] == "sku not found"
    unauthorised = await api.get("/v1/products/Q-1/quality", headers={"Authorization": "Bearer wrong"})
    assert unauthorised.status == 401
    dlq_topic = load_topology().topic(load_topology().dlq_for("catalog.quality"))
    dlq = settings.topic(dlq_topic.name)
    parked = wait_for(lambda: read_all(settings.kafka_bootstrap_servers, dlq, partitions=dlq_topic.partitions,
                                       idle_s=0.5),
                      what="the parked record")
    assert [m.key() for m in parked] == [b"WRONG"]
    assert QualityRoute.tombstones
