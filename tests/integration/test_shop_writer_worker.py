"""`shopstream worker shop-writer` on the real broker against the local double of Shopify's Admin API.

The worker runs as the real subprocess (`shopstream worker shop-writer`) with a configuration whose
shop URL is the double (`tests/fake_shops.py`, in this process); commands go onto `commands.shop`
through a murmur2 producer as `worker shop-sync` writes them. Shown:
- a burst of 5,000 SKU changes reaches the shop within its cost budget (the budget never negative in
  the shop's log), in at most ceil(5000/250) + retries mutations, every SKU at its latest figure;
- a stale command (older ATP version) never overwrites a newer figure (`superseded` result);
- the shop's 5xx is retried, an unknown item (4xx userError) is `failed` with the shop's error;
- SIGKILL of the writer mid-burst: after a restart the shop has every SKU's latest figure.
"""

from __future__ import annotations

import math
import os
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from shopstream.config import Settings
from shopstream.dlq import header_map
from shopstream.schemas.models import EventMeta, ShopCommandResult, SyncShopStock
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.fake_shops import TOKEN, FakeShop, running
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.workers import start_worker, stop, wait_for

pytestmark = pytest.mark.broker

LOCATION = "gid://shopify/Location/9"
AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def item(i: int) -> str:
    return f"gid://shopify/InventoryItem/{5000 + i}"


def command(sku: str, available: int, version: int, tag: str = "") -> SyncShopStock:
    meta = EventMeta(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"sync:{sku}:{version}:{tag}")),
                     event_type="SyncShopStock",
                     occurred_at=AT, recorded_at=AT, source="shopstream.shop-sync")
    return SyncShopStock(meta=meta, sku=sku, available=available, atp_version=version)


def send(settings: Settings, commands: list[SyncShopStock]) -> None:
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    producer = make_producer(settings)
    topic = settings.topic("commands.shop")
    for c in commands:
        producer.produce(topic, key=c.sku.encode(), value=serde.encode(topic, c))
        producer.poll(0)
    assert producer.flush(60) == 0


def results(settings: Settings) -> list[ShopCommandResult]:
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    out = []
    for msg in read_all(settings.kafka_bootstrap_servers, settings.topic("commands.shop.results"), idle_s=0.5):
        record = serde.decode(msg.value())
        assert isinstance(record, ShopCommandResult)
        out.append(record)
    return out


def config(tmp_path: Path, url: str, skus: int) -> Path:
    path = tmp_path / "shop_writer.yaml"
    path.write_text(yaml.safe_dump({
        "platform": "shopify", "flush_interval_s": 0.3,
        "shopify": {"shop_url": url, "location_id": LOCATION, "api": "graphql"},
        "retries": {"max_attempts": 6, "backoff_base_s": 0.2},
        "items": {f"SKU-{i}": item(i) for i in range(skus)}}))
    return path


def latest(shop: FakeShop, expected: dict[int, int]) -> bool:
    with shop.lock:
        return all(shop.levels.get((item(i), LOCATION)) == n for i, n in expected.items())


def test_a_burst_reaches_the_shop_within_budget_stale_never_wins_5xx_retried(settings: Settings,
                                                                             tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    skus = 5000
    shop = FakeShop(gql_bucket=100, gql_restore=200, gql_cost=10,
                    known_items={item(i) for i in range(skus)} - {item(7)})
    with running(shop) as url:
        send(settings, [command(f"SKU-{i}", i % 40, 5) for i in range(skus)])  # one change per SKU
        shop.fail_next(2, 502)
        log = tmp_path / "writer.log"
        proc = start_worker("shop-writer", settings, log,
                            SHOPSTREAM_SHOP_WRITER_CONFIG=str(config(tmp_path, url, skus)),
                            SHOPSTREAM_SHOPIFY_ACCESS_TOKEN=TOKEN)
        try:
            expected = {i: i % 40 for i in range(skus) if i != 7}
            wait_for(lambda: latest(shop, expected), 180, log, "every SKU at its latest figure")
            mutations = [r for r in shop.log if not r["throttled"]]
            send(settings, [command(f"SKU-{i}", 999, 4, "stale") for i in range(10)])  # older ATP versions
            found = wait_for(lambda: (lambda r: r if len(r) >= skus + 10 else None)(results(settings)), 60, log,
                             "a result per command")
        finally:
            stop(proc)
    assert all(r["after"] >= 0 for r in shop.log), "the budget never goes negative"
    # the 502s were answered before any cost: they add the resends of their two batches; the userError one resend
    assert len(mutations) <= math.ceil(skus / 250) + 2 + 1, len(mutations)
    final = {(r.sku, r.outcome) for r in found if r.outcome != "superseded"}
    assert ("SKU-7", "failed") in final and all((f"SKU-{i}", "applied") in final for i in (0, 1, 4999))
    failed = [r for r in found if r.sku == "SKU-7" and r.outcome == "failed"]
    assert "INVALID_INVENTORY_ITEM" in (failed[0].error or "")
    parked = read_all(settings.kafka_bootstrap_servers, settings.topic("commands.shop.dlq"), partitions=1, idle_s=0.5)
    assert [m.key() for m in parked] == [b"SKU-7"]  # the shop's 4xx: parked with its context
    headers = header_map(parked[0].headers() or [])
    assert "INVALID_INVENTORY_ITEM" in headers.get("shopstream.dlq.error.message", b"").decode()
    assert all(shop.levels.get((item(i), LOCATION)) != 999 for i in range(10)), "a stale command never wins"
    assert {r.sku for r in found if r.outcome == "superseded" and r.atp_version == 4 and r.available == 999} == {
        f"SKU-{i}" for i in range(10)}


def test_sigkill_mid_burst_then_restart_leaves_every_latest_figure(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    skus = 3000
    shop = FakeShop(gql_bucket=40, gql_restore=40, gql_cost=10)  # slow: the kill lands mid-burst
    with running(shop) as url:
        cfg = config(tmp_path, url, skus)
        send(settings, [command(f"SKU-{i}", i % 17, 1) for i in range(skus)])
        log = tmp_path / "writer.log"
        env = {"SHOPSTREAM_SHOP_WRITER_CONFIG": str(cfg), "SHOPSTREAM_SHOPIFY_ACCESS_TOKEN": TOKEN}
        proc = start_worker("shop-writer", settings, log, **env)
        try:
            wait_for(lambda: len(shop.levels) >= 500, 120, log, "part of the burst written")
            send(settings, [command(f"SKU-{i}", 100 + i % 7, 2) for i in range(0, skus, 3)])
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            stop(proc)
        proc = start_worker("shop-writer", settings, log, **env)
        try:
            expected = {i: (100 + i % 7) if i % 3 == 0 else i % 17 for i in range(skus)}
            wait_for(lambda: latest(shop, expected), 240, log, "every SKU at its latest figure after the restart")
        finally:
            stop(proc)
    assert all(r["after"] >= 0 for r in shop.log)
