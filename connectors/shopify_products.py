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
- `products/delete` carries only the product id (no SKUs): the webhook front looks its SKUs up in the
  product index (`connectors/product_index.py`, filled from the ProductUpserted records published here)
  and `translate_deleted` makes one ProductDeleted per SKU, at `X-Shopify-Triggered-At` (else the time
  received); an id the index does not know is parked with the reason, never dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shopstream.connectors.base import Outgoing, PayloadError, parse_time
from shopstream.connectors.payload import parse_body, representing
from shopstream.connectors.products import SourceProduct, SourceVariant, deleted, image_format, money, upserts
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


class ShopifyDeletedProduct(_Loose):
    id: int | str


def deleted_product_id(body: bytes) -> str:
    """The id of a `products/delete` body (PayloadError: not one)."""
    return str(parse_body(ShopifyDeletedProduct, body, "Shopify product deletion", exact_numbers=False).id)


def translate_deleted(product_id: str, skus: list[str], deleted_at: datetime, received_at: datetime,
                      source_event_id: str | None) -> list[Outgoing]:
    """One ProductDeleted per SKU of the deleted product."""
    return [deleted(SOURCE, sku, product_id, deleted_at, received_at, source_event_id) for sku in skus]


def translate_product(topic: str, body: bytes, received_at: datetime, currency: str,
                      source_event_id: str | None) -> list[Outgoing]:
    """Canonical events for a product webhook (a deletion needs its SKUs: `translate_deleted`)."""
    if topic == "products/delete":
        raise PayloadError("products/delete names no SKU: it is translated with the product index's SKUs")
    product = parse_body(ShopifyProduct, body, "Shopify product", exact_numbers=False)
    with representing(f"product {product.id}"):
        return upserts(to_source_product(product, currency, source_event_id), received_at)
