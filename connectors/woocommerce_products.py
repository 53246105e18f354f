"""WooCommerce product webhooks (`product.created`, `product.updated`, `product.restored`; REST v3 Product), pure.

Called by the WooCommerce connector (same signature check and dedupe as orders).
- One ProductUpserted on `catalog.products` keyed by the product's `sku`: WooCommerce sends a variable
  product's variations as separate resources (only their ids are in `variations`), so each product or
  variation with a SKU is its own record; a product without SKU is refused (422, parked).
- `name` → title, `description` → description (`short_description` → attribute `short_description`),
  `slug`, `status` publish → active, `categories[0].name` → category and family, `tags[].name`,
  `attributes[]` (name → comma-joined options; `variation: true` ones are the variant's options),
  `images[]` (`src`, `alt`; WooCommerce sends no dimensions, so the image size checks fail until the PIM
  or a later source supplies them), `regular_price` (else `price`) and `sale_price` exact decimals in
  the shop currency (default EUR: the payload names none), `manage_stock` → stock tracked,
  `weight` in kg → grams.
- Ids: a variation (`parent_id` set) is product `parent_id`, variant `id` (the shop writer addresses it
  as `<parent>/<variation>`); a product is product `id`.
- Time: `date_modified_gmt` (UTC without offset), else `date_created_gmt`.
- `product.deleted` carries only the id: the webhook front looks its SKUs up in the product index
  (`connectors/product_index.py`; a variation is indexed under its own id, so deleting a variable product
  finds the SKU of the parent only) and `translate_deleted` makes one ProductDeleted per SKU at the time
  received; an id the index does not know is parked with the reason, never dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shopstream.connectors.base import Outgoing, PayloadError
from shopstream.connectors.payload import parse_body, representing
from shopstream.connectors.products import SourceProduct, SourceVariant, image_format, money, upserts
from shopstream.schemas.models import ProductAttribute, ProductImage

SOURCE = "woocommerce"
PRODUCT_TOPICS = ("product.created", "product.updated", "product.restored", "product.deleted")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WooNamed(_Loose):
    name: str


class WooAttribute(_Loose):
    name: str
    options: list[str] = Field(default_factory=list)
    option: str | None = None
    variation: bool = False


class WooImage(_Loose):
    src: str
    alt: str | None = None


class WooProduct(_Loose):
    id: int | str
    name: str
    sku: str | None = None
    slug: str | None = None
    status: str | None = None
    description: str | None = None
    short_description: str | None = None
    price: Any = None
    regular_price: Any = None
    sale_price: Any = None
    manage_stock: bool = False
    weight: str | None = None
    categories: list[WooNamed] = Field(default_factory=list)
    tags: list[WooNamed] = Field(default_factory=list)
    attributes: list[WooAttribute] = Field(default_factory=list)
    images: list[WooImage] = Field(default_factory=list)
    date_created_gmt: str | None = None
    date_modified_gmt: str | None = None
    parent_id: int | str | None = None  # a variation's product (0 or absent for a product)


def _gmt(value: str | None) -> datetime:
    if not value:
        raise PayloadError("date_modified_gmt / date_created_gmt: missing")
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise PayloadError(f"date_modified_gmt: not an ISO-8601 time: {value!r}") from None


def _grams(weight: str | None) -> int | None:
    try:
        return int(Decimal(weight) * 1000) if weight else None
    except InvalidOperation:
        raise PayloadError(f"weight: not a number: {weight!r}") from None


def _parent(p: WooProduct) -> str | None:
    """A variation's parent product id (None for a product)."""
    return str(p.parent_id) if p.parent_id not in (None, "", 0, "0") else None


def to_source_product(p: WooProduct, currency: str, source_event_id: str | None) -> SourceProduct:
    """The WooCommerce product as a SourceProduct (one variant: itself)."""
    options = {a.name: a.option or ", ".join(a.options) for a in p.attributes if a.variation}
    attributes = [ProductAttribute(code=a.name, value=a.option or ", ".join(a.options))
                  for a in p.attributes if not a.variation]
    if p.short_description:
        attributes.append(ProductAttribute(code="short_description", value=p.short_description))
    price = money(p.regular_price if p.regular_price not in (None, "") else p.price, currency, "regular_price")
    variant = SourceVariant(sku=p.sku, options=options, price=price, track_stock=p.manage_stock,
                            weight_grams=_grams(p.weight),
                            compare_at_price=None, variant_id=str(p.id) if _parent(p) else None)
    category = p.categories[0].name if p.categories else None
    return SourceProduct(
        source=SOURCE, product_id=_parent(p) or str(p.id), title=p.name,
        updated_at=_gmt(p.date_modified_gmt or p.date_created_gmt),
        variants=[variant], description=p.description or None, family=category, category=category, slug=p.slug,
        active=(p.status or "publish") == "publish", attributes=attributes,
        images=[ProductImage(url=i.src, format=image_format(i.src), alt=i.alt or None) for i in p.images],
        tags=[t.name for t in p.tags], source_event_id=source_event_id)


class WooDeletedProduct(_Loose):
    id: int | str


def deleted_product_id(body: bytes) -> str:
    """The id of a `product.deleted` body (PayloadError: not one)."""
    return str(parse_body(WooDeletedProduct, body, "WooCommerce product deletion").id)


def translate_product(topic: str, body: bytes, received_at: datetime, currency: str,
                      source_event_id: str | None) -> list[Outgoing]:
    """Canonical events for a product webhook (a deletion needs its SKUs: the connector's `translate_deleted`)."""
    if topic == "product.deleted":
        raise PayloadError("product.deleted names no SKU: it is translated with the product index's SKUs")
    product = parse_body(WooProduct, body, "WooCommerce product")
    with representing(f"product {product.id}"):
        return upserts(to_source_product(product, currency, source_event_id), received_at)
