"""`shopstream worker catalog` on the real broker: ProductUpserted → quality on `catalog.quality` and a work item
for a failing blocking check; a 60 % price cut → a `pricing` item and no UpdatePrice; a WorkItemDecided on
`review.decisions` (as the API publishes it) → exactly one UpdatePrice; after a restart (state restored from
`catalog-products-changelog`) the same decision again sends nothing; a poison record is parked. A replayed
history (old Kafka timestamps) starts and ends a promotion on event time, never on the wall clock; the checks
across products see the other SKUs (a taken slug, a bundle with an unknown component)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from shopstream.config import Settings
from shopstream.schemas.models import (
    EventMeta,
    Money,
    ProductAttribute,
    ProductImage,
    ProductQuality,
    ProductUpserted,
    PromotionScheduled,
    ReviewItem,
    UpdatePrice,
    WorkItemDecided,
)
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.workers import start_worker, stop, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.timeout(240)]
T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
LONG = "Ledergürtel aus vollnarbigem Rindleder mit gebürsteter Stahlschnalle, 3,5 cm breit."


def meta(event_type: str, at: datetime, source: str = "pim") -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid4()), event_type=event_type, occurred_at=at, recorded_at=at, source=source)


def product(sku: str, at: datetime, price: str, **changes: Any) -> ProductUpserted:
    fields: dict[str, Any] = dict(
        sku=sku, title="Ledergürtel mit Stahlschnalle", description=LONG, family="accessories", slug="guertel",
        price=Money(amount=Decimal(price), currency="EUR"), channels=["marketplace"],
        attributes=[ProductAttribute(code="material", value="leather")],
        images=[ProductImage(url="https://x/b.jpg", width=1000, height=1000, format="jpeg", alt="Gürtel")])
    fields.update(changes)
    return ProductUpserted(meta=meta("ProductUpserted", at), updated_at=at, **fields)


class Topics:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        self.topology = load_topology()

    def send(self, logical: str, key: str, record: BaseModel | bytes, at: datetime | None = None) -> None:
        """Produce one record; `at`: its Kafka timestamp (an old one: a replayed history, not live traffic)."""
        topic = self.settings.topic(logical)
        producer = make_producer(self.settings)
        value = record if isinstance(record, bytes) else self.serde.encode(topic, record)
        stamp = {"timestamp": int(at.timestamp() * 1000)} if at is not None else {}
        producer.produce(topic, key=key.encode(), value=value, **stamp)
        assert producer.flush(30) == 0

    def read(self, logical: str, model: type[Any]) -> list[Any]:
        partitions = self.topology.topic(logical).partitions
        found = []
        for msg in read_all(self.settings.kafka_bootstrap_servers, self.settings.topic(logical), partitions,
                            idle_s=0.3):
            record = self.serde.decode(msg.value())
            if isinstance(record, model):
                found.append(record)
        return found


def belt(topics: Topics) -> list[UpdatePrice]:
    return [c for c in topics.read("commands.shop", UpdatePrice) if c.sku == "BELT-1"]


def test_quality_items_and_an_approved_price_survive_a_restart(settings: Settings, tmp_path: Path) -> None:
    report = apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    assert report.failed == {}
    topics, log = Topics(settings), tmp_path / "catalog.log"
    worker = start_worker("catalog", settings, log)
    try:
        topics.send("catalog.products", "BELT-1", product("BELT-1", T0, "40.00"))
        topics.send("catalog.products", "BAD-1", product("BAD-1", T0, "10.00", attributes=[], images=[]))
        [first] = wait_for(lambda: belt(topics), log=log, what="the in-policy price")
        assert first.sku == "BELT-1" and first.reason == "in_policy"
        items = wait_for(lambda: [i for i in topics.read("review.queue", ReviewItem)
                                  if i.kind == "catalog_incomplete"], log=log, what="the catalog item")
        assert [i.details["subject_id"] for i in items] == ["BAD-1"]
        docs = wait_for(lambda: {q.sku: q for q in topics.read("catalog.quality", ProductQuality)}.get("BAD-1"),
                        log=log, what="BAD-1's quality")
        assert not docs.complete and "images@marketplace/de_DE" in json.loads(docs.document)["blocking_failed"]
        topics.send("catalog.products", "BELT-1", product("BELT-1", T0 + timedelta(minutes=1), "16.00"))
        [item] = wait_for(lambda: [i for i in topics.read("review.queue", ReviewItem) if i.kind == "price_change"],
                          log=log, what="the pricing item")
        assert len(belt(topics)) == 1
        decision = WorkItemDecided(meta=meta("WorkItemDecided", T0, "user:alice"), item_id=item.meta.event_id,
                                   subject_type="product", subject_id="BELT-1", decision="approve",
                                   decided_by="alice", decided_at=T0, note="clearance")
        topics.send("review.decisions", "BELT-1", decision)
        approved = wait_for(lambda: [c for c in topics.read("commands.shop", UpdatePrice) if c.reason == "approved"],
                            log=log, what="the approved price")
        assert [(c.sku, c.price.amount, c.approved_by) for c in approved] == [("BELT-1", Decimal("16.0000"), "alice")]
    finally:
        stop(worker)
    worker = start_worker("catalog", settings, log)
    try:
        topics.send("review.decisions", "BELT-1", decision.model_copy(update={"meta": meta("WorkItemDecided", T0)}))
        topics.send("catalog.products", "BELT-1", b"not avro")
        topics.send("catalog.products", "MARK-1", product("MARK-1", T0, "5.00"))
        wait_for(lambda: any(c.sku == "MARK-1" for c in topics.read("commands.shop", UpdatePrice)), log=log,
                 what="the marker after the duplicate decision")
        assert len([c for c in topics.read("commands.shop", UpdatePrice) if c.reason == "approved"]) == 1
        dlq = topics.topology.topic(topics.topology.dlq_for("catalog.products"))
        parked = read_all(settings.kafka_bootstrap_servers, settings.topic(dlq.name), dlq.partitions, idle_s=0.3)
        assert [m.value() for m in parked] == [b"not avro"]
    finally:
        stop(worker)


def commands(topics: Topics, sku: str) -> list[str]:
    return [c.reason for c in topics.read("commands.shop", UpdatePrice) if c.sku == sku]


def test_a_replayed_promotion_runs_on_event_time_and_cross_product_checks_see_the_others(
        settings: Settings, tmp_path: Path) -> None:
    report = apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    assert report.failed == {}
    topics, log = Topics(settings), tmp_path / "catalog.log"
    worker = start_worker("catalog", settings, log)
    try:
        promo = PromotionScheduled(meta=meta("PromotionScheduled", T0), sku="PROMO-1", promotion_id="WINTER",
                                   price=Money(amount=Decimal("36.00"), currency="EUR"),
                                   starts_at=T0 + timedelta(hours=1), ends_at=T0 + timedelta(hours=2))
        topics.send("catalog.products", "PROMO-1", product("PROMO-1", T0, "40.00", slug="promo-1"), at=T0)
        topics.send("catalog.products", "PROMO-1", promo, at=T0)
        later = T0 + timedelta(minutes=90)
        topics.send("catalog.products", "PROMO-1", product("PROMO-1", later, "40.00", slug="promo-1"), at=later)
        wait_for(lambda: commands(topics, "PROMO-1") == ["in_policy", "promotion_start"] or None, log=log,
                 what="the promotion started by the record at start + 30 min")
        # The wall clock is a day past the end, but these records are old (a replay): only event time ends it.
        time.sleep(3.0)  # three ticks of the timer (SHOPSTREAM_CATALOG_TICK_S=1): the old code ended it at the first
        assert commands(topics, "PROMO-1") == ["in_policy", "promotion_start"]
        end = T0 + timedelta(hours=3)
        topics.send("catalog.products", "PROMO-1", product("PROMO-1", end, "40.00", slug="promo-1"), at=end)
        reasons = wait_for(lambda: (r := commands(topics, "PROMO-1"))[2:] and r, log=log, what="the end")
        assert reasons == ["in_policy", "promotion_start", "promotion_end"]
        [ended] = [c for c in topics.read("commands.shop", UpdatePrice) if c.reason == "promotion_end"]
        assert ended.price.amount == Decimal("40.0000") and ended.meta.occurred_at == T0 + timedelta(hours=2)
        late = PromotionScheduled(meta=meta("PromotionScheduled", end), sku="PROMO-1", promotion_id="LATE",
                                  price=Money(amount=Decimal("38.00"), currency="EUR"),
                                  starts_at=end - timedelta(minutes=30), ends_at=end + timedelta(hours=1))
        topics.send("catalog.products", "PROMO-1", late, at=end)  # its start is behind the clock: starts at once
        wait_for(lambda: commands(topics, "PROMO-1")[3:] == ["promotion_start"] or None, log=log,
                 what="the late promotion started right after it was scheduled")

        topics.send("catalog.products", "TAKEN-1", product("TAKEN-1", T0, "40.00", slug="promo-1"))
        bundle = product("SET-1", T0, "30.00", slug="set-1", attributes=[
            ProductAttribute(code="material", value="leather"),
            ProductAttribute(code="components", value="PROMO-1, NOPE-1")])
        topics.send("catalog.products", "SET-1", bundle)

        def document(sku: str) -> dict[str, Any] | None:
            found = {q.sku: q for q in topics.read("catalog.quality", ProductQuality)}.get(sku)
            return json.loads(found.document) if found is not None else None

        taken = wait_for(lambda: document("TAKEN-1"), log=log, what="TAKEN-1's quality")
        failed = taken["channels"]["marketplace"]["de_DE"]["failed"]
        assert {"check": "slug-unique", "blocking": False,
                "message": "slug 'promo-1' is also the slug of PROMO-1"} in failed
        near = [f for f in failed if f["check"] == "description-near-duplicate"]
        assert near and "similar to PROMO-1" in near[0]["message"]  # the same description text
        doc = wait_for(lambda: document("SET-1"), log=log, what="SET-1's quality")
        assert "bundle@marketplace/de_DE" in doc["blocking_failed"]
        [bundle_failure] = [f for f in doc["channels"]["marketplace"]["de_DE"]["failed"] if f["check"] == "bundle"]
        assert bundle_failure["message"] == "NOPE-1: unknown SKU"
    finally:
        stop(worker)
