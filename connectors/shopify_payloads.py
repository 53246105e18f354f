"""Shopify's REST webhook payloads (Order, Refund, Fulfillment) as loose pydantic models, and their parsers.

Only the fields the connector reads are declared and validated; Shopify adds fields over time and the
others are ignored. Money is an exact Decimal (the order path reads JSON numbers as floats whose repr is
the text sent). What the payloads mean is the connector's business: `connectors/shopify.py`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopstream.connectors.payload import decimal_amount, parse_body


def shopify_decimal(value: Any, field: str) -> Decimal:
    """An exact Decimal of a Shopify amount (a decimal string, or a JSON number read as a float)."""
    # Shopify's order path reads JSON numbers as floats (see parse_order); their repr is the exact text sent.
    return decimal_amount(value, field, allow_float=True)


class _Loose(BaseModel):
    # Shopify adds fields over time; unknown ones are ignored, the ones we read are validated.
    model_config = ConfigDict(extra="ignore")


class ShopifyLineItem(_Loose):
    id: int | str
    sku: str | None = None
    variant_id: int | str | None = None
    quantity: int = Field(ge=0)
    price: Decimal
    title: str | None = None

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, v: Any) -> Decimal:
        return shopify_decimal(v, "price")

    def canonical_sku(self) -> str:
        return _canonical_sku(self.sku, self.variant_id, self.id)


def _canonical_sku(sku: str | None, variant_id: int | str | None, line_id: int | str) -> str:
    if sku and sku.strip():
        return sku.strip()
    if variant_id is not None:
        return f"shopify-variant-{variant_id}"
    return f"shopify-line-{line_id}"


class ShopifyAddress(_Loose):
    name: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    zip: str | None = None
    province_code: str | None = None
    country_code: str | None = None


class ShopifyCustomer(_Loose):
    id: int | str | None = None
    email: str | None = None
    orders_count: int | None = None


class ShopifyOrder(_Loose):
    id: int | str
    name: str | None = None
    email: str | None = None
    created_at: str
    updated_at: str | None = None
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    total_price: Decimal
    subtotal_price: Decimal | None = None
    total_tax: Decimal | None = None
    total_shipping_price_set: dict[str, Any] | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    browser_ip: str | None = None
    payment_gateway_names: list[str] = Field(default_factory=list)
    line_items: list[ShopifyLineItem]
    shipping_address: ShopifyAddress | None = None
    billing_address: ShopifyAddress | None = None
    customer: ShopifyCustomer | None = None
    cancelled_at: str | None = None
    cancel_reason: str | None = None

    @field_validator("total_price", "subtotal_price", "total_tax", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> Decimal | None:
        return None if v is None else shopify_decimal(v, "amount")


def parse_order(body: bytes) -> ShopifyOrder:
    """Validate a Shopify Order payload; PayloadError with a readable reason otherwise."""
    return parse_body(ShopifyOrder, body, "Shopify order", exact_numbers=False)


class ShopifyItemRef(_Loose):
    """An order line item as refunds and fulfillments repeat it (only what identifies the SKU)."""

    id: int | str
    sku: str | None = None
    variant_id: int | str | None = None

    def canonical_sku(self) -> str:
        return _canonical_sku(self.sku, self.variant_id, self.id)


class ShopifyMoneySet(_Loose):
    shop_money: dict[str, Any] | None = None

    def currency(self) -> str | None:
        code = (self.shop_money or {}).get("currency_code")
        return code if isinstance(code, str) and code else None


class ShopifyRefundedItem(ShopifyItemRef):
    price_set: ShopifyMoneySet | None = None


class ShopifyRefundLineItem(_Loose):
    id: int | str | None = None
    line_item_id: int | str | None = None
    quantity: int = Field(ge=0)
    line_item: ShopifyRefundedItem
    subtotal_set: ShopifyMoneySet | None = None


class ShopifyTransaction(_Loose):
    id: int | str | None = None
    kind: str
    status: str | None = None
    amount: Decimal
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    gateway: str | None = None
    parent_id: int | str | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> Decimal:
        amount = shopify_decimal(v, "amount")
        if amount < 0:
            raise ValueError(f"amount: must not be negative, got {v!r}")
        return amount


class ShopifyRefund(_Loose):
    id: int | str
    order_id: int | str
    created_at: str
    processed_at: str | None = None
    note: str | None = None
    refund_line_items: list[ShopifyRefundLineItem] = Field(default_factory=list)
    transactions: list[ShopifyTransaction] = Field(default_factory=list)


class ShopifyFulfillmentItem(ShopifyItemRef):
    quantity: int = Field(ge=0)


class ShopifyFulfillment(_Loose):
    id: int | str
    order_id: int | str
    status: str = Field(min_length=1)
    shipment_status: str | None = None
    created_at: str
    updated_at: str | None = None
    tracking_company: str | None = None
    tracking_number: str | None = None
    tracking_numbers: list[str] = Field(default_factory=list)
    tracking_url: str | None = None
    tracking_urls: list[str] = Field(default_factory=list)
    location_id: int | str | None = None
    line_items: list[ShopifyFulfillmentItem] = Field(default_factory=list)

    @field_validator("tracking_numbers", "tracking_urls", mode="before")
    @classmethod
    def _list(cls, v: Any) -> Any:
        return [] if v is None else v


def parse_refund(body: bytes) -> ShopifyRefund:
    """Validate a Shopify Refund payload (`refunds/create`); PayloadError with a readable reason otherwise."""
    return parse_body(ShopifyRefund, body, "Shopify refund")


def parse_fulfillment(body: bytes) -> ShopifyFulfillment:
    """Validate a Shopify Fulfillment payload; PayloadError with a readable reason otherwise."""
    return parse_body(ShopifyFulfillment, body, "Shopify fulfillment")
