"""The shop writer learns a SKU's shop ids from the shop's own product webhooks; the static table overrides."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from shopstream.connectors.shopify import ShopifyConnector, sign
from shopstream.connectors.signing import hmac_sha256_base64
from shopstream.connectors.woocommerce import WooCommerceConnector
from shopstream.processors.shop_writer import core
from shopstream.processors.shop_writer.config import ShopItem, ShopWriterConfig
from shopstream.processors.shop_writer.core import SkuEntry, StockCommand
from shopstream.processors.shop_writer.items import learned_item, resolve
from shopstream.schemas.models import ProductUpserted
from tests.unit.catalog_fixtures import SHOPIFY_PRODUCT, WOO_PRODUCT

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _shopify_upserts(payload: dict[str, Any]) -> list[ProductUpserted]:
    body = json.dumps(payload).encode()
    headers = {"X-Shopify-Topic": "products/update", "X-Shopify-Hmac-Sha256": sign("s", body)}
    out = [o.record for o in ShopifyConnector("s").translate(headers, body, NOW)]
    assert all(isinstance(r, ProductUpserted) for r in out)
    return out  # type: ignore[return-value]


def _woo_upsert(payload: dict[str, Any]) -> ProductUpserted:
    body = json.dumps(payload).encode()
    headers = {"X-WC-Webhook-Topic": "product.updated", "X-WC-Webhook-Signature": hmac_sha256_base64("w", body)}
    [out] = WooCommerceConnector("w").translate(headers, body, NOW)
    assert isinstance(out.record, ProductUpserted)
    return out.record


def test_a_shopify_product_webhook_teaches_inventory_item_product_and_variant() -> None:
    first, second = _shopify_upserts(SHOPIFY_PRODUCT)
    assert learned_item(first, "shopify") == ShopItem(
        item_id="gid://shopify/InventoryItem/1", product_id="gid://shopify/Product/788032119674292922",
        variant_id="gid://shopify/ProductVariant/642667041472713922")
    # the second variant's payload has no inventory_item_id: price ids only, stock stays unknown
    assert learned_item(second, "shopify") == ShopItem(
        product_id="gid://shopify/Product/788032119674292922",
        variant_id="gid://shopify/ProductVariant/757650484644203962")
    assert learned_item(first, "woocommerce") is None  # another platform's product teaches nothing


def test_woocommerce_products_and_variations() -> None:
    product = _woo_upsert(WOO_PRODUCT)
    assert learned_item(product, "woocommerce") == ShopItem(item_id="794")
    variation = _woo_upsert({**WOO_PRODUCT, "id": 801, "parent_id": 794, "sku": "BELT-LTH-95-BRN"})
    assert variation.product_id == "794" and variation.variant_id == "801"
    assert learned_item(variation, "woocommerce") == ShopItem(item_id="794/801")


def test_the_static_table_overrides_id_by_id_and_plain_strings_are_item_ids() -> None:
    config = ShopWriterConfig(items={"A": "gid://shopify/InventoryItem/9", "B": {"variant_id": "gid://x/2"}})
    learned = ShopItem(item_id="gid://shopify/InventoryItem/1", product_id="p", variant_id="v")
    assert resolve(config.items, "A", learned) == ShopItem(item_id="gid://shopify/InventoryItem/9", product_id="p",
                                                           variant_id="v")
    assert resolve(config.items, "B", None) == ShopItem(variant_id="gid://x/2")
    assert resolve(config.items, "C", learned) == learned and resolve(config.items, "C", None) is None


def test_the_learned_item_survives_settling_and_the_changelog() -> None:
    item = ShopItem(item_id="gid://shopify/InventoryItem/1")
    command = StockCommand("A", 5, 1, str(uuid.uuid4()))
    entry = core.offer(SkuEntry(item=item), command).entry
    applied, _ = core.settle_applied(entry, command)
    failed, _ = core.settle_failed(entry, command, "HTTP 403", permanent=True, now=0.0, max_attempts=3)
    assert applied.item == item and failed.item == item
    assert SkuEntry.from_dict(json.loads(json.dumps(applied.to_dict()))) == applied
    assert SkuEntry.from_dict({"applied": None, "pending": None}) == SkuEntry()  # entries stored before ids were
