"""Typed order facts the review rules see, built from the shop's order events (pure).

Every fact has a type the rule loader checks conditions against (`FACT_TYPES`): `number` (exact
Decimal), `int`, `string`, `bool`, `strings` (a tuple of strings). A fact the event does not carry is
None; a condition on a None fact does not match (`exists` tests for it).

`ip` and `payment_gateway` come from the order events' `client_ip` / `payment_gateway` (Shopify's
`browser_ip` / `payment_gateway_names`); facts no order event carries yet (payment method, card
fingerprint, categories) are None / empty until a connector fills them; `risk_level` comes from the
payment provider (Stripe `outcome.risk_level`) when a `PaymentAuthorized` reached the review worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal

from shopstream.schemas.models import Address, OrderPlaced, OrderUpdated

FactType = Literal["number", "int", "string", "bool", "strings"]

#: Every fact name a rule may test, with its type (velocity measures are declared in `rules`).
FACT_TYPES: dict[str, FactType] = {
    "total": "number", "currency": "string", "total_eur": "number",
    "line_count": "int", "item_count": "int", "skus": "strings", "categories": "strings",
    "customer_orders_count": "int", "first_order": "bool",
    "email": "string", "email_domain": "string",
    "billing_country": "string", "shipping_country": "string",
    "country_mismatch": "bool", "address_mismatch": "bool",
    "payment_gateway": "string", "payment_method": "string", "risk_level": "string",
    "ip": "string", "shipping_address": "string",
}


@dataclass(frozen=True)
class OrderFacts:
    """What the rules may know about one order (see FACT_TYPES for the names rules use)."""

    order_id: str
    placed_at: datetime  # event time of the order (velocity windows)
    as_of: datetime  # source time of the snapshot these facts come from (newest wins)
    total: Decimal
    currency: str
    total_eur: Decimal | None
    line_count: int
    item_count: int
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    customer_orders_count: int | None = None
    first_order: bool = True
    email: str | None = None
    email_domain: str | None = None
    billing_country: str | None = None
    shipping_country: str | None = None
    country_mismatch: bool = False
    address_mismatch: bool = False
    payment_gateway: str | None = None
    payment_method: str | None = None
    risk_level: str | None = None
    ip: str | None = None
    shipping_address: str | None = None
    card: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> object:
        """The value of fact `name` (a name from FACT_TYPES)."""
        return getattr(self, name)


def address_key(address: Address | None) -> str | None:
    """A normalised one-line form of an address (case and spacing ignored); None without one."""
    if address is None:
        return None
    parts = [address.line1, address.line2, address.postal_code, address.city, address.country_code]
    text = "|".join(" ".join((p or "").lower().split()) for p in parts)
    return text if text.strip("|") else None


def to_eur(amount: Decimal, currency: str, rates: dict[str, Decimal]) -> Decimal | None:
    """`amount` in EUR through `rates` (EUR per unit of the currency); None when the rate is unknown."""
    if currency == "EUR":
        return amount
    rate = rates.get(currency)
    return None if rate is None else (amount * rate).quantize(Decimal("0.01"))


def order_facts(event: OrderPlaced | OrderUpdated, rates: dict[str, Decimal], *,
                placed_at: datetime | None = None) -> OrderFacts:
    """The facts of one order snapshot; `placed_at` overrides the event time (an update of a known order)."""
    if isinstance(event, OrderPlaced):
        as_of, when = event.placed_at, event.placed_at
    else:
        as_of, when = event.updated_at, event.updated_at
    customer = event.customer
    email = customer.email.strip().lower() if customer is not None and customer.email else None
    count = customer.orders_count if customer is not None else None
    billing, shipping = event.billing_address, event.shipping_address
    b_country = billing.country_code.upper() if billing is not None and billing.country_code else None
    s_country = shipping.country_code.upper() if shipping is not None and shipping.country_code else None
    b_key, s_key = address_key(billing), address_key(shipping)
    return OrderFacts(
        order_id=event.order_id, placed_at=placed_at or when, as_of=as_of,
        total=event.total.amount, currency=event.total.currency,
        total_eur=to_eur(event.total.amount, event.total.currency, rates),
        line_count=len(event.lines), item_count=sum(line.quantity for line in event.lines),
        skus=tuple(sorted({line.sku for line in event.lines})),
        customer_orders_count=count,
        # Shopify counts the order being placed: 1 (or none known, a guest) is a first order.
        first_order=count is None or count <= 1,
        email=email, email_domain=email.rsplit("@", 1)[-1] if email and "@" in email else None,
        billing_country=b_country, shipping_country=s_country,
        country_mismatch=b_country is not None and s_country is not None and b_country != s_country,
        address_mismatch=b_key is not None and s_key is not None and b_key != s_key,
        shipping_address=s_key,
        ip=event.client_ip.strip() if event.client_ip else None,
        payment_gateway=event.payment_gateway.lower() if event.payment_gateway else None,
    )


def newer(current: OrderFacts | None, candidate: OrderFacts) -> OrderFacts:
    """The facts to keep of two snapshots of one order: the newer source time wins, the earliest placed_at.

    Commutative, so the facts of an order do not depend on the arrival order of its snapshots.
    """
    if current is None:
        return candidate
    placed = min(current.placed_at, candidate.placed_at)
    keep = candidate if (candidate.as_of, _tie(candidate)) > (current.as_of, _tie(current)) else current
    return replace(keep, placed_at=placed)


def _tie(facts: OrderFacts) -> str:
    # Two snapshots with the same source time: any fixed order makes the choice arrival-independent.
    return repr((facts.total, facts.email, facts.shipping_address, facts.line_count))
