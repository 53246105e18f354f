# GENERATED FILE, DO NOT EDIT: written by `python -m shopstream.schemas.codegen` from schemas/*.avsc.
# Edit the .avsc files and re-run the generator (tests/unit/test_schemas.py fails when this is stale).
"""Pydantic v2 models of the canonical Avro records (namespace io.shopstream.events)."""

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


def _utc_millis(value: datetime) -> datetime:
    """Timestamps must be tz-aware; stored as UTC with millisecond precision (what Avro keeps)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (a naive datetime is ambiguous)")
    if value.tzinfo is UTC and not value.microsecond % 1000:  # already normalised (every derived record's)
        return value
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid_str(value: Any) -> Any:
    """Canonical lower-case UUID string from a UUID or a string; anything else fails validation."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        if _CANONICAL_UUID.fullmatch(value):  # already canonical (every id shopstream derives): as is
            return value
        return str(uuid.UUID(value))
    return value


def _no_float(value: Any) -> Any:
    """Exact decimals only: a float has already lost the amount."""
    if isinstance(value, float):
        raise ValueError("decimal values must not be floats; pass a Decimal, int or str")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc_millis)]
UuidStr = Annotated[str, BeforeValidator(_uuid_str)]
AvroInt = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
AvroLong = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Decimal6x4 = Annotated[Decimal, BeforeValidator(_no_float), Field(max_digits=6, decimal_places=4)]
Decimal18x4 = Annotated[Decimal, BeforeValidator(_no_float), Field(max_digits=18, decimal_places=4)]


# Graded condition of a returned item. Unknown future symbols read as damaged.
ConditionGrade = Literal["as_new", "good", "damaged", "unsellable"]


# Canonical fulfillment status. Unknown future symbols read as exception.
FulfillmentStatus = Literal["unfulfilled", "partially_shipped", "shipped", "delivered", "exception"]


# Canonical order status. Unknown future symbols read as on_hold (a person looks).
OrderStatus = Literal[
    "pending_payment",
    "on_hold",
    "ready_to_fulfill",
    "partially_shipped",
    "shipped",
    "delivered",
    "return_requested",
    "returned",
    "refunded",
    "cancelled",
]


# Canonical payment status. Unknown future symbols read as pending (nothing is released).
PaymentStatus = Literal[
    "pending",
    "authorized",
    "paid",
    "partially_paid",
    "failed",
    "partially_refunded",
    "refunded",
    "voided",
    "disputed",
]


# What happened to a reservation. Unknown future symbols read as adjust.
ReservationAction = Literal["reserve", "release", "adjust", "ship", "commit"]


# Canonical return status. Unknown future symbols read as requested.
ReturnStatus = Literal["none", "requested", "received", "partially_returned", "returned"]


# Alert severity. Unknown future symbols read as warning.
Severity = Literal["info", "warning", "critical"]


# What became of a command towards the shop. Unknown future symbols read as failed.
ShopCommandOutcome = Literal["applied", "superseded", "failed"]


# Support ticket priority. Unknown future symbols read as normal.
TicketPriority = Literal["low", "normal", "high", "urgent"]


class Address(BaseModel):
    """A postal address; every part optional because sources differ."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.Address"

    name: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    region: str | None = None
    # ISO 3166-1 alpha-2.
    country_code: str | None = None
    company: str | None = None
    # Carriers print it on labels; optional.
    phone: str | None = None


class EventMeta(BaseModel):
    """Envelope carried as the first field of every published record."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.EventMeta"

    # Unique id of this event (UUID); the idempotency key.
    event_id: UuidStr
    # Record name of the payload, e.g. OrderPlaced.
    event_type: str
    # When it happened at the source (source clock, UTC).
    occurred_at: UtcDatetime
    # When shopstream recorded it (UTC).
    recorded_at: UtcDatetime
    # System that produced it, e.g. shopify, stripe, erp, shopstream.orders.
    source: str
    # The source system's own id for this event (webhook id, Stripe event id).
    source_event_id: str | None = None
    # Id shared by every event of one business flow.
    correlation_id: str | None = None
    # event_id of the event that caused this one.
    causation_id: str | None = None


class AnomalyAlert(BaseModel):
    """Something looks statistically wrong (alerts.anomalies)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.AnomalyAlert"

    meta: EventMeta
    # e.g. order_rate_drop, refund_spike, stock_drift.
    kind: str
    # What it is about: a SKU, a source system, a shop.
    subject: str
    severity: Severity
    summary: str | None = None
    # Measured values, as strings.
    evidence: dict[str, str] = Field(default_factory=dict)
    detected_at: UtcDatetime


class AtpLocation(BaseModel):
    """Stock figures of one SKU at one location."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.AtpLocation"

    location: str
    on_hand: AvroInt
    reserved: AvroInt
    safety_stock: AvroInt
    incoming: AvroInt
    as_of: UtcDatetime


class AtpLevel(BaseModel):
    """Available-to-promise of one SKU (compacted topic inventory.atp)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.AtpLevel"

    meta: EventMeta
    sku: str
    on_hand: AvroInt
    reserved: AvroInt
    safety_stock: AvroInt
    incoming: AvroInt
    # on_hand - reserved - safety_stock (may be negative: oversold).
    available: AvroInt
    version: AvroLong
    updated_at: UtcDatetime
    locations: list[AtpLocation] = Field(default_factory=list)


class Money(BaseModel):
    """An exact amount in one currency. Never a float."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.Money"

    # Amount in major units, at most 4 decimal places.
    amount: Decimal18x4
    # ISO 4217 upper-case currency code, e.g. EUR.
    currency: Annotated[str, Field(pattern="^[A-Z]{3}$")]


class OrderLine(BaseModel):
    """One line of an order."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.OrderLine"

    # The source's line id, stable across updates of the order.
    line_id: str
    sku: str
    quantity: AvroInt
    # Price of one unit.
    unit_price: Money
    title: str | None = None
    # Tax rate of the line as a fraction (0.19), when the source itemises it.
    tax_rate: Decimal18x4 | None = None
    # Tax of the whole line, when the source itemises it.
    tax: Money | None = None
    # Discount on the whole line (unit_price x quantity - discount is charged).
    discount: Money | None = None
    # Weight of one unit in grams, when the shop knows it (return labels).
    grams: AvroInt | None = None


class CancelFulfillment(BaseModel):
    """Command (commands.fulfillment): do not ship these lines."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.CancelFulfillment"

    meta: EventMeta
    order_id: str
    # Lines to cancel; empty means the whole order.
    lines: list[OrderLine] = Field(default_factory=list)
    reason: str | None = None


class CancelOrder(BaseModel):
    """
    Command (commands.shop, keyed by order id): cancel the order in the shop (a person or a rule
    rejected it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.CancelOrder"

    meta: EventMeta
    order_id: str
    reason: str | None = None
    # Who decided (user:<name> or review rules).
    requested_by: str | None = None


class ChargebackOpened(BaseModel):
    """The buyer's bank opened a dispute / chargeback."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ChargebackOpened"

    meta: EventMeta
    order_id: str
    # The provider's payment / charge / intent id.
    payment_id: str
    # e.g. stripe, paypal, adyen, shopify_payments.
    provider: str
    dispute_id: str
    # Disputed amount.
    amount: Money
    opened_at: UtcDatetime
    # Provider's normalised reason, e.g. fraudulent, product_not_received.
    reason_code: str
    # Card network reason code, e.g. Visa 10.4.
    network_reason_code: str | None = None
    reason: str | None = None
    # Deadline for submitting evidence.
    respond_by: UtcDatetime | None = None


class Customer(BaseModel):
    """The buyer as the shop knows them."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.Customer"

    customer_id: str | None = None
    email: str | None = None
    # Orders placed so far, per the shop.
    orders_count: AvroInt | None = None
    # Full name of the buyer (an invoice names them).
    name: str | None = None
    # The buyer's VAT id when given (B2B invoices).
    vat_id: str | None = None


class InvoiceLine(BaseModel):
    """One line of an invoice or credit note: exact net, tax and gross of the whole line."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.InvoiceLine"

    # The order line it bills (null: shipping or an amount-only credit).
    line_id: str | None = None
    # item | shipping | refund.
    kind: str = 'item'
    sku: str | None = None
    title: str | None = None
    quantity: AvroInt
    # Price of one unit as the shop showed it (gross when taxes_included).
    unit_price: Money
    discount: Money | None = None
    # Fraction, e.g. 0.19.
    tax_rate: Decimal18x4
    net: Money
    tax: Money
    gross: Money


class CreateCreditNote(BaseModel):
    """
    Command (commands.erp, keyed by order id): issue a credit note for a refund, referencing the
    invoice.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.CreateCreditNote"

    meta: EventMeta
    # Deterministic: uuid5 of order id, refund id and refunded figure.
    credit_note_id: str
    # The invoice it corrects.
    invoice_id: str
    order_id: str
    order_number: str | None = None
    # The provider's refund id (RefundIssued.refund_id).
    refund_id: str
    payment_reference: str | None = None
    return_id: str | None = None
    reason: str | None = None
    currency: str
    customer: Customer | None = None
    billing_address: Address | None = None
    # Credited lines (positive amounts): per refunded SKU, or one line of kind refund for an amount-only
    # refund.
    lines: list[InvoiceLine] = Field(default_factory=list)
    total_net: Money
    total_tax: Money
    # Equals the refunded amount.
    total_gross: Money


class CreateInvoice(BaseModel):
    """
    Command (commands.erp, keyed by order id): issue an invoice for an order (on capture) or for one
    shipment (invoice on shipment).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.CreateInvoice"

    meta: EventMeta
    order_id: str
    order_number: str | None = None
    amount: Money
    tax: Money | None = None
    shipping: Money | None = None
    lines: list[OrderLine]
    customer: Customer | None = None
    billing_address: Address | None = None
    # Deterministic: uuid5 of the order id (and the shipment id for an invoice per shipment); the ERP
    # dedupes on it.
    invoice_id: str | None = None
    # The shipment this invoice bills (invoice on shipment); null: the whole order.
    shipment_id: str | None = None
    currency: str | None = None
    shipping_address: Address | None = None
    # Billed lines with exact net/tax/gross, shipping as a line of kind shipping.
    invoice_lines: list[InvoiceLine] = Field(default_factory=list)
    # Sum of the line discounts (already deducted in the lines).
    discounts: Money | None = None
    total_net: Money | None = None
    total_tax: Money | None = None
    total_gross: Money | None = None
    # The provider's payment id (largest capture or latest authorisation).
    payment_reference: str | None = None
    payment_provider: str | None = None
    # The invoicing policy rule that decided (invoicing.on_capture / invoicing.on_shipment).
    policy: str | None = None


class ReturnLine(BaseModel):
    """Quantity of one SKU in a return."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ReturnLine"

    sku: str
    quantity: AvroInt
    # The order line returned.
    line_id: str | None = None
    # e.g. too_small, defective, not_as_described, changed_mind.
    reason: str | None = None
    # Set on inspection.
    condition_grade: ConditionGrade | None = None
    # Set on inspection.
    restockable: bool | None = None


class CreateReturnLabel(BaseModel):
    """Command (commands.fulfillment): create a carrier return label."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.CreateReturnLabel"

    meta: EventMeta
    order_id: str
    return_id: str
    carrier: str | None = None
    ship_from: Address | None = None
    customer_email: str | None = None
    lines: list[ReturnLine] = Field(default_factory=list)
    # Carrier service from the returns policy.
    service: str | None = None
    # The returns warehouse of the policy.
    ship_to: Address | None = None
    # Parcel weight: units x unit grams (policy default where the shop gave none).
    weight_grams: AvroInt | None = None
    customer_name: str | None = None
    order_number: str | None = None


class GoodsReceived(BaseModel):
    """Units of a SKU were received into a location."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.GoodsReceived"

    meta: EventMeta
    sku: str
    location: str
    quantity: AvroInt
    purchase_order: str | None = None
    supplier: str | None = None
    received_at: UtcDatetime


class HoldOrder(BaseModel):
    """Command (commands.fulfillment): do not fulfil the order until released."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.HoldOrder"

    meta: EventMeta
    order_id: str
    reasons: list[str]


class RefundLine(BaseModel):
    """Quantity of one SKU a refund covers."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.RefundLine"

    sku: str
    quantity: AvroInt
    # Amount for this line, if itemised.
    amount: Money | None = None


class IssueRefund(BaseModel):
    """Command (commands.payments): refund money to the buyer."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.IssueRefund"

    meta: EventMeta
    order_id: str
    payment_id: str | None = None
    provider: str | None = None
    amount: Money
    reason: str
    return_id: str | None = None
    lines: list[RefundLine] = Field(default_factory=list)
    # Refund policy rule that decided.
    policy: str | None = None


class OrderCancelled(BaseModel):
    """An order, or some of its lines, was cancelled at the source."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.OrderCancelled"

    meta: EventMeta
    order_id: str
    cancelled_at: UtcDatetime
    reason: str | None = None
    source_financial_status: str | None = None
    # Cancelled lines; empty means the whole order.
    lines: list[OrderLine] = Field(default_factory=list)


class OrderPlaced(BaseModel):
    """A new order arrived from a shop front."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.OrderPlaced"

    meta: EventMeta
    order_id: str
    # Human-facing order number, e.g. #1001.
    order_number: str | None = None
    # When the order was placed.
    placed_at: UtcDatetime
    # ISO 4217 currency of the order.
    currency: Annotated[str, Field(pattern="^[A-Z]{3}$")]
    total: Money
    subtotal: Money | None = None
    total_tax: Money | None = None
    shipping: Money | None = None
    lines: list[OrderLine]
    customer: Customer | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    # The source's raw payment status, mapped via topology/mappings.
    source_financial_status: str | None = None
    # The source's raw fulfillment status.
    source_fulfillment_status: str | None = None
    # IP address the order was placed from (Shopify browser_ip).
    client_ip: str | None = None
    # Payment gateway of the checkout, e.g. shopify_payments, paypal (Shopify payment_gateway_names).
    payment_gateway: str | None = None
    # Line prices and shipping include tax (Shopify taxes_included); null: the invoicing policy decides.
    taxes_included: bool | None = None


class OrderReviewed(BaseModel):
    """The review rules' verdict on an order snapshot (review.decisions, keyed by order id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.OrderReviewed"

    meta: EventMeta
    order_id: str
    # pass | allow | flag | hold | block (the strongest fired action).
    action: str
    # review:<rule-id> of every fired hold rule.
    hold_reasons: list[str] = Field(default_factory=list)
    # Rules that fired (mode on), in evaluation order.
    rule_ids: list[str] = Field(default_factory=list)
    # Rules in shadow mode that would have fired (no effect).
    shadow_rule_ids: list[str] = Field(default_factory=list)
    rules_version: str
    # <rule-id>.<fact> -> the value the rule saw.
    evidence: dict[str, str] = Field(default_factory=dict)
    # The ReviewItem raised for a person (flag, hold, block).
    work_item_id: str | None = None
    # Source time of the snapshot decided.
    facts_as_of: UtcDatetime | None = None


class OrderState(BaseModel):
    """Canonical state of one order (compacted topic orders.state)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.OrderState"

    meta: EventMeta
    order_id: str
    status: OrderStatus
    payment_status: PaymentStatus
    fulfillment_status: FulfillmentStatus
    return_status: ReturnStatus
    hold_reasons: list[str]
    # ISO 4217 currency of the order.
    currency: Annotated[str, Field(pattern="^[A-Z]{3}$")]
    total: Money
    # Sum captured so far.
    captured: Money
    # Sum refunded so far.
    refunded: Money
    lines: list[OrderLine]
    placed_at: UtcDatetime | None = None
    cancelled_at: UtcDatetime | None = None
    # updated_at of the newest source snapshot applied.
    source_updated_at: UtcDatetime | None = None
    # Increments by one with every applied change.
    version: AvroLong
    updated_at: UtcDatetime
    # event_id of the last event applied.
    last_event_id: str


class OrderStatusSnapshot(BaseModel):
    """The four status dimensions of an order at one point."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.OrderStatusSnapshot"

    status: OrderStatus
    payment_status: PaymentStatus
    fulfillment_status: FulfillmentStatus
    return_status: ReturnStatus
    hold_reasons: list[str]


class OrderStatusChanged(BaseModel):
    """Audit trail: one status change of an order, who/what/why."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.OrderStatusChanged"

    meta: EventMeta
    order_id: str
    # OrderState.version after the change.
    version: AvroLong
    # Null for the first state of an order.
    previous: OrderStatusSnapshot | None = None
    current: OrderStatusSnapshot
    cause_event_id: str
    cause_event_type: str
    # Source system of the causing event.
    source: str
    # Name of the rule/mapping that decided.
    rule: str
    # Why, in a person's words (decisions on work items).
    note: str | None = None
    # The work item a decision was about.
    work_item_id: str | None = None


class OrderUpdated(BaseModel):
    """A whole-order snapshot after a change at the source (as Shopify sends)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.OrderUpdated"

    meta: EventMeta
    order_id: str
    # Human-facing order number, e.g. #1001.
    order_number: str | None = None
    # The source's updated_at of this snapshot; orders snapshots by it.
    updated_at: UtcDatetime
    # ISO 4217 currency of the order.
    currency: Annotated[str, Field(pattern="^[A-Z]{3}$")]
    total: Money
    subtotal: Money | None = None
    total_tax: Money | None = None
    shipping: Money | None = None
    lines: list[OrderLine]
    customer: Customer | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    # The source's raw payment status, mapped via topology/mappings.
    source_financial_status: str | None = None
    # The source's raw fulfillment status.
    source_fulfillment_status: str | None = None
    # IP address the order was placed from (Shopify browser_ip).
    client_ip: str | None = None
    # Payment gateway of the checkout, e.g. shopify_payments, paypal (Shopify payment_gateway_names).
    payment_gateway: str | None = None
    # Line prices and shipping include tax (Shopify taxes_included); null: the invoicing policy decides.
    taxes_included: bool | None = None


class PaymentAuthorized(BaseModel):
    """Funds were authorised (reserved) but not yet captured."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.PaymentAuthorized"

    meta: EventMeta
    order_id: str
    # The provider's payment / charge / intent id.
    payment_id: str
    # e.g. stripe, paypal, adyen, shopify_payments.
    provider: str
    amount: Money
    authorized_at: UtcDatetime
    # When the authorisation lapses.
    expires_at: UtcDatetime | None = None
    # Payment method, e.g. card, paypal, klarna.
    method: str | None = None
    authorization_code: str | None = None
    # Provider's risk assessment, e.g. normal, elevated, highest.
    risk_level: str | None = None


class PaymentCaptured(BaseModel):
    """Funds were captured (money moved)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.PaymentCaptured"

    meta: EventMeta
    order_id: str
    # The provider's payment / charge / intent id.
    payment_id: str
    # e.g. stripe, paypal, adyen, shopify_payments.
    provider: str
    amount: Money
    captured_at: UtcDatetime
    # Provider fee, if reported.
    fee: Money | None = None
    # False when further partial captures may follow.
    final_capture: bool = True
    method: str | None = None


class PaymentFailed(BaseModel):
    """An authorisation or capture attempt failed."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.PaymentFailed"

    meta: EventMeta
    order_id: str
    # The provider's payment / charge / intent id.
    payment_id: str
    # e.g. stripe, paypal, adyen, shopify_payments.
    provider: str
    amount: Money
    failed_at: UtcDatetime
    # Provider failure code.
    failure_code: str | None = None
    # Issuer decline code, for cards.
    decline_code: str | None = None
    failure_message: str | None = None
    # Whether the provider marks the failure as transient.
    retryable: bool = False


class ProductAttribute(BaseModel):
    """One attribute value of a product, for one locale and channel (null: every locale/channel)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ProductAttribute"

    code: str
    # The value as text (numbers, booleans, option codes as strings; lists comma-separated).
    value: str
    # e.g. de_DE; null: not localisable.
    locale: str | None = None
    # Akeneo scope, e.g. ecommerce; null: every channel.
    channel: str | None = None


class ProductDeleted(BaseModel):
    """A product (one SKU) was deleted in a source."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ProductDeleted"

    meta: EventMeta
    sku: str
    # The parent product's id in the source.
    product_id: str | None = None
    deleted_at: UtcDatetime


class ProductImage(BaseModel):
    """One product image with what is known of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ProductImage"

    url: str
    # Pixels.
    width: AvroInt | None = None
    # Pixels.
    height: AvroInt | None = None
    # jpeg | png | webp | gif ... (lower case), from the source or the URL.
    format: str | None = None
    # Alt text.
    alt: str | None = None


class ProductQuality(BaseModel):
    """
    The catalog worker's quality document of one SKU (catalog.quality, compacted, keyed by SKU):
    completeness and failed checks per channel and locale.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ProductQuality"

    meta: EventMeta
    sku: str
    # The SKU's catalog state version (the view keeps the newest).
    version: AvroLong
    # Lowest check score over the channels and locales, 0-100.
    score: AvroInt
    # Every blocking check passes everywhere.
    complete: bool
    # The quality document as JSON (GET /v1/products/{sku}/quality).
    document: str


class ProductVariant(BaseModel):
    """One variant of a product, as carried on ProductUpserted.variants."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ProductVariant"

    # Null when the source has none (a check fails on it).
    sku: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    # Selling price.
    price: Money | None = None
    # Whether the shop tracks stock for it.
    track_stock: bool = True


class ProductUpserted(BaseModel):
    """A product (one SKU) was created or changed in a source (PIM, shop, ERP, file ingest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ProductUpserted"

    meta: EventMeta
    sku: str
    title: str
    category: str | None = None
    brand: str | None = None
    # GTIN/EAN.
    barcode: str | None = None
    price: Money | None = None
    returnable: bool = True
    # Reorder when available falls to this.
    reorder_point: AvroInt | None = None
    # Usual order quantity.
    reorder_quantity: AvroInt | None = None
    weight_grams: AvroInt | None = None
    active: bool = True
    updated_at: UtcDatetime
    # The parent product's id in the source (Shopify product id, Akeneo parent model); variants of one
    # product share it.
    product_id: str | None = None
    # Product family (Akeneo family, Shopify product_type): which checks and variant axes apply.
    family: str | None = None
    # Main description (HTML allowed) in the source's default locale.
    description: str | None = None
    # URL handle.
    slug: str | None = None
    # Purchase cost (ERP is master).
    cost: Money | None = None
    # Reference (strike-through) price.
    compare_at_price: Money | None = None
    # This variant's axis values, e.g. {size: M, color: red}.
    options: dict[str, str] = Field(default_factory=dict)
    # Every variant of the parent product as the source knows it (for variant consistency checks).
    variants: list[ProductVariant] = Field(default_factory=list)
    # Attribute values per locale and channel (texts included: name, description, meta_description...).
    attributes: list[ProductAttribute] = Field(default_factory=list)
    images: list[ProductImage] = Field(default_factory=list)
    # Channels the product is published to (empty: every channel).
    channels: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    # This SKU's own id in the source when it is a variant of product_id (Shopify variant id,
    # WooCommerce variation id); null for a simple product or a source without one.
    variant_id: str | None = None
    # Shopify: the variant's inventory item id (the shop writer sets stock on it); null from other
    # sources.
    inventory_item_id: str | None = None


class PromotionScheduled(BaseModel):
    """
    A temporary price for one SKU between a start and an end (catalog.products, keyed by SKU); one per
    SKU of a promotion.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.PromotionScheduled"

    meta: EventMeta
    promotion_id: str
    sku: str
    # The promotional price.
    price: Money
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    name: str | None = None


class RefundIssued(BaseModel):
    """Money was returned to the buyer."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.RefundIssued"

    meta: EventMeta
    order_id: str
    # The provider's payment / charge / intent id.
    payment_id: str
    # e.g. stripe, paypal, adyen, shopify_payments.
    provider: str
    refund_id: str
    amount: Money
    refunded_at: UtcDatetime
    reason: str | None = None
    # The return this refund settles, if any.
    return_id: str | None = None
    # Refunded items; empty for an amount-only refund.
    lines: list[RefundLine] = Field(default_factory=list)


class ReleaseOrder(BaseModel):
    """Command (commands.fulfillment): the order may be fulfilled."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ReleaseOrder"

    meta: EventMeta
    order_id: str
    reason: str | None = None


class ReorderRequest(BaseModel):
    """Command (commands.erp): suggest a purchase order for a SKU."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ReorderRequest"

    meta: EventMeta
    sku: str
    available: AvroInt
    reorder_point: AvroInt
    suggested_quantity: AvroInt
    # Units already on order.
    incoming: AvroInt | None = None
    location: str | None = None


class ReservationChanged(BaseModel):
    """
    Internal (inventory.reservations): the reservation of one order for one SKU changed. quantity is
    the order's total reserved units for (order_id, sku) after the action, so re-applying is a no-op;
    ship and commit move units out of the reservation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ReservationChanged"

    meta: EventMeta
    sku: str
    order_id: str
    action: ReservationAction
    # Reserved units for (order_id, sku) after this action.
    quantity: AvroInt
    # Signed change against the previous reservation, informational.
    delta: AvroInt | None = None
    location: str | None = None
    line_id: str | None = None
    reason: str | None = None


class ReturnInspected(BaseModel):
    """Returned items were graded; restockable ones go back to stock."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ReturnInspected"

    meta: EventMeta
    order_id: str
    return_id: str
    location: str | None = None
    lines: list[ReturnLine]
    inspected_at: UtcDatetime
    inspector: str | None = None


class ReturnReceived(BaseModel):
    """Returned items arrived at a location."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ReturnReceived"

    meta: EventMeta
    order_id: str
    return_id: str
    location: str | None = None
    lines: list[ReturnLine]
    received_at: UtcDatetime
    tracking_number: str | None = None


class ReturnRequested(BaseModel):
    """The buyer asked to return items."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ReturnRequested"

    meta: EventMeta
    order_id: str
    return_id: str
    lines: list[ReturnLine]
    requested_at: UtcDatetime
    customer_note: str | None = None


class ReviewItem(BaseModel):
    """Work item for a person (review.queue): holds, rejected transitions, mismatches."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ReviewItem"

    meta: EventMeta
    order_id: str
    # e.g. hold, rejected_transition, amount_mismatch.
    kind: str
    reason: str
    details: dict[str, str] = Field(default_factory=dict)
    # The event that raised it.
    event_id: str | None = None
    event_type: str | None = None
    rule: str | None = None


class RouteTicket(BaseModel):
    """Command (commands.support): put a ticket in a queue."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.RouteTicket"

    meta: EventMeta
    ticket_id: str
    queue: str
    priority: TicketPriority
    order_id: str | None = None
    # Routing rule that matched.
    rule: str | None = None
    tags: list[str] = Field(default_factory=list)
    # Intent label from the triage model.
    intent: str | None = None
    # Model confidence of the intent, 0..1 (4 decimals; the contract has no floats).
    confidence: Decimal6x4 | None = None
    # Canonical status of the order found for the ticket, when found.
    order_status: str | None = None
    # Why: rule ids, lookup outcome.
    reasons: list[str] = Field(default_factory=list)
    # Triage model version that classified the ticket.
    model_version: str | None = None
    # Routing rules version.
    rules_version: str | None = None


class ShipmentLine(BaseModel):
    """Quantity of one SKU in a shipment."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ShipmentLine"

    sku: str
    quantity: AvroInt


class ShipmentCreated(BaseModel):
    """A shipment (parcel / pick order) was created for an order."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ShipmentCreated"

    meta: EventMeta
    order_id: str
    shipment_id: str
    carrier: str | None = None
    # Carrier service level, e.g. standard, express.
    service: str | None = None
    tracking_number: str | None = None
    # Shipping warehouse.
    location: str | None = None
    lines: list[ShipmentLine]
    created_at: UtcDatetime


class ShipmentDelivered(BaseModel):
    """The carrier reports the shipment delivered."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ShipmentDelivered"

    meta: EventMeta
    order_id: str
    shipment_id: str
    carrier: str
    tracking_number: str | None = None
    delivered_at: UtcDatetime
    # Delivered lines; empty means the whole shipment.
    lines: list[ShipmentLine] = Field(default_factory=list)
    signed_by: str | None = None
    status_detail: str | None = None


class ShipmentDispatched(BaseModel):
    """The carrier took the shipment over."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ShipmentDispatched"

    meta: EventMeta
    order_id: str
    shipment_id: str
    carrier: str
    tracking_number: str | None = None
    tracking_url: str | None = None
    location: str | None = None
    lines: list[ShipmentLine]
    dispatched_at: UtcDatetime
    # Carrier's raw status.
    status_detail: str | None = None


class ShipmentException(BaseModel):
    """The carrier reports a problem (lost, damaged, address, refused...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ShipmentException"

    meta: EventMeta
    order_id: str
    shipment_id: str
    carrier: str
    tracking_number: str | None = None
    # Normalised code, e.g. address_issue, damaged, lost, refused, delayed.
    exception_code: str
    # Carrier's raw status text.
    status_detail: str | None = None
    reported_at: UtcDatetime
    returning_to_sender: bool = False
    # Affected lines; empty means the whole shipment.
    lines: list[ShipmentLine] = Field(default_factory=list)


class ShopCommandResult(BaseModel):
    """Outcome (commands.shop.results, keyed by SKU) of one SyncShopStock the shop writer handled."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.ShopCommandResult"

    meta: EventMeta
    # meta.event_id of the SyncShopStock.
    command_event_id: str
    sku: str
    outcome: ShopCommandOutcome
    # The figure the command asked for.
    available: AvroInt
    atp_version: AvroLong | None = None
    # shopify | woocommerce.
    platform: str
    # Event id of the newer command that was written instead.
    superseded_by: str | None = None
    # The shop's inventory item / product id written.
    shop_item_id: str | None = None
    # The shop's error (status and message) when failed.
    error: str | None = None
    attempts: AvroInt = 1


class StockAdjusted(BaseModel):
    """A signed manual or system correction of on-hand stock."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.StockAdjusted"

    meta: EventMeta
    sku: str
    location: str
    # Signed change of on-hand units.
    delta: AvroInt
    # e.g. count_correction, damage, theft, found.
    reason: str
    # Document id in the ERP.
    reference: str | None = None
    adjusted_at: UtcDatetime


class StockSnapshot(BaseModel):
    """ERP on-hand for one SKU at one location as of a time (absolute, not a delta)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.StockSnapshot"

    meta: EventMeta
    sku: str
    # Warehouse / location code.
    location: str
    on_hand: AvroInt
    safety_stock: AvroInt | None = None
    # Units on open purchase orders.
    incoming: AvroInt | None = None
    # ERP time the figure is valid for; older snapshots are ignored.
    as_of: UtcDatetime


class StockSnapshotLine(BaseModel):
    """One SKU's ERP figures inside a StockSnapshotBatch (same meaning as StockSnapshot's fields)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.StockSnapshotLine"

    sku: str
    on_hand: AvroInt
    safety_stock: AvroInt | None = None
    # Units on open purchase orders.
    incoming: AvroInt | None = None


class StockSnapshotBatch(BaseModel):
    """
    A chunk of one ERP snapshot: the figures of many SKUs at one location as of one time. Every line's
    SKU is keyed to the record's partition (the record key is the first line's SKU), so the inventory
    processor applies each line exactly like a StockSnapshot of that SKU. Bulk exports travel this way
    because the stream processor's cost is per message.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.StockSnapshotBatch"

    meta: EventMeta
    # Warehouse / location code of every line.
    location: str
    # ERP time the figures are valid for; older snapshots are ignored per SKU and location.
    as_of: UtcDatetime
    lines: list[StockSnapshotLine]


class SuggestReply(BaseModel):
    """Command (commands.support): a drafted reply for a ticket, from the order's real state."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.SuggestReply"

    meta: EventMeta
    ticket_id: str
    intent: str
    language: str
    text: str
    facts_used: dict[str, str] = Field(default_factory=dict)
    # Model confidence of the intent, 0..1 (4 decimals; the contract has no floats).
    confidence: Decimal6x4
    requires_approval: bool
    # Order action offered by the reply (UpdateShippingAddress, CancelOrder), if any.
    action: str | None = None
    # The order the reply speaks of.
    order_id: str | None = None
    # Triage model version.
    model_version: str | None = None
    # Automation policy version that decided requires_approval.
    policy_version: str | None = None


class SyncShopStock(BaseModel):
    """Command (commands.shop): set the shop's sellable stock of a SKU."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.SyncShopStock"

    meta: EventMeta
    sku: str
    # Units to show in the shop (never negative).
    available: AvroInt
    # AtpLevel.version this reflects; the shop side drops older ones.
    atp_version: AvroLong | None = None


class TicketCreated(BaseModel):
    """A support ticket was opened in the helpdesk."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.TicketCreated"

    meta: EventMeta
    ticket_id: str
    order_id: str | None = None
    subject: str
    body: str | None = None
    # e.g. email, chat, phone, web, social.
    channel: str
    priority: TicketPriority
    customer_email: str | None = None
    tags: list[str] = Field(default_factory=list)
    created_at: UtcDatetime
    # ISO 639-1 code the helpdesk reported (e.g. de, en), if any.
    language: str | None = None
    # The helpdesk's or shop's id of the requester, if known.
    customer_id: str | None = None
    # The helpdesk's ticket status as it sent it (e.g. open, new).
    status: str | None = None
    # Source helpdesk system (zendesk, freshdesk, gorgias, generic).
    helpdesk: str | None = None


class TicketUpdated(BaseModel):
    """A support ticket changed in the helpdesk (status, tags, a new customer message)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.TicketUpdated"

    meta: EventMeta
    ticket_id: str
    # Order the helpdesk linked, if any.
    order_id: str | None = None
    # The subject, when sent.
    subject: str | None = None
    # The latest customer message, when sent.
    body: str | None = None
    # The helpdesk's ticket status as it sent it.
    status: str | None = None
    priority: TicketPriority | None = None
    # Requester e-mail.
    customer_email: str | None = None
    tags: list[str] = Field(default_factory=list)
    # ISO 639-1 code, if the helpdesk sent one.
    language: str | None = None
    # Source helpdesk system.
    helpdesk: str | None = None
    updated_at: UtcDatetime


class UpdatePrice(BaseModel):
    """
    Command towards the shop: set a SKU's price (commands.shop, keyed by SKU); only approved or in-
    policy changes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.UpdatePrice"

    meta: EventMeta
    sku: str
    price: Money
    # The price the shop had.
    previous_price: Money | None = None
    # in_policy | approved | promotion_start | promotion_end.
    reason: str
    # The approval's work item, when a person approved.
    work_item_id: str | None = None
    # Who approved.
    approved_by: str | None = None
    # The promotion that set or restored it.
    promotion_id: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    # Catalog rules version that decided.
    rules_version: str | None = None


class UpdateShippingAddress(BaseModel):
    """
    Command (commands.shop, keyed by order id): change the shipping address of an order not yet
    fulfilled; a person approved it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.UpdateShippingAddress"

    meta: EventMeta
    order_id: str
    # The new address as the approving person wrote it in the decision note.
    address_text: str
    # Who approved (user:<name>).
    requested_by: str | None = None
    # The ticket the customer asked in.
    ticket_id: str | None = None
    # The approved work item.
    work_item_id: str | None = None


class WorkItemDecided(BaseModel):
    """
    A person decided a work item (review.decisions, keyed by subject id): approve or reject, by whom,
    why.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str] = "io.shopstream.events.WorkItemDecided"

    meta: EventMeta
    # The work item decided (the ReviewItem's meta.event_id).
    item_id: str
    # What the item is about, e.g. order.
    subject_type: str
    # The subject's id, e.g. the order id (also the record key).
    subject_id: str
    # approve | reject.
    decision: str
    # Name of the token that decided (who).
    decided_by: str
    decided_at: UtcDatetime
    # Why, in the person's words.
    note: str | None = None
    # The item's kind, e.g. review_hold, hold, chargeback.
    kind: str | None = None
    # Hold reasons the item named: approve lifts exactly these.
    hold_reasons: list[str] = Field(default_factory=list)
    # Rules that raised the item.
    rule_ids: list[str] = Field(default_factory=list)


RECORDS: dict[str, type[BaseModel]] = {
    "io.shopstream.events.Address": Address,
    "io.shopstream.events.AnomalyAlert": AnomalyAlert,
    "io.shopstream.events.AtpLevel": AtpLevel,
    "io.shopstream.events.AtpLocation": AtpLocation,
    "io.shopstream.events.CancelFulfillment": CancelFulfillment,
    "io.shopstream.events.CancelOrder": CancelOrder,
    "io.shopstream.events.ChargebackOpened": ChargebackOpened,
    "io.shopstream.events.CreateCreditNote": CreateCreditNote,
    "io.shopstream.events.CreateInvoice": CreateInvoice,
    "io.shopstream.events.CreateReturnLabel": CreateReturnLabel,
    "io.shopstream.events.Customer": Customer,
    "io.shopstream.events.EventMeta": EventMeta,
    "io.shopstream.events.GoodsReceived": GoodsReceived,
    "io.shopstream.events.HoldOrder": HoldOrder,
    "io.shopstream.events.InvoiceLine": InvoiceLine,
    "io.shopstream.events.IssueRefund": IssueRefund,
    "io.shopstream.events.Money": Money,
    "io.shopstream.events.OrderCancelled": OrderCancelled,
    "io.shopstream.events.OrderLine": OrderLine,
    "io.shopstream.events.OrderPlaced": OrderPlaced,
    "io.shopstream.events.OrderReviewed": OrderReviewed,
    "io.shopstream.events.OrderState": OrderState,
    "io.shopstream.events.OrderStatusChanged": OrderStatusChanged,
    "io.shopstream.events.OrderStatusSnapshot": OrderStatusSnapshot,
    "io.shopstream.events.OrderUpdated": OrderUpdated,
    "io.shopstream.events.PaymentAuthorized": PaymentAuthorized,
    "io.shopstream.events.PaymentCaptured": PaymentCaptured,
    "io.shopstream.events.PaymentFailed": PaymentFailed,
    "io.shopstream.events.ProductAttribute": ProductAttribute,
    "io.shopstream.events.ProductDeleted": ProductDeleted,
    "io.shopstream.events.ProductImage": ProductImage,
    "io.shopstream.events.ProductQuality": ProductQuality,
    "io.shopstream.events.ProductUpserted": ProductUpserted,
    "io.shopstream.events.ProductVariant": ProductVariant,
    "io.shopstream.events.PromotionScheduled": PromotionScheduled,
    "io.shopstream.events.RefundIssued": RefundIssued,
    "io.shopstream.events.RefundLine": RefundLine,
    "io.shopstream.events.ReleaseOrder": ReleaseOrder,
    "io.shopstream.events.ReorderRequest": ReorderRequest,
    "io.shopstream.events.ReservationChanged": ReservationChanged,
    "io.shopstream.events.ReturnInspected": ReturnInspected,
    "io.shopstream.events.ReturnLine": ReturnLine,
    "io.shopstream.events.ReturnReceived": ReturnReceived,
    "io.shopstream.events.ReturnRequested": ReturnRequested,
    "io.shopstream.events.ReviewItem": ReviewItem,
    "io.shopstream.events.RouteTicket": RouteTicket,
    "io.shopstream.events.ShipmentCreated": ShipmentCreated,
    "io.shopstream.events.ShipmentDelivered": ShipmentDelivered,
    "io.shopstream.events.ShipmentDispatched": ShipmentDispatched,
    "io.shopstream.events.ShipmentException": ShipmentException,
    "io.shopstream.events.ShipmentLine": ShipmentLine,
    "io.shopstream.events.ShopCommandResult": ShopCommandResult,
    "io.shopstream.events.StockAdjusted": StockAdjusted,
    "io.shopstream.events.StockSnapshot": StockSnapshot,
    "io.shopstream.events.StockSnapshotBatch": StockSnapshotBatch,
    "io.shopstream.events.StockSnapshotLine": StockSnapshotLine,
    "io.shopstream.events.SuggestReply": SuggestReply,
    "io.shopstream.events.SyncShopStock": SyncShopStock,
    "io.shopstream.events.TicketCreated": TicketCreated,
    "io.shopstream.events.TicketUpdated": TicketUpdated,
    "io.shopstream.events.UpdatePrice": UpdatePrice,
    "io.shopstream.events.UpdateShippingAddress": UpdateShippingAddress,
    "io.shopstream.events.WorkItemDecided": WorkItemDecided,
}
