"""SKU -> the shop's ids (`ShopItem`), learned from the shop's own product webhooks; the static table overrides. Pure.

The shop writer needs, per SKU, the ids the shop's Admin API addresses it by: Shopify's inventory item
(stock) and product + variant (price); WooCommerce's product id or `<parent>/<variation>` (stock and
price). The shop announces them itself: its product webhooks (`products/create|update`,
`product.created|updated`) become ProductUpserted records on `catalog.products` keyed by SKU, carrying
`product_id`, `variant_id` and (Shopify) `inventory_item_id` when the source is the shop. The writer
consumes `catalog.products` too and keeps what it learned in the SKU's state entry
(`core.SkuEntry.item`, changelogged); records from other sources (PIM, ERP, files) teach nothing.

`topology/shop_writer.yaml` `items` stays as an override, id by id (`ShopItem.over`): an entry there
wins where it names an id, the learned ids fill the rest. A SKU with neither is parked on
`commands.shop.dlq` with the reason "unknown item" — re-drive it (`shopstream dlq replay`) once the
shop's product webhook has arrived or the table names it.
"""

from __future__ import annotations

from collections.abc import Mapping

from shopstream.schemas.models import ProductUpserted

from .config import ShopItem


def learned_item(event: ProductUpserted, platform: str) -> ShopItem | None:
    """The shop's ids of the SKU from a ProductUpserted the shop itself sent; None from any other source."""
    if event.meta.source != platform or not event.product_id:
        return None
    if platform == "shopify":
        inventory, variant = event.inventory_item_id, event.variant_id
        return ShopItem(item_id=f"gid://shopify/InventoryItem/{inventory}" if inventory else None,
                        product_id=f"gid://shopify/Product/{event.product_id}",
                        variant_id=f"gid://shopify/ProductVariant/{variant}" if variant else None)
    variation = event.variant_id
    return ShopItem(item_id=f"{event.product_id}/{variation}" if variation else event.product_id)


def resolve(static: Mapping[str, ShopItem], sku: str, learned: ShopItem | None) -> ShopItem | None:
    """The SKU's ids: the static entry over the learned one (either may be missing)."""
    override = static.get(sku)
    return override.over(learned) if override is not None else learned
