"""The work queue end to end: ReviewItems on `review.queue` -> `worker views` -> Redis -> /v1/work-items.

Real broker, real Redis, the embedded registry. Proves: every item shows up with its queue, kind,
subject, reasons and evidence; filters and cursor paging; claim and decision need the reviewer role
(401 / 403 otherwise); a decision is published on `review.decisions` keyed by the subject and shows on
the item at once; the same decision again changes nothing, a different one is 409; the sink applying
the published decision (and a redelivery of it) leaves the item as it is.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka.admin import NewTopic

from shopstream.config import Settings
from shopstream.kafka import make_admin
from shopstream.schemas.models import EventMeta, ReviewItem, WorkItemDecided
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import load_topology, names
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.workers import api_client, auth_header, running_sink, wait_for

pytestmark = pytest.mark.broker
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def item(n: int, kind: str, order_id: str = "", details: dict[str, str] | None = None,
         rule: str | None = None) -> ReviewItem:
    at = T0 + timedelta(minutes=n)
    meta = EventMeta(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"wq-test-{n}")), event_type="ReviewItem",
                     occurred_at=at, recorded_at=at, source="shopstream.orders", correlation_id=f"order:{order_id}")
    return ReviewItem(meta=meta, order_id=order_id, kind=kind, reason=f"{kind} of {order_id or 'a payment'}",
                      details=details or {}, rule=rule)


ITEMS = [
    item(1, "review_hold", "W-1", {"hold_reasons": "review:high-value", "rule_ids": "high-value,first-order",
                                   "rules_version": "r1", "high-value.total_eur": "389.44"}),
    item(2, "hold", "W-2", {"hold_reasons": "chargeback:dp_9"}, rule="holds"),
    item(3, "unmatched_payment", "", {"payment_id": "pi_77"}, rule="stripe.metadata.order_id"),
    item(4, "shipment_exception", "W-3", {"shipment_id": "s1"}, rule="shipments.exception"),
    item(5, "review_flag", "W-4", {"rule_ids": "first-order", "rules_version": "r1"}),
]


@pytest.fixture
def topics(settings: Settings) -> Settings:
    topology = load_topology()
    admin = make_admin(settings)
    wanted = [topology.topic(n) for n in (names.REVIEW_QUEUE, names.REVIEW_DECISIONS)]
    wanted += [topology.topic(topology.dlq_for(t.name)) for t in list(wanted)]
    new = [NewTopic(settings.topic(t.name), t.partitions, t.replication_factor, config=t.kafka_configs())
           for t in wanted]
    for future in admin.create_topics(new).values():
        future.result(timeout=30)
    return settings


@pytest.fixture
def sink(topics: Settings) -> Iterator[None]:
    serde = AvroSerde(make_registry_client(topics.schema_registry_url))
    producer = make_producer(topics)
    topic = topics.topic(names.REVIEW_QUEUE)
    for it in ITEMS:
        producer.produce(topic, key=it.order_id.encode(), value=serde.encode(topic, it))
    assert producer.flush(30) == 0
    with running_sink(topics, batch_size=10):
        yield


async def test_work_items_list_claim_and_decide(settings: Settings, sink: None) -> None:
    async with api_client(settings, role="viewer") as api:
        async def listing(**params: str) -> dict[str, object]:
            resp = await api.get("/v1/work-items", params=params)
            assert resp.status == 200, await resp.text()
            return await resp.json()

        async def count() -> int:
            return len((await listing())["items"])  # type: ignore[arg-type]

        for _ in range(200):
            if await count() == len(ITEMS):
                break
            await asyncio.sleep(0.2)
        body = await listing()
        docs = body["items"]
        assert isinstance(docs, list) and [d["subject_id"] for d in docs] == ["W-1", "W-2", "pi_77", "W-3", "W-4"]
        first = docs[0]
        assert {k: first[k] for k in ("queue", "kind", "subject_type", "status", "rule_ids", "hold_reasons")} == {
            "queue": "review", "kind": "review_hold", "subject_type": "order", "status": "open",
            "rule_ids": ["high-value", "first-order"], "hold_reasons": ["review:high-value"]}
        assert first["evidence"]["high-value.total_eur"] == "389.44"
        assert first["created_at"] == "2026-12-06T09:01:00.000Z"
        assert docs[2]["subject_type"] == "payment" and docs[2]["queue"] == "payments"
        assert [d["kind"] for d in (await listing(queue="review"))["items"]] == ["review_hold", "review_flag"]
        assert [d["subject_id"] for d in (await listing(subject="order:W-2"))["items"]] == ["W-2"]
        page1 = await listing(limit="2")
        page2 = await listing(limit="2", cursor=str(page1["next_cursor"]))
        page3 = await listing(limit="2", cursor=str(page2["next_cursor"]))
        ids = [d["id"] for p in (page1, page2, page3) for d in p["items"]]  # type: ignore[attr-defined]
        assert ids == [d["id"] for d in docs] and page3["next_cursor"] is None
        assert (await api.get("/v1/work-items", params={"status": "lost"})).status == 400
        assert (await api.get("/v1/work-items", params={"limit": "0"})).status == 400

        item_id = first["id"]
        got = await api.get(f"/v1/work-items/{item_id}")
        assert got.status == 200 and (await got.json())["id"] == item_id
        assert (await api.get("/v1/work-items/nope")).status == 404
        claim, decide = f"/v1/work-items/{item_id}/claim", f"/v1/work-items/{item_id}/decision"
        approve = {"decision": "approve", "note": "customer confirmed by phone"}
        assert (await api.post(claim)).status == 403  # a viewer
        assert (await api.post(decide, json=approve)).status == 403
        assert (await api.post(decide, json=approve, headers={"Authorization": ""})).status == 401
        reviewer = auth_header("reviewer")
        resp = await api.post(claim, headers=reviewer)
        assert resp.status == 200 and (await resp.json())["claimed_by"] == "test-reviewer"
        assert (await api.post(claim, headers=auth_header("admin"))).status == 409  # someone else holds it
        assert (await api.post(decide, json={"decision": "maybe"}, headers=reviewer)).status == 400
        resp = await api.post(decide, json=approve, headers=reviewer)
        assert resp.status == 202, await resp.text()
        decided = (await resp.json())["item"]
        assert (decided["status"], decided["decision"], decided["decided_by"], decided["note"]) == (
            "decided", "approve", "test-reviewer", "customer confirmed by phone")
        again = await api.post(decide, json=approve, headers=reviewer)
        assert again.status == 200 and (await again.json())["note"] == "already decided"
        assert (await api.post(decide, json={"decision": "reject"}, headers=reviewer)).status == 409
        assert (await api.post(claim, headers=reviewer)).status == 409  # decided

    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    published = wait_for(lambda: read_all(settings.kafka_bootstrap_servers, settings.topic(names.REVIEW_DECISIONS),
                                          4, idle_s=0.5), what="the decision on review.decisions")
    [msg] = published
    event = serde.decode(msg.value())
    assert isinstance(event, WorkItemDecided) and msg.key() == b"W-1"
    assert (event.item_id, event.decision, event.decided_by, event.hold_reasons, event.meta.source) == (
        item_id, "approve", "test-reviewer", ["review:high-value"], "user:test-reviewer")
    # The sink reads the same decision back: the item stays as the API wrote it.
    async with api_client(settings) as api:
        doc = await (await api.get(f"/v1/work-items/{item_id}")).json()
        assert doc["decision"] == "approve" and doc["decided_by"] == "test-reviewer"
