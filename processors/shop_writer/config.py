"""The shop writer's settings as data: `topology/shop_writer.yaml` (platform, locations, limits, retries).

The file names no secret: the API token comes from the environment (`SHOPSTREAM_SHOPIFY_ACCESS_TOKEN`,
`SHOPSTREAM_WOOCOMMERCE_CONSUMER_KEY` / `_CONSUMER_SECRET`; Kubernetes Secrets in the chart). Validated on load (unknown
keys are errors naming the file). The file's comments explain every key.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator

from shopstream.yamlmodel import load_yaml_model


class ShopWriterConfigError(ValueError):
    """The shop writer's configuration is missing or invalid."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ShopifyGraphQLLimits(_Frozen):
    """Shopify's GraphQL cost bucket (standard plan defaults) and what a mutation costs."""

    bucket: PositiveFloat = 1000.0
    restore_per_s: PositiveFloat = 50.0
    mutation_cost: PositiveFloat = 10.0
    batch_size: int = Field(default=250, ge=1, le=250)


class ShopifyRestLimits(_Frozen):
    """Shopify's REST request bucket (standard plan defaults)."""

    bucket: PositiveFloat = 40.0
    leak_per_s: PositiveFloat = 2.0


class Shopify(_Frozen):
    """Where and how to write to a Shopify shop."""

    shop_url: str = "https://example.myshopify.com"
    api_version: str = "2025-01"
    api: Literal["graphql", "rest"] = "graphql"
    location_id: str = "gid://shopify/Location/1"
    reason: str = "correction"
    graphql: ShopifyGraphQLLimits = ShopifyGraphQLLimits()
    rest: ShopifyRestLimits = ShopifyRestLimits()


class WooCommerce(_Frozen):
    """Where and how to write to a WooCommerce shop."""

    shop_url: str = "https://shop.example.com"
    requests_per_s: PositiveFloat = 5.0
    batch_size: int = Field(default=100, ge=1, le=100)


class Retries(_Frozen):
    """Transient failures (5xx, timeouts) are retried with exponential backoff, then given up."""

    max_attempts: PositiveInt = 8
    backoff_base_s: PositiveFloat = 1.0
    max_throttle_retries: PositiveInt = 20


class ShopItem(_Frozen):
    """A SKU's ids in the shop.

    item_id     stock: Shopify's inventory item (gid://shopify/InventoryItem/<id>); WooCommerce's product id,
                or `<parent>/<variation>` for a variation (WooCommerce also sets the price there)
    product_id  Shopify price: the product (gid://shopify/Product/<id>)
    variant_id  Shopify price: the variant (gid://shopify/ProductVariant/<id>)
    """

    item_id: str | None = None
    product_id: str | None = None
    variant_id: str | None = None

    def over(self, base: ShopItem | None) -> ShopItem:
        """These ids, with `base`'s where this one has none (a static entry over a learned one)."""
        if base is None:
            return self
        return ShopItem(item_id=self.item_id or base.item_id, product_id=self.product_id or base.product_id,
                        variant_id=self.variant_id or base.variant_id)


class ShopWriterConfig(_Frozen):
    """A validated shop writer configuration."""

    platform: Literal["shopify", "woocommerce"] = "shopify"
    flush_interval_s: PositiveFloat = 0.5
    shopify: Shopify = Shopify()
    woocommerce: WooCommerce = WooCommerce()
    retries: Retries = Retries()
    items: dict[str, ShopItem] = {}  # SKU -> the shop's ids (a plain string is the item_id); see the file

    @field_validator("items", mode="before")
    @classmethod
    def _plain_item_ids(cls, value: object) -> object:
        """`SKU: <item id>` is short for `SKU: {item_id: <item id>}`."""
        if isinstance(value, dict):
            return {k: {"item_id": v} if isinstance(v, str) else v for k, v in value.items()}
        return value


def default_config_path() -> Path:
    """The shipped `topology/shop_writer.yaml`."""
    return Path(str(resources.files("shopstream.topology").joinpath("shop_writer.yaml")))


def load_shop_writer_config(path: Path | str | None = None) -> ShopWriterConfig:
    """Read and validate the shop writer configuration (default: the shipped file)."""
    return load_yaml_model(path or default_config_path(), ShopWriterConfig, ShopWriterConfigError,
                           "shop writer config", empty_is_defaults=True)
