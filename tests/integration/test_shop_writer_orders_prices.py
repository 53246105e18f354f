"""Contract tests: UpdatePrice and CancelOrder through the shop writer's clients against the local shop double.

The double (`tests/fake_shops.py`) checks the documented request shapes (Shopify
`productVariantsBulkUpdate` / `orderCancel` with the arguments 2025-01 requires, WooCommerce batch
`regular_price` and `PUT /orders/<id>`) and answers with the documented userErrors and HTTP errors.
Price and cancel share the stock writes' one request path (bucket, THROTTLED, 5xx/4xx): shown with
a tiny bucket and injected 5xx / 401.
"""

from __future__ import annotations

from decimal import Decimal

from shopstream.processors.shop_writer.clients import ShopifyGraphQL, WooCommerceRest
from shopstream.processors.shop_writer.config import Retries, Shopify, ShopifyGraphQLLimits, ShopItem, WooCommerce
from tests.fake_shops import TOKEN, WOO_AUTH, FakeShop, running

PRODUCT = "gid://shopify/Product/10"
VARIANT = "gid://shopify/ProductVariant/101"
ORDER = "gid://shopify/Order/5001"


def shopify(url: str) -> ShopifyGraphQL:
    return ShopifyGraphQL(Shopify(shop_url=url, graphql=ShopifyGraphQLLimits()), TOKEN, Retries())


def test_shopify_price_is_set_on_the_variant_and_unknown_variants_are_refused_for_good() -> None:
    shop = FakeShop(known_variants={VARIANT: PRODUCT})
    with running(shop) as url:
        client = shopify(url)
        ok = client.update_price(ShopItem(product_id=PRODUCT, variant_id=VARIANT), Decimal("19.9000"))
        wrong = client.update_price(ShopItem(product_id=PRODUCT, variant_id="gid://shopify/ProductVariant/999"),
                                    Decimal("5"))
        no_ids = client.update_price(ShopItem(item_id="gid://shopify/InventoryItem/1"), Decimal("5"))
    assert ok.ok and shop.prices == {VARIANT: "19.90"}
    assert not wrong.ok and wrong.permanent and "PRODUCT_VARIANT_DOES_NOT_EXIST" in (wrong.error or "")
    assert not no_ids.ok and no_ids.permanent and "product_id" in (no_ids.error or "")
    assert len(shop.requests) == 2  # no request without the ids


def test_shopify_cancel_does_not_refund_twice_and_a_second_cancel_is_refused() -> None:
    shop = FakeShop(known_orders={ORDER})
    with running(shop) as url:
        client = shopify(url)
        shop.cancel_internal_errors = 1
        internal = client.cancel_order("5001")
        first = client.cancel_order("5001", "shopstream: fraud by user:anna")
        again = client.cancel_order("5001")
        unknown = client.cancel_order("6002")
        not_an_id = client.cancel_order("woo-77")
    assert not internal.ok and not internal.permanent  # the shop's INTERNAL_ERROR: tried again, not parked
    assert first.ok and shop.cancelled == {ORDER: "shopstream: fraud by user:anna"}
    assert "refund: false" in shop.requests[0]["body"]["query"]  # refunds are the backbone's IssueRefund
    assert not again.ok and again.permanent and "already been cancelled" in (again.error or "")
    assert not unknown.ok and unknown.permanent and "NOT_FOUND" in (unknown.error or "")
    assert not not_an_id.ok and not_an_id.permanent and len(shop.requests) == 4


def test_shopify_5xx_is_transient_401_permanent_and_throttling_is_waited_out() -> None:
    shop = FakeShop(gql_bucket=20, gql_restore=100, gql_cost=15)  # room for one mutation at a time
    with running(shop) as url:
        client = shopify(url)  # believes cost 10 / bucket 1000: learns the shop's figures from the answers
        shop.fail_next(1, 503)
        transient = client.cancel_order("1")
        shop.fail_next(1, 401)
        permanent = client.cancel_order("1")
        done = [client.cancel_order(str(i)) for i in range(2, 8)]
    assert not transient.ok and not transient.permanent and "503" in (transient.error or "")
    assert not permanent.ok and permanent.permanent and "401" in (permanent.error or "")
    assert all(a.ok for a in done) and len(shop.cancelled) == 6
    assert all(r["after"] >= 0 for r in shop.log)


def test_woocommerce_price_and_cancel() -> None:
    shop = FakeShop(known_items={"11", "5/51"}, known_orders={"900"})
    with running(shop) as url:
        client = WooCommerceRest(WooCommerce(shop_url=url, requests_per_s=50), *WOO_AUTH, Retries())
        simple = client.update_price(ShopItem(item_id="11"), Decimal("7.5"))
        variation = client.update_price(ShopItem(item_id="5/51"), Decimal("12.0000"))
        unknown = client.update_price(ShopItem(item_id="99"), Decimal("1"))
        cancelled = client.cancel_order("900")
        missing = client.cancel_order("901")
    assert simple.ok and variation.ok and shop.prices == {"11": "7.50", "5/51": "12.00"}
    assert not unknown.ok and unknown.permanent
    assert cancelled.ok and shop.order_status == {"900": "cancelled"}
    assert not missing.ok and missing.permanent and "404" in (missing.error or "")
    assert [r["path"] for r in shop.requests][-2:] == ["/wp-json/wc/v3/orders/900", "/wp-json/wc/v3/orders/901"]
