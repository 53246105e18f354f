"""Which SKUs a shop's product id stands for, remembered in Redis for deletions that name only the id.

Shopify's `products/delete` (and WooCommerce's `product.deleted`) carries the product id and nothing else,
while the catalog is keyed by SKU. So the webhook front remembers, for every ProductUpserted it published
from a connector implementing `IndexesProducts`, the SKUs of each (source, product id): the SKUs of one
delivery replace the product's set (an update carries every variant, so a SKU the product lost is
forgotten). A deletion looks the set up before it is translated: one ProductDeleted per SKU, then the
set is forgotten. An id the index does not know (a product created before the index existed, or its
creation still on the way) is parked on `connectors.dlq` with the reason and answered 202 — the shop
does not retry it, and `shopstream dlq redrive` re-submits it once the product's SKUs are known.

Key: `{SHOPSTREAM_REDIS_PREFIX}product-skus:{source}:{product id}`, a set of SKUs, no expiry (a product
lives as long as the shop sells it). A set is written only after the broker confirmed the records that
carried it; the events are on Kafka either way, so a lost write costs a parked deletion, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import redis.asyncio as aioredis


class ProductSkus:
    """(source, product id) → SKUs, in Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def key(self, source: str, product_id: str) -> str:
        return f"{self._prefix}product-skus:{source}:{product_id}"

    async def skus_of(self, source: str, product_id: str) -> list[str]:
        """The product's SKUs (sorted; [] when the id is unknown)."""
        members = await self._redis.smembers(self.key(source, product_id))
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def remember(self, source: str, products: Mapping[str, Iterable[str]]) -> None:
        """Replace each product's SKUs with the given ones."""
        pipe = self._redis.pipeline(transaction=True)
        for product_id, skus in products.items():
            key = self.key(source, product_id)
            pipe.delete(key)
            values = sorted(set(skus))
            if values:
                pipe.sadd(key, *values)
        await pipe.execute()

    async def forget(self, source: str, product_ids: Iterable[str]) -> None:
        """The products were deleted."""
        keys = [self.key(source, product_id) for product_id in product_ids]
        if keys:
            await self._redis.delete(*keys)
