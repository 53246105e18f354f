"""Delivery dedupe for webhooks, in Redis: a delivery id is claimed, then marked done after Kafka confirmed.

States of `{prefix}webhook:{source}:{delivery_id}`:
- absent → `claim` sets `pending` (short TTL) and the request goes on;
- `pending` → another request with the same id is in flight: answer 409 so the source retries later
  (if the first one fails, its claim is released, or expires, and the retry goes through);
- `done` (TTL = SHOPSTREAM_WEBHOOK_DEDUPE_TTL_S) → a duplicate: answer 200, publish nothing.
A claim is marked done only after the broker confirmed the write, so a failed publish never turns a
retry into a silently dropped duplicate.
"""

from __future__ import annotations

from enum import Enum

import redis.asyncio as aioredis

PENDING_TTL_S = 60


class Claim(Enum):
    NEW = "new"
    IN_FLIGHT = "in_flight"
    DONE = "done"


class DeliveryDedupe:
    """Remembers which webhook deliveries were already published."""

    def __init__(self, client: aioredis.Redis, prefix: str, ttl_s: int) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def _key(self, source: str, delivery_id: str) -> str:
        return f"{self._prefix}webhook:{source}:{delivery_id}"

    async def claim(self, source: str, delivery_id: str) -> Claim:
        """Claim a delivery for processing, or say it is in flight or done."""
        key = self._key(source, delivery_id)
        if await self._redis.set(key, b"pending", nx=True, ex=PENDING_TTL_S):
            return Claim.NEW
        current = await self._redis.get(key)
        if current is None:  # expired between the two calls: try once more
            return Claim.NEW if await self._redis.set(key, b"pending", nx=True, ex=PENDING_TTL_S) else Claim.IN_FLIGHT
        return Claim.DONE if current == b"done" else Claim.IN_FLIGHT

    async def complete(self, source: str, delivery_id: str) -> None:
        """Mark the delivery as published."""
        await self._redis.set(self._key(source, delivery_id), b"done", ex=self._ttl_s)

    async def release(self, source: str, delivery_id: str) -> None:
        """Forget a claim whose publish failed, so the source's retry is processed."""
        await self._redis.delete(self._key(source, delivery_id))
