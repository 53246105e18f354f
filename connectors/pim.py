"""PIM push: `POST /webhooks/pim` — Akeneo's Events API and a generic signed JSON (pure but for the clock).

Two formats on one endpoint, told apart by the signature header:

- **Akeneo Events API** (`X-Akeneo-Request-Signature`, `X-Akeneo-Request-Timestamp`): the signature is the
  hex HMAC-SHA256 of `<timestamp>.<raw body>` with the connection secret (`SHOPSTREAM_AKENEO_SECRET`);
  a timestamp more than 300 s away from now is refused (replay). Body `{"events": [...]}` (up to 10
  events), each `{action, event_id, event_datetime, author, author_type, pim_source, data: {resource}}`:
  `product.created|updated` → ProductUpserted (`identifier` = SKU; `family`; `categories[0]` →
  category; `parent` → product_id; `enabled` → active; `values.<code>: [{locale, scope, data}]` →
  attributes per locale and channel, where `name` (else `title`) gives the title, `description` the
  description, `brand`, `slug`, `ean` the barcode, a `pim_catalog_price_collection` value
  (`[{amount, currency}]`) under `price` / `cost` the price / cost (EUR first), and image attributes
  (codes in IMAGE_CODES) images — Akeneo sends a media path, no size: size checks fail until known);
  `product.removed` → ProductDeleted. `product_model.*` events are acknowledged, not published (their
  variants arrive as products). Dedupe: on the first event's `event_id` joined with the count (Akeneo
  sends no delivery id header); each event's id is its `source_event_id`.
- **Generic** (`X-Shopstream-Signature`, `X-Shopstream-Delivery-Id`: the shopstream scheme, timed like
  carrier/returns/ERP, with `SHOPSTREAM_PIM_SECRET`): `{"products": [PimProduct, ...], "promotions":
  [PimPromotion, ...]}` (up to 500 each); products in the row model of `shopstream ingest pim` JSON, a row
  with `"deleted": true` → ProductDeleted; a promotion (`promotion_id`, `skus`, `price`, `starts_at`,
  `ends_at`) → one PromotionScheduled per SKU.

All records: source `pim` (mastership, `topology/catalog.yaml`), keyed by SKU on `catalog.products`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopstream.connectors.base import Outgoing, PayloadError, lower_headers, make_meta, parse_time
from shopstream.connectors.payload import load_json_object, parse_body, representing
from shopstream.connectors.products import TOPIC, SourceProduct, SourceVariant, deleted, image_format, money, upserts
from shopstream.connectors.signing import (
    SHOPSTREAM_DELIVERY_ID_HEADER,
    SHOPSTREAM_SIGNATURE_HEADER,
    Secrets,
    ShopstreamSigned,
    hmac_sha256_hex,
    secrets_of,
    shopstream_delivery_id,
    signed_by,
    unix_seconds,
)
from shopstream.schemas.models import ProductAttribute, ProductImage, ProductVariant, PromotionScheduled

SOURCE = "pim"
AKENEO_SIGNATURE, AKENEO_TIMESTAMP = "x-akeneo-request-signature", "x-akeneo-request-timestamp"
TOLERANCE_S = 300
MAX_GENERIC = 500
#: Akeneo attribute codes read as images.
IMAGE_CODES = frozenset({"image", "images", "picture", "main_image", "image_1", "image_2", "image_3",
                         "variation_image"})


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PimImage(_Loose):
    url: str
    width: int | None = Field(default=None, ge=0)
    height: int | None = Field(default=None, ge=0)
    format: str | None = None
    alt: str | None = None


class PimAttribute(_Loose):
    code: str = Field(min_length=1)
    value: str
    locale: str | None = None
    channel: str | None = None


class PimMoney(_Loose):
    amount: Any
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")


class PimVariant(_Loose):
    sku: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    price: PimMoney | None = None
    track_stock: bool = True


class PimProduct(_Loose):
    """One product row of the generic PIM format (webhook and `ingest pim` JSON/CSV)."""

    sku: str = Field(min_length=1, max_length=255)
    title: str = ""
    product_id: str | None = None
    description: str | None = None
    family: str | None = None
    category: str | None = None
    brand: str | None = None
    barcode: str | None = None
    slug: str | None = None
    active: bool = True
    price: PimMoney | None = None
    cost: PimMoney | None = None
    weight_grams: int | None = Field(default=None, ge=0)
    options: dict[str, str] = Field(default_factory=dict)
    variants: list[PimVariant] = Field(default_factory=list)
    attributes: list[PimAttribute] = Field(default_factory=list)
    images: list[PimImage] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    updated_at: str
    deleted: bool = False


def _money(m: PimMoney | None, what: str) -> Any:
    return money(m.amount, m.currency, what) if m is not None else None


def generic_outgoing(p: PimProduct, received_at: datetime, source: str = SOURCE,
                     source_event_id: str | None = None) -> list[Outgoing]:
    """The canonical events of one generic PIM row (PayloadError when it cannot be represented)."""
    updated = parse_time(p.updated_at, "updated_at")
    if p.deleted:
        return [deleted(source, p.sku, p.product_id, updated, received_at, source_event_id)]
    variants = [SourceVariant(sku=v.sku, options=v.options, price=_money(v.price, f"variant {v.sku} price"),
                              track_stock=v.track_stock) for v in p.variants]
    this = SourceVariant(sku=p.sku, options=p.options, price=_money(p.price, "price"), barcode=p.barcode,
                         weight_grams=p.weight_grams, cost=_money(p.cost, "cost"))
    product = SourceProduct(
        source=source, product_id=p.product_id or p.sku, title=p.title, updated_at=updated, variants=[this],
        description=p.description, family=p.family, category=p.category, brand=p.brand, slug=p.slug, active=p.active,
        attributes=[ProductAttribute(**a.model_dump()) for a in p.attributes],
        images=[ProductImage(url=i.url, width=i.width, height=i.height, format=image_format(i.url, i.format),
                             alt=i.alt) for i in p.images],
        channels=p.channels, tags=p.tags, source_event_id=source_event_id)
    with representing(f"product {p.sku}"):
        out = upserts(product, received_at)
    if variants:
        # The row's own record carries the whole variant list the PIM sent (itself included).
        listed = ([] if any(v.sku == p.sku for v in variants) else [this]) + variants
        summary = [ProductVariant(sku=v.sku, options=v.options, price=v.price, track_stock=v.track_stock)
                   for v in listed]
        out = [Outgoing(o.topic, o.key, o.record.model_copy(update={"variants": summary})) for o in out]
    return out


# ----------------------------------------------------------------------------------------- Akeneo


def _text(data: Any) -> str:
    if isinstance(data, list):
        return ", ".join(_text(d) for d in data)
    if isinstance(data, dict):
        return json.dumps(data, sort_keys=True)
    return "" if data is None else str(data)


def _first(values: dict[str, Any], code: str) -> Any:
    entries = values.get(code) or []
    for e in entries:  # a value for every locale first, then any
        if isinstance(e, dict) and e.get("locale") is None:
            return e.get("data")
    return entries[0].get("data") if entries and isinstance(entries[0], dict) else None


def _price(values: dict[str, Any], code: str) -> Any:
    data = _first(values, code)
    if not isinstance(data, list) or not data:
        return None
    chosen = next((d for d in data if str(d.get("currency", "")).upper() == "EUR"), data[0])
    return money(chosen.get("amount"), str(chosen.get("currency") or "EUR"), code)


def akeneo_outgoing(event: dict[str, Any], received_at: datetime) -> list[Outgoing]:
    """Canonical events of one Akeneo Events API event."""
    action, event_id = str(event.get("action", "")), str(event.get("event_id") or "") or None
    resource = (event.get("data") or {}).get("resource") or {}
    sku = resource.get("identifier")
    if action.startswith("product_model."):
        return []
    if not isinstance(sku, str) or not sku.strip():
        raise PayloadError(f"event {event_id}: data.resource.identifier is required")
    when = parse_time(event.get("event_datetime"), "event_datetime")
    if action == "product.removed":
        return [deleted(SOURCE, sku, resource.get("parent"), when, received_at, event_id)]
    if action not in ("product.created", "product.updated"):
        return []
    values = resource.get("values") or {}
    if not isinstance(values, dict):
        raise PayloadError(f"event {event_id}: data.resource.values must be an object")
    attributes, images = [], []
    for code, entries in values.items():
        for e in entries if isinstance(entries, list) else []:
            if code in IMAGE_CODES and isinstance(e.get("data"), str):
                images.append(ProductImage(url=e["data"], format=image_format(e["data"])))
            elif code not in ("price", "cost"):
                attributes.append(ProductAttribute(code=code, value=_text(e.get("data")), locale=e.get("locale"),
                                                   channel=e.get("scope")))
    title = _first(values, "name") or _first(values, "title") or ""
    variant = SourceVariant(sku=sku, price=_price(values, "price"), cost=_price(values, "cost"),
                            barcode=_first(values, "ean") or None)
    updated = parse_time(resource["updated"], "updated") if resource.get("updated") else when
    categories = resource.get("categories") or []
    product = SourceProduct(
        source=SOURCE, product_id=str(resource.get("parent") or sku), title=_text(title), updated_at=updated,
        variants=[variant], description=_text(_first(values, "description")) or None, family=resource.get("family"),
        category=categories[0] if categories else None, brand=_text(_first(values, "brand")) or None,
        slug=_text(_first(values, "slug")) or None, active=bool(resource.get("enabled", True)),
        attributes=attributes, images=images, source_event_id=event_id)
    with representing(f"product {sku}"):
        return upserts(product, received_at)


class PimConnector:
    """`/webhooks/pim`: Akeneo Events API or the generic signed JSON."""

    name = "pim"
    #: Request headers a parked body keeps: what `verify`, `delivery_id` and `translate` read on a redrive.
    kept_headers: tuple[str, ...] = (AKENEO_SIGNATURE, AKENEO_TIMESTAMP, SHOPSTREAM_SIGNATURE_HEADER,
                                     SHOPSTREAM_DELIVERY_ID_HEADER)

    def __init__(self, akeneo_secret: Secrets, generic_secret: Secrets, *, now: Callable[[], float] = time.time,
                 tolerance_s: float = TOLERANCE_S, accept_legacy: bool = False) -> None:
        self._akeneo = secrets_of(akeneo_secret)
        self._generic = ShopstreamSigned(generic_secret, now=now, tolerance_s=tolerance_s,
                                         accept_legacy=accept_legacy)
        self._now, self._tolerance_s = now, tolerance_s

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        h = lower_headers(headers)
        if AKENEO_SIGNATURE in h:
            stamp = unix_seconds(h.get(AKENEO_TIMESTAMP, ""))
            if stamp is None or abs(self._now() - stamp) > self._tolerance_s:
                return False
            return signed_by(self._akeneo, h[AKENEO_SIGNATURE].strip().lower(), f"{stamp}.".encode() + body,
                             hmac_sha256_hex)
        return SHOPSTREAM_SIGNATURE_HEADER in h and self._generic.verify(headers, body)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return shopstream_delivery_id(headers)

    def delivery_id_from_body(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Akeneo names no delivery: its events' ids are the identity of a delivery."""
        try:
            events = load_json_object(body).get("events")
        except PayloadError:
            return None
        if not isinstance(events, list) or not events:
            return None
        return "akeneo:" + ",".join(str(e.get("event_id")) for e in events if isinstance(e, dict))[:500]

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        h = lower_headers(headers)
        if AKENEO_SIGNATURE in h:
            events = load_json_object(body).get("events")
            if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
                raise PayloadError("not an Akeneo event request: events must be a list of objects")
            return [out for e in events for out in akeneo_outgoing(e, received_at)]
        batch = parse_body(GenericBatch, body, "PIM product batch")
        return [*(out for p in batch.products for out in generic_outgoing(p, received_at, SOURCE, None)),
                *(out for p in batch.promotions for out in promotion_outgoing(p, received_at))]


class PimPromotion(_Loose):
    """A promotion of the generic format: one promotional price for some SKUs between a start and an end."""

    promotion_id: str = Field(min_length=1)
    skus: list[str] = Field(min_length=1, max_length=MAX_GENERIC)
    price: PimMoney
    starts_at: str
    ends_at: str
    name: str | None = None


def promotion_outgoing(p: PimPromotion, received_at: datetime) -> list[Outgoing]:
    """One PromotionScheduled per SKU of the promotion, keyed by SKU."""
    starts, ends = parse_time(p.starts_at, "starts_at"), parse_time(p.ends_at, "ends_at")
    if ends <= starts:
        raise PayloadError(f"promotion {p.promotion_id}: ends_at must be after starts_at")
    price = _money(p.price, "price")
    out = []
    for sku in p.skus:
        meta = make_meta(source=SOURCE, event_type="PromotionScheduled", identity=f"{p.promotion_id}:{sku}",
                         occurred_at=received_at, received_at=received_at, source_event_id=None,
                         correlation_id=f"{SOURCE}:promotion:{p.promotion_id}")
        with representing(f"promotion {p.promotion_id}"):
            record = PromotionScheduled(meta=meta, promotion_id=p.promotion_id, sku=sku, price=price, starts_at=starts,
                                        ends_at=ends, name=p.name)
        out.append(Outgoing(TOPIC, sku, record))
    return out


class GenericBatch(_Loose):
    products: list[PimProduct] = Field(default_factory=list, max_length=MAX_GENERIC)
    promotions: list[PimPromotion] = Field(default_factory=list, max_length=MAX_GENERIC)

    @model_validator(mode="after")
    def _not_empty(self) -> GenericBatch:
        if not self.products and not self.promotions:
            raise ValueError("products or promotions: at least one entry")
        return self
