"""Product records shared by every catalog source (pure): the canonical ProductUpserted / ProductDeleted.

Every catalog source (Shopify and WooCommerce product webhooks, the PIM push, `shopstream ingest pim`)
reads its payload into a `SourceProduct` — one parent product with its variants — and this module turns
it into one ProductUpserted per variant SKU on `catalog.products`, keyed by that SKU, each carrying
the parent's texts, attributes and images plus the list of all variants (so the catalog worker, which
keeps state per SKU, can check variant consistency from one record). A product without variants is
one SKU. Event ids derive from the source, SKU and the source's update time: a redelivery is a
duplicate, every real change a new event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shopstream.connectors.base import Outgoing, PayloadError, make_meta
from shopstream.schemas.models import (
    Money,
    ProductAttribute,
    ProductDeleted,
    ProductImage,
    ProductUpserted,
    ProductVariant,
)
from shopstream.topology import names

TOPIC = names.CATALOG_PRODUCTS
#: Image formats recognised from a URL's extension when the source does not name one.
_FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp", "gif": "gif", "avif": "avif",
            "svg": "svg", "tif": "tiff", "tiff": "tiff", "bmp": "bmp"}
_EXT = re.compile(r"\.([A-Za-z0-9]{2,5})(?:[?#].*)?$")


def money(amount: Any, currency: str, what: str) -> Money | None:
    """An exact Money from a decimal string or number; None for an empty amount; PayloadError when not a number."""
    if amount is None or (isinstance(amount, str) and not amount.strip()):
        return None
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise PayloadError(f"{what}: not a decimal amount: {amount!r}") from None
    if not value.is_finite() or value < 0:
        raise PayloadError(f"{what}: not a non-negative finite amount: {amount!r}")
    return Money(amount=value.quantize(Decimal("0.0001")), currency=currency.upper())


def image_format(url: str, given: str | None = None) -> str | None:
    """The image format: the source's if it names one, else from the URL's extension (lower case)."""
    if given:
        return _FORMATS.get(given.lower().removeprefix("image/"), given.lower().removeprefix("image/"))
    match = _EXT.search(url)
    return _FORMATS.get(match.group(1).lower()) if match else None


@dataclass
class SourceVariant:
    """One sellable variant as a source describes it."""

    sku: str | None
    options: dict[str, str] = field(default_factory=dict)
    price: Money | None = None
    track_stock: bool = True
    barcode: str | None = None
    weight_grams: int | None = None
    compare_at_price: Money | None = None
    cost: Money | None = None
    variant_id: str | None = None  # the source's id of this variant (Shopify variant, WooCommerce variation)
    inventory_item_id: str | None = None  # Shopify: the variant's inventory item (the shop writer's stock target)


@dataclass
class SourceProduct:
    """One parent product with its variants, read from any catalog source."""

    source: str
    product_id: str
    title: str
    updated_at: datetime
    variants: list[SourceVariant]
    description: str | None = None
    family: str | None = None
    category: str | None = None
    brand: str | None = None
    slug: str | None = None
    active: bool = True
    attributes: list[ProductAttribute] = field(default_factory=list)
    images: list[ProductImage] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source_event_id: str | None = None


def upserts(p: SourceProduct, received_at: datetime) -> list[Outgoing]:
    """One ProductUpserted per variant SKU (PayloadError for a variant without SKU: the key would be missing)."""
    if not p.variants:
        raise PayloadError(f"product {p.product_id}: no variant and no SKU")
    missing = [i for i, v in enumerate(p.variants) if not (v.sku and v.sku.strip())]
    if missing and len(missing) == len(p.variants):
        raise PayloadError(f"product {p.product_id}: no variant has a SKU")
    summary = [ProductVariant(sku=v.sku.strip() if v.sku else None, options=v.options, price=v.price,
                              track_stock=v.track_stock) for v in p.variants]
    out = []
    for v in p.variants:
        if not (v.sku and v.sku.strip()):
            continue  # carried in `variants` (the consistency check names it), not publishable without a key
        sku = v.sku.strip()
        stamp = p.updated_at.isoformat()
        meta = make_meta(source=p.source, event_type="ProductUpserted", identity=f"{p.product_id}:{sku}:{stamp}",
                         occurred_at=p.updated_at, received_at=received_at, source_event_id=p.source_event_id,
                         correlation_id=f"{p.source}:product:{p.product_id}")
        record = ProductUpserted(
            meta=meta, sku=sku, title=p.title, category=p.category, brand=p.brand, barcode=v.barcode, price=v.price,
            weight_grams=v.weight_grams, active=p.active, updated_at=p.updated_at, product_id=p.product_id,
            family=p.family, description=p.description, slug=p.slug, cost=v.cost,
            compare_at_price=v.compare_at_price, options=v.options, variants=summary, attributes=p.attributes,
            images=p.images, channels=p.channels, tags=p.tags, variant_id=v.variant_id,
            inventory_item_id=v.inventory_item_id)
        out.append(Outgoing(topic=TOPIC, key=sku, record=record))
    return out


def deleted(source: str, sku: str, product_id: str | None, deleted_at: datetime, received_at: datetime,
            source_event_id: str | None = None) -> Outgoing:
    """A ProductDeleted for one SKU."""
    identity = f"{product_id}:{sku}:{deleted_at.isoformat()}"
    meta = make_meta(source=source, event_type="ProductDeleted", identity=identity,
                     occurred_at=deleted_at, received_at=received_at, source_event_id=source_event_id,
                     correlation_id=f"{source}:product:{product_id or sku}")
    return Outgoing(topic=TOPIC, key=sku, record=ProductDeleted(meta=meta, sku=sku, product_id=product_id,
                                                                deleted_at=deleted_at))
