"""The alerts and KPI views end to end: AnomalyAlerts on `alerts.anomalies` -> `worker views` -> Redis ->
GET /v1/alerts; a KPI report in the KPI view -> GET /v1/kpis.

Real broker, real Redis, the embedded registry. Proves: one document per alert id however many changes
(open, updated, a redelivered update, resolved); alerts without lifecycle fields (per order or SKU, from
other processors) are documents of their own; status, kind and subject filters; the viewer role; 400
and 404 answers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from confluent_kafka.admin import NewTopic

from shopstream.config import Settings
from shopstream.kafka import make_admin
from shopstream.schemas.models import AnomalyAlert, EventMeta
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import load_topology, names
from shopstream.views.alerts import KpiStore
from shopstream.views.work_items import index_member
from tests.kafka_write import make_producer
from tests.workers import api_client, running_sink

pytestmark = pytest.mark.broker
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
ALERT = str(uuid.uuid5(uuid.NAMESPACE_URL, "alerts-test-a"))


def alert(n: int, status: str | None, kind: str = "cancellation_rate", subject: str = "sku:A",
          observed: str = "0.75") -> AnomalyAlert:
    at = T0 + timedelta(hours=n)
    meta = EventMeta(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"alerts-test-{n}-{status}")),
                     event_type="AnomalyAlert", occurred_at=at, recorded_at=at, source="shopstream.anomalies")
    evidence = {"observed": observed}
    if status is not None:
        evidence.update(alert_id=ALERT, status=status, opened_at="2026-12-06T10:00:00Z")
    return AnomalyAlert(meta=meta, kind=kind, subject=subject, severity="warning", summary=f"{kind} {n}",
                        evidence=evidence, detected_at=at)


CHANGES = [alert(1, "open"), alert(2, "updated", observed="0.8"), alert(2, "updated", observed="0.8"),
           alert(4, "resolved"), alert(3, None, kind="oversold", subject="SKU-9")]


@pytest.fixture
def sink(settings: Settings) -> Iterator[None]:
    topology = load_topology()
    wanted = [topology.topic(names.ALERTS_ANOMALIES), topology.topic(topology.dlq_for(names.ALERTS_ANOMALIES))]
    new = [NewTopic(settings.topic(t.name), t.partitions, t.replication_factor, config=t.kafka_configs())
           for t in wanted]
    admin = make_admin(settings)  # kept referenced until the futures resolve
    for future in admin.create_topics(new).values():
        future.result(timeout=30)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    producer = make_producer(settings)
    topic = settings.topic(names.ALERTS_ANOMALIES)
    for change in CHANGES:
        producer.produce(topic, key=change.subject.encode(), value=serde.encode(topic, change))
    assert producer.flush(30) == 0
    with running_sink(settings, batch_size=2):
        yield


async def test_alerts_view_and_api(settings: Settings, sink: None) -> None:
    async with api_client(settings, role="viewer") as api:
        async def listing(**params: str) -> dict[str, object]:
            resp = await api.get("/v1/alerts", params=params)
            assert resp.status == 200, await resp.text()
            body: dict[str, object] = await resp.json()
            return body

        for _ in range(200):  # the sink runs in a thread: wait without blocking the loop
            body = await listing()
            if body["count"] == 2 and any(i["status"] == "resolved" for i in body["items"]):  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.3)
        items = {i["alert_id"]: i for i in (await listing())["items"]}  # type: ignore[attr-defined]
        lifecycle = items[ALERT]
        assert lifecycle["status"] == "resolved" and lifecycle["updates"] == 1
        assert lifecycle["evidence"]["observed"] == "0.8" and lifecycle["opened_at"] == "2026-12-06T10:00:00Z"
        assert lifecycle["resolved_at"].startswith("2026-12-06T13:00:00")
        assert [i["kind"] for i in (await listing(status="open"))["items"]] == ["oversold"]  # type: ignore[attr-defined]
        assert (await listing(kind="cancellation_rate", subject="sku:A"))["count"] == 1
        assert (await listing(subject="sku:B"))["count"] == 0
        assert (await api.get("/v1/alerts", params={"status": "closed"})).status == 400
        assert (await api.get("/v1/alerts", params={"limit": "0"})).status == 400

        assert (await api.get("/v1/kpis")).status == 404
        assert (await api.get("/v1/kpis", params={"window": "5m"})).status == 400
        client = redis.Redis.from_url(settings.redis_url)
        KpiStore(client, settings.redis_key_prefix).put({"24h": {
            "window": "24h", "cancellation_rate": 0.2, "orders": 50,
            "from": "2026-12-05T10:00:00Z", "to": "2026-12-06T10:00:00Z"}})
        for n, at in enumerate(["2026-12-05T09:59:00Z", "2026-12-05T12:00:00Z", "2026-12-06T09:00:00Z"]):
            doc = {"id": f"k{n}", "created_at": at, "status": "open"}
            client.zadd(f"{settings.redis_key_prefix}work-items:index", {index_member(doc): 0})
        resp = await api.get("/v1/kpis", params={"window": "24h"})
        body = await resp.json()
        assert resp.status == 200 and body["cancellation_rate"] == 0.2
        assert body["work_items"] == 2 and body["work_items_per_100_orders"] == 4.0
        assert "dlq_backlog" in body["now"] and "work_queue" in body["now"]
        client.close()
    async with api_client(settings, role=None) as anonymous:
        assert (await anonymous.get("/v1/alerts")).status == 401
        assert (await anonymous.get("/v1/kpis")).status == 401


async def test_work_queue_gauges_read_the_work_queue_view(settings: Settings) -> None:
    import orjson
    import redis.asyncio as aioredis

    from shopstream.api.queue_depth import scan, summarize
    from shopstream.views.work_items import index_member

    client = aioredis.Redis.from_url(settings.redis_url)
    prefix = settings.redis_key_prefix
    docs = [{"id": f"w{i}", "status": s, "queue": "review", "created_at": f"2026-12-06T0{i}:00:00Z"}
            for i, s in enumerate(["decided", "open", "claimed"])]
    for doc in docs:
        await client.set(f"{prefix}work-item:{doc['id']}", orjson.dumps(doc))
        await client.zadd(f"{prefix}work-items:index", {index_member(doc): 0})
    try:
        found = await scan(client, prefix)
        assert [d["id"] for d in found] == ["w0", "w1", "w2"]
        assert summarize(found, datetime(2026, 12, 6, 3, tzinfo=UTC)) == {"review": (2, 2 * 3600.0)}
    finally:
        await client.aclose()
