"""Which order a provider's payment belongs to, remembered in Redis for events that do not say.

Stripe puts the shop's order id in `metadata.order_id` of the PaymentIntent (and of the charges it
creates), but a dispute carries no metadata of the order: it names only the disputed payment
intent and charge. Without help such a chargeback would never reach its order and put it on hold.
So the webhook front remembers, for every payment event it published on `payments`, the payment id
(`payment_id`: the payment intent, else the charge) → order id, and asks for it when a connector
implementing `LinksPayments` reports a delivery that names no order (`unlinked_payment`).

Key: `{SHOPSTREAM_REDIS_PREFIX}payment-order:{source}:{payment_id}`, value the order id, TTL 400
days (card networks allow disputes up to 120 days after the charge, some up to 540 days after the
purchase; a link that expired sends the event to review as before, nothing is lost). A link is
written only after the broker confirmed the event that carried it. A lookup that finds nothing
leaves the event unmatched (ReviewItem `unmatched_payment` on `review.queue`).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

LINK_TTL_S = 400 * 24 * 3600


class PaymentLinks:
    """payment id → order id per source, in Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str, ttl_s: int = LINK_TTL_S) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def key(self, source: str, payment_id: str) -> str:
        return f"{self._prefix}payment-order:{source}:{payment_id}"

    async def order_of(self, source: str, payment_id: str) -> str | None:
        """The order the payment was published for, if known."""
        value = await self._redis.get(self.key(source, payment_id))
        return value.decode() if isinstance(value, bytes) else value

    async def remember(self, source: str, links: Iterable[tuple[str, str]]) -> None:
        """Store (payment id, order id) pairs of published events."""
        pipe = self._redis.pipeline(transaction=False)
        for payment_id, order_id in links:
            pipe.set(self.key(source, payment_id), order_id.encode(), ex=self._ttl_s)
        await pipe.execute()
