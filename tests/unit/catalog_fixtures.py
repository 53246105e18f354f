"""Real-shaped catalog payloads shared by the catalog tests (Shopify REST Product, WooCommerce v3, Akeneo events)."""

from __future__ import annotations

import copy
from typing import Any

# Shopify REST Admin API Product resource as a products/update webhook delivers it (fields trimmed to the ones
# Shopify documents for the resource; ids and values are made up).
SHOPIFY_PRODUCT: dict[str, Any] = {
    "id": 788032119674292922,
    "title": "Merino Wool Crew Sweater for Men",
    "body_html": "<p>A warm crew-neck sweater knitted from 100% merino wool. Soft on the skin, breathable, "
                 "and machine washable at 30 degrees.</p>",
    "vendor": "Nordic Knit",
    "product_type": "apparel",
    "created_at": "2026-12-01T10:00:00-05:00",
    "handle": "merino-wool-crew-sweater",
    "updated_at": "2026-12-05T09:30:00-05:00",
    "published_at": "2026-12-01T10:05:00-05:00",
    "template_suffix": None,
    "published_scope": "web",
    "tags": "merino, sweater, winter",
    "status": "active",
    "admin_graphql_api_id": "gid://shopify/Product/788032119674292922",
    "variants": [
        {"id": 642667041472713922, "product_id": 788032119674292922, "title": "S / Navy", "price": "89.00",
         "sku": "SWE-MER-S-NAV", "position": 1, "inventory_policy": "deny", "compare_at_price": "99.00",
         "fulfillment_service": "manual", "inventory_management": "shopify", "option1": "S", "option2": "Navy",
         "option3": None, "created_at": "2026-12-01T10:00:00-05:00", "updated_at": "2026-12-05T09:30:00-05:00",
         "taxable": True, "barcode": "4006381333931", "grams": 420, "weight": 0.42, "weight_unit": "kg",
         "inventory_item_id": 1, "inventory_quantity": 12, "requires_shipping": True},
        {"id": 757650484644203962, "product_id": 788032119674292922, "title": "M / Navy", "price": "89.00",
         "sku": "SWE-MER-M-NAV", "position": 2, "inventory_policy": "deny", "compare_at_price": None,
         "fulfillment_service": "manual", "inventory_management": "shopify", "option1": "M", "option2": "Navy",
         "option3": None, "taxable": True, "barcode": "4006381333948", "grams": 440, "inventory_quantity": 7},
    ],
    "options": [
        {"id": 1, "product_id": 788032119674292922, "name": "Size", "position": 1, "values": ["S", "M"]},
        {"id": 2, "product_id": 788032119674292922, "name": "Color", "position": 2, "values": ["Navy"]},
    ],
    "images": [
        {"id": 1, "product_id": 788032119674292922, "position": 1, "alt": "Navy merino sweater, front",
         "width": 1200, "height": 1500, "src": "https://cdn.shopify.com/s/files/1/sweater-front.jpg?v=1",
         "variant_ids": []},
    ],
    "image": None,
}

WOO_PRODUCT: dict[str, Any] = {
    "id": 794, "name": "Premium Quality Leather Belt", "slug": "premium-quality-leather-belt",
    "date_created_gmt": "2026-12-01T12:00:00", "date_modified_gmt": "2026-12-05T08:00:00", "type": "simple",
    "status": "publish", "description": "<p>Full-grain leather belt with a brushed steel buckle.</p>",
    "short_description": "<p>Leather belt.</p>", "sku": "BELT-LTH-95", "price": "39.90", "regular_price": "39.90",
    "sale_price": "", "manage_stock": True, "stock_quantity": 20, "weight": "0.25",
    "categories": [{"id": 9, "name": "Accessories", "slug": "accessories"}],
    "tags": [{"id": 1, "name": "leather", "slug": "leather"}],
    "images": [{"id": 792, "src": "https://example.com/wp-content/uploads/belt.png", "name": "belt", "alt": ""}],
    "attributes": [{"id": 0, "name": "Material", "position": 0, "visible": True, "variation": False,
                    "options": ["Leather"]}],
    "variations": [],
}

AKENEO_EVENTS: dict[str, Any] = {"events": [{
    "action": "product.updated", "event_id": "4b3e2a1c-9f0e-4d5c-8b7a-6e5f4d3c2b1a",
    "event_datetime": "2026-12-05T14:00:00+00:00", "author": "julia", "author_type": "ui",
    "pim_source": "https://pim.example.com",
    "data": {"resource": {
        "identifier": "SWE-MER-S-NAV", "enabled": True, "family": "apparel", "categories": ["sweaters"],
        "groups": [], "parent": "SWE-MER", "created": "2026-11-01T10:00:00+00:00",
        "updated": "2026-12-05T14:00:00+00:00",
        "values": {
            "name": [{"locale": "de_DE", "scope": None, "data": "Merino-Pullover mit Rundhals"},
                     {"locale": "en_GB", "scope": None, "data": "Merino crew-neck sweater"}],
            "description": [{"locale": "de_DE", "scope": "ecommerce",
                             "data": "Warmer Pullover aus 100 % Merinowolle, weich, atmungsaktiv und waschbar."},
                            {"locale": "en_GB", "scope": "ecommerce",
                             "data": "Warm sweater knitted from 100% merino wool, soft, breathable, washable."}],
            "brand": [{"locale": None, "scope": None, "data": "Nordic Knit"}],
            "material": [{"locale": None, "scope": None, "data": "wool"}],
            "color": [{"locale": None, "scope": None, "data": "navy"}],
            "size": [{"locale": None, "scope": None, "data": "S"}],
            "price": [{"locale": None, "scope": None, "data": [{"amount": "89.00", "currency": "EUR"}]}],
            "image": [{"locale": None, "scope": None, "data": "a/b/c/sweater_front.jpg"}],
        }}},
}]}


def shopify_product(**changes: Any) -> dict[str, Any]:
    """A deep copy of SHOPIFY_PRODUCT with top-level changes."""
    product = copy.deepcopy(SHOPIFY_PRODUCT)
    product.update(changes)
    return product
