"""Shopify product webhooks (`products/create`, `products/update`; REST Product resource), pure.

Called by the Shopify connector for the product topics (same signature check and dedupe as orders).
- One ProductUpserted per variant on `catalog.products`, keyed by the variant's `sku` (see
  `connectors/products.py`); a variant without SKU is listed in `variants` (the catalog checks name it)
  and not published; a product none of whose variants has a SKU is refused (422, parked).
- Texts: `title`, `body_html` → description, `handle` → slug, `vendor` → brand, `product_type` → family and
  category, `tags` (Shopify's comma-separated string) → tags, `status` active|draft|archived → active.
- Variants: `option1..3` named by the product's `options[].name` (by position) → options; `price`,
  `compare_at_price` exact decimals in the shop currency (`SHOPSTREAM_SHOPIFY_CURRENCY`, default EUR: the
  product payload names none), `barcode`, `grams`, `inventory_management` set → stock tracked; `id` →
  variant_id and `inventory_item_id` (the shop writer learns its SKU → shop ids from them).
- Images: `src`, `width`, `height`, `alt`; the format from the URL's extension.
- Time: `updated_at` (else `created_at`) — the event id's identity with product id and SKU.
- `products/delete` carries only the product id (no SKUs): it is acknowledged and not published —
  the SKU lookup it needs (product id → SKUs) is not built; the PIM remains the source of deletions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shopstream.connectors.base import Outgoing, parse_time
from shopstream.connectors.payload import parse_body, representing
from shopstream.connectors.products import SourceProduct, SourceVariant, image_format, money, upserts
from shopstream.schemas.models import ProductImage

SOURCE = "shopify"
PRODUCT_TOPICS = ("products/create", "products/update", "products/delete")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ShopifyOption(_Loose):
    name: str
    position: int = 1


class ShopifyVariant(_Loose):
    id: int | str
    sku: str | None = None
    price: Any = None
    compare_at_price: Any = None
    option1: str | None = None
    option2: str | None = None
    option3: str | None = None
    barcode: str | None = None
    grams: int | None = Field(default=None, ge=0)
    inventory_management: str | None = None
    inventory_item_id: int | str | None = None


class ShopifyImage(_Loose):
    src: str
    width: int | None = None
    height: int | None = None
    alt: str | None = None


class ShopifyProduct(_Loose):
    id: int | str
    title: str
    body_html: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    handle: str | None = None
    status: str | None = None
    tags: str | list[str] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    variants: list[ShopifyVariant] = Field(default_factory=list)
    options: list[ShopifyOption] = Field(default_factory=list)
    images: list[ShopifyImage] = Field(default_factory=list)


def _tags(tags: str | list[str] | None) -> list[str]:
    items = tags.split(",") if isinstance(tags, str) else (tags or [])
    return [t.strip() for t in items if t.strip()]


def to_source_product(p: ShopifyProduct, currency: str, source_event_id: str | None) -> SourceProduct:
    """The Shopify product as a SourceProduct."""
    axes = {o.position: o.name for o in p.options}
    variants = []
    for v in p.variants:
        options = {axes.get(i, f"option{i}"): value
                   for i, value in enumerate((v.option1, v.option2, v.option3), start=1)
                   if value is not None and not (value == "Default Title" and axes.get(i) == "Title")}
        variants.append(SourceVariant(
            sku=v.sku, options=options, price=money(v.price, currency, f"variant {v.id} price"),
            compare_at_price=money(v.compare_at_price, currency, f"variant {v.id} compare_at_price"),
            track_stock=bool(v.inventory_management), barcode=v.barcode or None, weight_grams=v.grams,
            variant_id=str(v.id), inventory_item_id=str(v.inventory_item_id) if v.inventory_item_id else None))
    images = [ProductImage(url=i.src, width=i.width, height=i.height, format=image_format(i.src), alt=i.alt or None)
              for i in p.images]
    stamp, name = (p.updated_at, "updated_at") if p.updated_at else (p.created_at, "created_at")
    return SourceProduct(
        source=SOURCE, product_id=str(p.id), title=p.title, updated_at=parse_time(stamp, name), variants=variants,
        description=p.body_html or None, family=p.product_type or None, category=p.product_type or None,
        brand=p.vendor or None, slug=p.handle or None, active=(p.status or "active") == "active",
        images=images, tags=_tags(p.tags), source_event_id=source_event_id)


def translate_product(topic: str, body: bytes, received_at: datetime, currency: str,
                      source_event_id: str | None) -> list[Outgoing]:
    """Canonical events for a product webhook ([] for `products/delete`, see the module docstring)."""
    if topic == "products/delete":
        return []
    product = parse_body(ShopifyProduct, body, "Shopify product", exact_numbers=False)
    with representing(f"product {product.id}"):
        return upserts(to_source_product(product, currency, source_event_id), received_at)
