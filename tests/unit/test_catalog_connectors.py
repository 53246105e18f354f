"""Catalog in: Shopify/WooCommerce product webhooks, the PIM push (Akeneo events, generic JSON) → catalog.products."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shopstream.connectors.base import PayloadError
from shopstream.connectors.pim import PimConnector
from shopstream.connectors.shopify import ShopifyConnector, sign
from shopstream.connectors.signing import hmac_sha256_base64, hmac_sha256_hex, shopstream_headers
from shopstream.connectors.woocommerce import WooCommerceConnector
from shopstream.schemas.models import ProductDeleted, ProductUpserted
from tests.unit.catalog_fixtures import AKENEO_EVENTS, SHOPIFY_PRODUCT, WOO_PRODUCT, shopify_product

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _shopify(topic: str, payload: dict[str, Any]) -> list[Any]:
    body = _body(payload)
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": sign("s", body), "X-Shopify-Webhook-Id": "w1"}
    connector = ShopifyConnector("s")
    assert connector.verify(headers, body)
    return connector.translate(headers, body, NOW)


def test_shopify_product_becomes_one_upsert_per_variant_keyed_by_sku() -> None:
    out = _shopify("products/update", SHOPIFY_PRODUCT)
    assert [(o.topic, o.key) for o in out] == [("catalog.products", "SWE-MER-S-NAV"),
                                               ("catalog.products", "SWE-MER-M-NAV")]
    first = out[0].record
    assert isinstance(first, ProductUpserted)
    assert first.meta.source == "shopify" and first.product_id == "788032119674292922"
    assert first.options == {"Size": "S", "Color": "Navy"}
    assert first.price is not None and first.price.amount == Decimal("89.0000") and first.price.currency == "EUR"
    assert first.compare_at_price is not None and first.compare_at_price.amount == Decimal("99.0000")
    assert [v.sku for v in first.variants] == ["SWE-MER-S-NAV", "SWE-MER-M-NAV"]
    assert first.images[0].width == 1200 and first.images[0].format == "jpeg"
    assert first.brand == "Nordic Knit" and first.family == "apparel" and first.slug == "merino-wool-crew-sweater"
    assert first.tags == ["merino", "sweater", "winter"] and first.barcode == "4006381333931"
    assert first.updated_at == datetime(2026, 12, 5, 14, 30, tzinfo=UTC)


def test_shopify_product_redelivery_has_the_same_event_ids_and_a_change_new_ones() -> None:
    once = [o.event_id for o in _shopify("products/update", SHOPIFY_PRODUCT)]
    again = [o.event_id for o in _shopify("products/update", SHOPIFY_PRODUCT)]
    changed = [o.event_id for o in _shopify("products/update", shopify_product(updated_at="2026-12-06T09:00:00Z"))]
    assert once == again and set(once).isdisjoint(changed)


def test_shopify_variant_without_sku_is_listed_not_published_and_no_sku_at_all_is_refused() -> None:
    product = shopify_product()
    product["variants"][1]["sku"] = ""
    out = _shopify("products/create", product)
    assert [o.key for o in out] == ["SWE-MER-S-NAV"]
    assert [v.sku for v in out[0].record.variants] == ["SWE-MER-S-NAV", None]
    product["variants"][0]["sku"] = None
    with pytest.raises(PayloadError, match="no variant has a SKU"):
        _shopify("products/create", product)


def test_shopify_product_delete_becomes_one_deletion_per_known_sku_and_bad_price_refused() -> None:
    body = _body({"id": 788032119674292922})
    headers = {"X-Shopify-Topic": "products/delete", "X-Shopify-Hmac-Sha256": sign("s", body),
               "X-Shopify-Webhook-Id": "w2", "X-Shopify-Triggered-At": "2026-12-06T11:59:58.123456789Z"}
    connector = ShopifyConnector("s")
    assert connector.deleted_product(headers, body) == "788032119674292922"
    assert connector.deleted_product({**headers, "X-Shopify-Topic": "products/update"}, body) is None
    out = connector.translate_deleted(headers, body, NOW, ["SWE-MER-M-NAV", "SWE-MER-S-NAV"])
    assert [(o.topic, o.key) for o in out] == [("catalog.products", "SWE-MER-M-NAV"),
                                               ("catalog.products", "SWE-MER-S-NAV")]
    first = out[0].record
    assert isinstance(first, ProductDeleted) and first.product_id == "788032119674292922"
    assert first.meta.source == "shopify" and first.deleted_at == datetime(2026, 12, 6, 11, 59, 58, 123000, tzinfo=UTC)
    assert [o.event_id for o in connector.translate_deleted(headers, body, NOW, ["SWE-MER-M-NAV"])] == [out[0].event_id]
    with pytest.raises(PayloadError, match="names no SKU"):  # never silently acknowledged without the index
        connector.translate(headers, body, NOW)
    with pytest.raises(PayloadError):
        connector.deleted_product(headers, b'{"title": "no id"}')
    product = shopify_product()
    product["variants"][0]["price"] = "eighty"
    with pytest.raises(PayloadError, match="not a decimal amount"):
        _shopify("products/update", product)


def test_woocommerce_product_becomes_an_upsert() -> None:
    body = _body(WOO_PRODUCT)
    headers = {"X-WC-Webhook-Topic": "product.updated", "X-WC-Webhook-Signature": hmac_sha256_base64("w", body),
               "X-WC-Webhook-Delivery-ID": "d1"}
    connector = WooCommerceConnector("w")
    assert connector.verify(headers, body)
    [out] = connector.translate(headers, body, NOW)
    record = out.record
    assert out.key == "BELT-LTH-95" and isinstance(record, ProductUpserted) and record.meta.source == "woocommerce"
    assert record.price is not None and record.price.amount == Decimal("39.9000") and record.weight_grams == 250
    assert record.category == "Accessories" and record.images[0].format == "png" and record.images[0].width is None
    assert {(a.code, a.value) for a in record.attributes} >= {("Material", "Leather")}
    deleted = {**headers, "X-WC-Webhook-Topic": "product.deleted"}
    assert connector.deleted_product(deleted, _body({"id": 794})) == "794"
    assert connector.deleted_product(headers, body) is None
    [gone] = connector.translate_deleted(deleted, _body({"id": 794}), NOW, ["BELT-LTH-95"])
    assert gone.key == "BELT-LTH-95" and isinstance(gone.record, ProductDeleted) and gone.record.deleted_at == NOW
    with pytest.raises(PayloadError, match="names no SKU"):
        connector.translate(deleted, _body({"id": 794}), NOW)


def _akeneo_headers(body: bytes, secret: str = "ak", stamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if stamp is None else stamp)
    return {"X-Akeneo-Request-Signature": hmac_sha256_hex(secret, ts.encode() + b"." + body),
            "X-Akeneo-Request-Timestamp": ts, "Content-Type": "application/json"}


def test_akeneo_event_signature_and_timestamp_are_checked() -> None:
    connector, body = PimConnector("ak", "gen"), _body(AKENEO_EVENTS)
    assert connector.verify(_akeneo_headers(body), body)
    assert not connector.verify(_akeneo_headers(body, secret="other"), body)
    assert not connector.verify(_akeneo_headers(body, stamp=int(time.time()) - 301), body)
    assert not PimConnector("", "gen").verify(_akeneo_headers(body, secret=""), body)
    assert not connector.verify({}, body)


def test_akeneo_product_updated_maps_values_per_locale_and_channel() -> None:
    connector, body = PimConnector("ak", "gen"), _body(AKENEO_EVENTS)
    headers = _akeneo_headers(body)
    [out] = connector.translate(headers, body, NOW)
    record = out.record
    assert out.key == "SWE-MER-S-NAV" and isinstance(record, ProductUpserted) and record.meta.source == "pim"
    assert record.meta.source_event_id == "4b3e2a1c-9f0e-4d5c-8b7a-6e5f4d3c2b1a"
    assert record.family == "apparel" and record.product_id == "SWE-MER" and record.brand == "Nordic Knit"
    assert record.price is not None and record.price.amount == Decimal("89.0000")
    assert ("description", "en_GB", "ecommerce") in {(a.code, a.locale, a.channel) for a in record.attributes}
    assert record.images[0].url == "a/b/c/sweater_front.jpg" and record.images[0].format == "jpeg"
    assert connector.delivery_id_from_body(headers, body) == "akeneo:4b3e2a1c-9f0e-4d5c-8b7a-6e5f4d3c2b1a"


def test_akeneo_product_removed_and_model_events() -> None:
    events = {"events": [
        {"action": "product.removed", "event_id": "e1", "event_datetime": "2026-12-05T15:00:00+00:00",
         "data": {"resource": {"identifier": "SWE-MER-S-NAV"}}},
        {"action": "product_model.updated", "event_id": "e2", "event_datetime": "2026-12-05T15:00:00+00:00",
         "data": {"resource": {"code": "SWE-MER"}}}]}
    body = _body(events)
    [out] = PimConnector("ak", "gen").translate(_akeneo_headers(body), body, NOW)
    assert isinstance(out.record, ProductDeleted) and out.key == "SWE-MER-S-NAV"
    bad = _body({"events": [{"action": "product.updated", "event_id": "x", "event_datetime": "2026-12-05T15:00:00Z",
                             "data": {"resource": {}}}]})
    with pytest.raises(PayloadError, match="identifier"):
        PimConnector("ak", "gen").translate(_akeneo_headers(bad), bad, NOW)


def test_generic_pim_batch_signed_with_the_shopstream_scheme() -> None:
    payload = {"products": [
        {"sku": "A-1", "title": "Alpha", "updated_at": "2026-12-05T10:00:00Z", "price": {"amount": "10.5",
         "currency": "eur"}, "cost": {"amount": "4", "currency": "EUR"},
         "attributes": [{"code": "name", "value": "Alpha", "locale": "de_DE"}],
         "images": [{"url": "https://x/a.webp", "width": 1000, "height": 1000}],
         "variants": [{"sku": "A-2", "options": {"size": "L"}}], "options": {"size": "M"}},
        {"sku": "B-1", "updated_at": "2026-12-05T10:00:00Z", "deleted": True}]}
    body = _body(payload)
    connector = PimConnector("ak", "gen")
    headers = shopstream_headers("gen", body, "delivery-1")
    assert connector.verify(headers, body) and connector.delivery_id(headers) == "delivery-1"
    upsert, delete = connector.translate(headers, body, NOW)
    assert isinstance(upsert.record, ProductUpserted) and isinstance(delete.record, ProductDeleted)
    assert upsert.record.cost is not None and upsert.record.cost.amount == Decimal("4.0000")
    assert [v.sku for v in upsert.record.variants] == ["A-1", "A-2"]
    assert upsert.record.images[0].format == "webp"
    with pytest.raises(PayloadError, match="not a PIM product batch"):
        connector.translate(headers, _body({"products": [{"title": "no sku"}]}), NOW)
    assert not connector.verify(shopstream_headers("wrong", body), body)


def test_generic_pim_promotion_fans_out_per_sku() -> None:
    payload = {"promotions": [{"promotion_id": "XMAS", "skus": ["A-1", "B-1"], "price": {"amount": "9.99",
               "currency": "EUR"}, "starts_at": "2026-12-20T00:00:00Z", "ends_at": "2026-12-27T00:00:00Z"}]}
    body = _body(payload)
    out = PimConnector("ak", "gen").translate(shopstream_headers("gen", body), body, NOW)
    assert [(o.key, o.record.promotion_id) for o in out] == [("A-1", "XMAS"), ("B-1", "XMAS")]
    payload["promotions"][0]["ends_at"] = "2026-12-19T00:00:00Z"
    body = _body(payload)
    with pytest.raises(PayloadError, match="ends_at must be after"):
        PimConnector("ak", "gen").translate(shopstream_headers("gen", body), body, NOW)
