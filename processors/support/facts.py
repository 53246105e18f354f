"""The plain values the support core decides on: the ticket, its order's state, its customer (pure).

The worker fills them (from `support.tickets` and the order/customer lookup); tests build them by hand.
Nothing here knows where an order's state came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .text import Entities

#: Segments, derived in `segment_of` from the customer's facts.
SEGMENTS = ("b2b", "high_value", "repeat", "first_time", "unknown")
#: The order status used in rules when no order was found for a ticket.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class TicketInput:
    """One ticket as the core reads it."""

    ticket_id: str
    subject: str
    body: str
    channel: str = "web"
    language_hint: str | None = None
    customer_email: str | None = None
    order_id: str | None = None  # the helpdesk's own link, if it sent one
    tags: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """Subject and body, as the model and the rules read them."""
        return f"{self.subject}\n{self.body}".strip()


@dataclass(frozen=True)
class OrderFacts:
    """What the core may say about an order (strings as shown to a customer; None when unknown)."""

    order_id: str
    status: str
    fulfillment_status: str = "unfulfilled"
    payment_status: str | None = None
    return_status: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    invoice_ref: str | None = None
    refunded: Decimal = Decimal(0)
    currency: str = "EUR"
    refunded_at: str | None = None  # ISO date
    placed_at: str | None = None
    order_number: str | None = None  # the shop's number customers know ("#1001"), shown in replies

    @property
    def fulfilled(self) -> bool:
        """True once anything left the warehouse (no address change or cancellation then)."""
        return self.fulfillment_status in ("partially_shipped", "shipped", "delivered") or self.status in (
            "partially_shipped", "shipped", "delivered", "return_requested", "returned", "refunded")


@dataclass(frozen=True)
class CustomerFacts:
    """The requester's history, for the segment."""

    order_count: int = 0
    total_spent_eur: Decimal = Decimal(0)
    b2b: bool = False


@dataclass(frozen=True)
class SegmentPolicy:
    """Thresholds of the high-value segment and the tags that mark a B2B customer (from support.yaml)."""

    high_value_orders: int = 5
    high_value_spent_eur: Decimal = Decimal(500)
    b2b_tags: tuple[str, ...] = ("b2b",)


def segment_of(customer: CustomerFacts | None, ticket_tags: tuple[str, ...], policy: SegmentPolicy) -> str:
    """b2b (by data or a ticket tag), high_value, repeat, first_time; unknown without any history."""
    if (customer is not None and customer.b2b) or set(ticket_tags) & set(policy.b2b_tags):
        return "b2b"
    if customer is None or customer.order_count == 0:
        return "unknown"
    if customer.order_count >= policy.high_value_orders or customer.total_spent_eur >= policy.high_value_spent_eur:
        return "high_value"
    return "repeat" if customer.order_count > 1 else "first_time"


def order_candidates(ticket: TicketInput, entities: Entities) -> tuple[str, ...]:
    """Order ids to look up, best first: the helpdesk's link, then numbers in the text (also without prefix)."""
    found: list[str] = []
    for ref in ((ticket.order_id,) if ticket.order_id else ()) + entities.order_numbers:
        found.append(ref)
        digits = ref.split("-")[-1].lstrip("#")
        if digits != ref:
            found.append(digits)
    return tuple(dict.fromkeys(found))
