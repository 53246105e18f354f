"""`shopstream worker shop-writer` on the real broker: price and cancel commands reach the shop double, the
SKU's ids are learned from the shop's own ProductUpserted, and what cannot be written is parked with a reason.

No static `items` in the configuration: every id the writer uses here it learned from `catalog.products`.
Shown:
- a Shopify ProductUpserted teaches the SKU's inventory item, product and variant: its stock and its
  price are then written to them;
- CancelOrder cancels the order (staff note, no refund); the shop's 5xx on it is retried;
- UpdateShippingAddress (free text) and an UpdatePrice for a SKU the shop never announced are parked on
  `commands.shop.dlq` with their reasons, and nothing of them reaches the shop;
- a ProductUpserted from another source (the PIM) teaches nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import KafkaException

from shopstream.config import Settings
from shopstream.dlq import header_map
from shopstream.schemas.models import (
    CancelOrder,
    EventMeta,
    Money,
    ProductUpserted,
    SyncShopStock,
    UpdatePrice,
    UpdateShippingAddress,
)
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.fake_shops import TOKEN, FakeShop, running
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.workers import start_worker, stop, wait_for

pytestmark = pytest.mark.broker

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LOCATION = "gid://shopify/Location/9"
ITEM, PRODUCT, VARIANT = ("gid://shopify/InventoryItem/4711", "gid://shopify/Product/88",
                          "gid://shopify/ProductVariant/881")


def meta(kind: str, tag: str, source: str = "shopstream.test") -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{tag}")), event_type=kind, occurred_at=AT,
                     recorded_at=AT, source=source)


def product(sku: str, source: str, **ids: Any) -> ProductUpserted:
    return ProductUpserted(meta=meta("ProductUpserted", f"{sku}:{source}", source), sku=sku, title=sku,
                           returnable=True, active=True, updated_at=AT, **ids)


def send(settings: Settings, records: list[tuple[str, str, Any]]) -> None:
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    producer = make_producer(settings)
    for topic, key, record in records:
        physical = settings.topic(topic)
        producer.produce(physical, key=key.encode(), value=serde.encode(physical, record))
    assert producer.flush(60) == 0


def learned(settings: Settings) -> bool:
    """Whether the writer stored SKU-P's entry (the changelog topic appears with the writer's first write)."""
    try:
        found = read_all(settings.kafka_bootstrap_servers, settings.topic("shop-writer-skus-changelog"), idle_s=0.3)
    except KafkaException:
        return False
    return any(m.key() == b"SKU-P" for m in found)


def test_prices_and_cancellations_reach_the_shop_ids_are_learned_the_rest_is_parked(settings: Settings,
                                                                                   tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    shop = FakeShop(known_items={ITEM}, known_variants={VARIANT: PRODUCT}, known_orders={"gid://shopify/Order/5001"})
    with running(shop) as url:
        cfg = tmp_path / "shop_writer.yaml"
        cfg.write_text(yaml.safe_dump({"platform": "shopify", "flush_interval_s": 0.2,
                                       "shopify": {"shop_url": url, "location_id": LOCATION},
                                       "retries": {"max_attempts": 4, "backoff_base_s": 0.2}}))
        send(settings, [
            ("catalog.products", "SKU-P", product("SKU-P", "shopify", product_id="88", variant_id="881",
                                                  inventory_item_id="4711")),
            ("catalog.products", "SKU-PIM", product("SKU-PIM", "pim", product_id="88", variant_id="882")),
        ])
        log = tmp_path / "writer.log"
        proc = start_worker("shop-writer", settings, log, SHOPSTREAM_SHOP_WRITER_CONFIG=str(cfg),
                            SHOPSTREAM_SHOPIFY_ACCESS_TOKEN=TOKEN)
        try:
            # the two topics are read independently: the commands go out once SKU-P's ids are in its entry
            wait_for(lambda: learned(settings), 60, log, "SKU-P's ids learned (its changelog record)")
            shop.fail_next(1, 503)  # the first request (the cancel or the price) is answered 503: retried
            send(settings, [
                ("commands.shop", "5001", CancelOrder(meta=meta("CancelOrder", "5001"), order_id="5001",
                                                      reason="fraud", requested_by="user:anna")),
                ("commands.shop", "SKU-P", UpdatePrice(meta=meta("UpdatePrice", "P"), sku="SKU-P",
                                                       price=Money(amount=Decimal("24.5"), currency="EUR"),
                                                       reason="approved")),
                ("commands.shop", "SKU-P", SyncShopStock(meta=meta("SyncShopStock", "P"), sku="SKU-P",
                                                         available=12, atp_version=3)),
                ("commands.shop", "5002", UpdateShippingAddress(meta=meta("UpdateShippingAddress", "5002"),
                                                                order_id="5002", address_text="Hauptstr. 1, Berlin")),
                ("commands.shop", "SKU-PIM", UpdatePrice(meta=meta("UpdatePrice", "PIM"), sku="SKU-PIM",
                                                         price=Money(amount=Decimal("9"), currency="EUR"),
                                                         reason="approved")),
            ])
            wait_for(lambda: shop.cancelled and shop.prices and shop.levels, 90, log, "cancel, price and stock written")
            parked = wait_for(lambda: (lambda m: m if len(m) >= 2 else None)(read_all(
                settings.kafka_bootstrap_servers, settings.topic("commands.shop.dlq"), partitions=1, idle_s=0.5)),
                60, log,
                "two records parked")
        finally:
            stop(proc)
    assert not shop.failures and sum(r["path"].endswith("graphql.json") for r in shop.requests) == 4  # 503 + resend
    assert shop.cancelled == {"gid://shopify/Order/5001": "shopstream: fraud by user:anna"}
    assert shop.prices == {VARIANT: "24.50"}
    assert shop.levels == {(ITEM, LOCATION): 12}
    reasons = {m.key(): header_map(m.headers() or []) for m in parked}
    assert set(reasons) == {b"5002", b"SKU-PIM"}
    assert b"AddressNotStructured" in reasons[b"5002"]["shopstream.dlq.error.class"]
    assert b"unknown item" in reasons[b"SKU-PIM"]["shopstream.dlq.error.message"]
    assert b"Hauptstr" not in reasons[b"5002"]["shopstream.dlq.error.message"]  # no PII in the error text
    assert not any("882" in str(r["body"]) for r in shop.requests), "the PIM's ids were not learned"
