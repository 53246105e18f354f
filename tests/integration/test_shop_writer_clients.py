"""Contract tests: the shop writer's HTTP clients against a local double of the shops' documented APIs.

The double (`tests/fake_shops.py`) checks every request body against the documented input shapes and
enforces the documented limits (cost bucket + THROTTLED, REST bucket + 429 + call-limit header). No
Kafka here: the clients are plain HTTP; the worker on the runner is tested separately.
"""

from __future__ import annotations

import math
import uuid

from shopstream.processors.shop_writer import core
from shopstream.processors.shop_writer.clients import ShopifyGraphQL, ShopifyRest, WooCommerceRest
from shopstream.processors.shop_writer.config import (
    Retries,
    Shopify,
    ShopifyGraphQLLimits,
    ShopifyRestLimits,
    WooCommerce,
)
from shopstream.processors.shop_writer.core import StockCommand, Write
from tests.fake_shops import TOKEN, WOO_AUTH, FakeShop, running

LOCATION = "gid://shopify/Location/77"


def item(i: int) -> str:
    return f"gid://shopify/InventoryItem/{1000 + i}"


def writes(n: int, version: int = 1) -> list[Write]:
    return [Write(StockCommand(sku=f"SKU-{i}", available=(i * 7 + version) % 50, atp_version=version,
                               event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{i}:{version}")), offset=i), item(i))
            for i in range(n)]


def shopify_cfg(url: str, **graphql: float) -> Shopify:
    return Shopify(shop_url=url, location_id=LOCATION, graphql=ShopifyGraphQLLimits(**graphql),  # type: ignore[arg-type]
                   rest=ShopifyRestLimits(bucket=5, leak_per_s=50))


def test_5000_skus_reach_the_shop_in_batches_of_250_within_the_cost_budget() -> None:
    # a small, fast bucket (100 points, 500/s) so the burst really meets the limit; the client is told the
    # documented default (1000 / 50, cost 10) and must learn the real figures from throttleStatus and the cost
    shop = FakeShop(gql_bucket=100, gql_restore=500, gql_cost=30)
    with running(shop) as url:
        client = ShopifyGraphQL(shopify_cfg(url), TOKEN, Retries())  # believes the default cost 10: learns 30
        burst = writes(5000)
        out = client.write(burst)
    assert all(o.ok for o in out) and len(out) == 5000
    assert all(shop.levels[(w.item_id, LOCATION)] == w.command.available for w in burst)
    mutations = [r for r in shop.log if not r["throttled"]]
    assert len(mutations) == math.ceil(5000 / 250) and all(r["batch"] <= 250 for r in mutations)
    assert all(r["after"] >= 0 for r in shop.log), "the budget never goes negative"
    throttled = len(shop.log) - len(mutations)
    assert throttled <= 2, f"the client waits for room instead of collecting rejections ({throttled} throttled)"
    assert client.stats.throttled == throttled


def test_graphql_request_body_follows_the_documented_input() -> None:
    shop = FakeShop()
    with running(shop) as url:
        ShopifyGraphQL(shopify_cfg(url), TOKEN, Retries()).write(writes(3))
    [request] = shop.requests
    data = request["body"]["variables"]["input"]
    assert request["path"] == "/admin/api/2025-01/graphql.json"
    assert "inventorySetQuantities(input: $input)" in request["body"]["query"]
    assert (data["name"], data["reason"], data["ignoreCompareQuantity"]) == ("available", "correction", True)
    assert data["referenceDocumentUri"].startswith("gid://shopstream/SyncShopStock/")
    assert data["quantities"][0] == {"inventoryItemId": item(0), "locationId": LOCATION, "quantity": 1}


def test_an_unknown_item_fails_alone_and_the_rest_of_the_batch_is_sent_again() -> None:
    batch = writes(4)
    shop = FakeShop(known_items={w.item_id for w in batch} - {item(2)})
    with running(shop) as url:
        out = ShopifyGraphQL(shopify_cfg(url), TOKEN, Retries()).write(batch)
    by = {o.write.command.sku: o for o in out}
    assert not by["SKU-2"].ok and by["SKU-2"].permanent and "INVALID_INVENTORY_ITEM" in (by["SKU-2"].error or "")
    assert all(by[f"SKU-{i}"].ok for i in (0, 1, 3)) and (item(2), LOCATION) not in shop.levels


def test_5xx_is_transient_4xx_is_permanent() -> None:
    shop = FakeShop()
    with running(shop) as url:
        client = ShopifyGraphQL(shopify_cfg(url), TOKEN, Retries())
        shop.fail_next(1, 502)
        [transient] = client.write(writes(1))
        shop.fail_next(1, 403)
        [permanent] = client.write(writes(1))
        [bad_token] = ShopifyGraphQL(shopify_cfg(url), "wrong", Retries()).write(writes(1))
        [fine] = client.write(writes(1))
    assert not transient.ok and not transient.permanent and "HTTP 502" in (transient.error or "")
    assert not permanent.ok and permanent.permanent
    assert not bad_token.ok and bad_token.permanent and "HTTP 401" in (bad_token.error or "")
    assert fine.ok


def test_rest_paces_by_the_call_limit_header_and_waits_out_429() -> None:
    shop = FakeShop(rest_bucket=5, rest_leak=50)
    with running(shop) as url:
        # the client believes a bigger bucket than the shop's: the header and the 429s correct it
        cfg = Shopify(shop_url=url, location_id=LOCATION, rest=ShopifyRestLimits(bucket=40, leak_per_s=50))
        client = ShopifyRest(cfg, TOKEN, Retries(), sleep=lambda s: __import__("time").sleep(min(s, 0.05)))
        batch = writes(30)
        out = client.write(batch)
    assert all(o.ok for o in out)
    assert all(shop.levels[(w.item_id, LOCATION)] == w.command.available for w in batch)
    sets = [r for r in shop.requests if r["path"].endswith("/inventory_levels/set.json")]
    assert sets[0]["body"] == {"location_id": 77, "inventory_item_id": 1000, "available": 1}
    assert client.stats.throttled == len(sets) - 30  # every 429 was retried after Retry-After


def test_woocommerce_batches_products_and_variations() -> None:
    shop = FakeShop(known_items={"11", "12", "5/51"})
    batch = [Write(StockCommand("A", 3, 1, "e-a"), "11"), Write(StockCommand("B", 4, 1, "e-b"), "12"),
             Write(StockCommand("C", 5, 1, "e-c"), "5/51"), Write(StockCommand("D", 6, 1, "e-d"), "99")]
    with running(shop) as url:
        out = WooCommerceRest(WooCommerce(shop_url=url, requests_per_s=50), *WOO_AUTH, Retries()).write(batch)
    by = {o.write.command.sku: o for o in out}
    assert by["A"].ok and by["B"].ok and by["C"].ok and not by["D"].ok and by["D"].permanent
    assert shop.levels[("5/51", "woo")] == 5 and shop.levels[("11", "woo")] == 3
    paths = sorted(r["path"] for r in shop.requests)
    assert paths == ["/wp-json/wc/v3/products/5/variations/batch", "/wp-json/wc/v3/products/batch"]


def test_flush_through_the_real_client_settles_results() -> None:
    shop = FakeShop(known_items={item(0), item(1)})
    entries = {w.command.sku: core.offer(None, w.command).entry for w in writes(3)}
    with running(shop) as url:
        client = ShopifyGraphQL(shopify_cfg(url), TOKEN, Retries())
        out = core.flush(entries, 0.0, client.write, {f"SKU-{i}": item(i) for i in range(3)}, max_attempts=3)
    assert sorted((r.command.sku, r.outcome) for r in out.results) == [
        ("SKU-0", "applied"), ("SKU-1", "applied"), ("SKU-2", "failed")]
