"""Order and customer facts for tickets, in Redis (the support worker's adapter; imports redis).

Decision (issue 15, step 3): the support worker reads the order's canonical state from the **orders view
in Redis** (`shopstream.views.orders`, `{prefix}order:<id>`, written by `worker views` from
`orders.state`), not by consuming `orders.state` itself. Tickets are keyed by ticket, orders by order:
no co-partitioning can put a ticket next to its order, so consuming `orders.state` would mean every
support instance restoring and holding *every* order (a global table) before routing its first ticket.
The view is already kept, shared by the read API, versioned (never goes backwards) and a lookup costs
one round trip; the price is that it lags `orders.state` by the view sink's latency (~0.1 s), which a
ticket written by a person does not notice. Redis away is a transient fault: the runner retries.

`orders.state` does not carry what a customer asks about beyond the status (carrier, tracking number and
link, the shop's order number, the requester's e-mail and history, the refund date), so the same worker
keeps a small support-owned index next to the view, from the source topics it also consumes:

    {prefix}support:order:<order_id>          hash: order_number, email, placed_at, total, currency,
                                              carrier, tracking_number, tracking_url, refunded_at
    {prefix}support:order-number:<number>     -> order_id (customers write the shop's number, "#1001")
    {prefix}support:customer:<email>          zset: order_id scored by placed_at (ms)
    {prefix}support:customer-total:<email>    hash: order_id -> total in EUR (rates.yaml)
    {prefix}support:customer-count:<email>    the shop's own orders_count of the customer, when it sent one

Every write is idempotent (same fields, same values on a redelivery), so at-least-once is enough.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import redis

from shopstream.schemas.models import (
    OrderPlaced,
    OrderUpdated,
    RefundIssued,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
)
from shopstream.views.orders import OrderView

from .facts import CustomerFacts, OrderFacts
from .kpi import first_response_key, kpi_key

# redis-py types hset's mapping with an invariant key union no plain dict matches; ours are str -> str.
RedisKey = Any
RedisValue = Any


def order_number_key(number: str) -> str:
    """The shop's order number as customers write it, normalised: `#1001`, `1001`, `so-1001` → `1001`/`SO-1001`."""
    return number.strip().lstrip("#").upper()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class SupportFacts:
    """Reads and writes the order and customer facts support needs (see the module docstring)."""

    def __init__(self, client: redis.Redis, prefix: str, rates: dict[str, Decimal] | None = None) -> None:
        self._client = client
        self._prefix = prefix
        self._orders = OrderView(client, prefix)
        self._rates = rates or {}

    def _key(self, kind: str, ident: str) -> str:
        return f"{self._prefix}support:{kind}:{ident}"

    # ---------------------------------------------------------------------------------------- writing
    def record_order(self, event: OrderPlaced | OrderUpdated) -> None:
        """Remember the order's number, customer and total (idempotent)."""
        placed = event.placed_at if isinstance(event, OrderPlaced) else event.updated_at
        fields: dict[RedisKey, RedisValue] = {"total": str(event.total.amount), "currency": event.currency}
        if isinstance(event, OrderPlaced):
            fields["placed_at"] = placed.isoformat()
        if event.order_number:
            fields["order_number"] = event.order_number
        email = (event.customer.email or "").lower() if event.customer else ""
        if email:
            fields["email"] = email
        pipe = self._client.pipeline()
        pipe.hset(self._key("order", event.order_id), mapping=fields)
        if isinstance(event, OrderPlaced):
            pipe.pfadd(kpi_key(self._prefix, "orders"), event.order_id)
        if event.order_number:
            pipe.set(self._key("order-number", order_number_key(event.order_number)), event.order_id)
        if email:
            pipe.zadd(self._key("customer", email), {event.order_id: int(placed.timestamp() * 1000)})
            eur = self._eur(event.total.amount, event.currency)
            if eur is not None:
                pipe.hset(self._key("customer-total", email), event.order_id, str(eur))
            if event.customer and event.customer.orders_count is not None:
                pipe.set(self._key("customer-count", email), event.customer.orders_count)
        pipe.execute()

    def count_ticket(self, ticket_key: str, intent: str, outcome: str, first_response_s: float | None) -> None:
        """Count a decided ticket for the KPIs (`kpi.py`: idempotent HyperLogLogs)."""
        pipe = self._client.pipeline()
        kinds = ["tickets"] + ([outcome] if outcome in ("self_service", "suggested") else [])
        for kind in kinds:
            pipe.pfadd(kpi_key(self._prefix, kind), ticket_key)
            pipe.pfadd(kpi_key(self._prefix, kind, intent), ticket_key)
        if first_response_s is not None:
            pipe.hset(first_response_key(self._prefix), ticket_key, f"{first_response_s:.3f}")
        pipe.execute()

    def record_shipment(self, event: ShipmentCreated | ShipmentDispatched | ShipmentDelivered) -> None:
        """Remember carrier, tracking number and link of the order's latest shipment that names them."""
        fields = {"carrier": getattr(event, "carrier", None),
                  "tracking_number": getattr(event, "tracking_number", None),
                  "tracking_url": getattr(event, "tracking_url", None)}
        kept: dict[RedisKey, RedisValue] = {k: str(v) for k, v in fields.items() if v}
        if kept:
            self._client.hset(self._key("order", event.order_id), mapping=kept)

    def record_refund(self, event: RefundIssued) -> None:
        """Remember the date of the order's latest refund (the amount comes from the orders view)."""
        self._client.hset(self._key("order", event.order_id), "refunded_at", event.refunded_at.date().isoformat())

    def _eur(self, amount: Decimal, currency: str) -> Decimal | None:
        if currency == "EUR":
            return amount
        rate = self._rates.get(currency)
        return (amount * rate).quantize(Decimal("0.01")) if rate is not None else None

    # ---------------------------------------------------------------------------------------- reading
    def resolve(self, candidates: tuple[str, ...]) -> str | None:
        """The order id of the first candidate that is a known order number or order id."""
        for ref in candidates:
            known = _text(self._client.get(self._key("order-number", order_number_key(ref))))
            if known:
                return known
            if self._orders.get_order(ref) is not None:
                return ref
        return None

    def latest_order(self, email: str | None) -> str | None:
        """The requester's most recent order id, if the e-mail placed any."""
        if not email:
            return None
        latest = self._client.zrevrange(self._key("customer", email.lower()), 0, 0)
        return _text(latest[0]) if latest else None

    def order_facts(self, order_id: str) -> OrderFacts | None:
        """The order's state (orders view) with the support facts; None when the view does not know it."""
        doc = self._orders.get_order(order_id)
        if doc is None:
            return None
        extra = {_text(k): _text(v) for k, v in self._client.hgetall(self._key("order", order_id)).items()}
        refunded = doc.get("refunded") or {}
        return OrderFacts(
            order_id=order_id, order_number=extra.get("order_number"), status=str(doc.get("status")),
            fulfillment_status=str(doc.get("fulfillment_status") or "unfulfilled"),
            payment_status=doc.get("payment_status"), return_status=doc.get("return_status"),
            carrier=extra.get("carrier"), tracking_number=extra.get("tracking_number"),
            tracking_url=extra.get("tracking_url"), refunded=Decimal(str(refunded.get("amount") or "0")),
            currency=str(refunded.get("currency") or extra.get("currency") or "EUR"),
            refunded_at=extra.get("refunded_at"), placed_at=doc.get("placed_at"))

    def customer_facts(self, email: str | None) -> CustomerFacts | None:
        """Order count and EUR spent of the requester (the shop's own count when larger); None when unknown."""
        if not email:
            return None
        key = email.lower()
        count = int(self._client.zcard(self._key("customer", key)))
        shop_count = _text(self._client.get(self._key("customer-count", key)))
        count = max(count, int(shop_count) if shop_count and shop_count.isdigit() else 0)
        if count == 0:
            return None
        totals = self._client.hvals(self._key("customer-total", key))
        spent = sum((Decimal(_text(v) or "0") for v in totals), Decimal(0))
        return CustomerFacts(order_count=count, total_spent_eur=spent)

