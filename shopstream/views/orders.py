"""The Redis read view of orders: one JSON document per order, written only forwards in version.

Key layout: `{redis_key_prefix}order:{order_id}` -> the JSON document the read API returns for
`GET /v1/orders/{order_id}` (see `order_document`), which includes the OrderState `version`.

Writes go through the version guard shared by every view (`shopstream.views.guard`): a Lua script
compares versions inside Redis, atomically, and sets the value only when the new version is greater
than the stored one, so a redelivered or replayed older OrderState never overwrites a newer one and
an equal version is a no-op. That makes the at-least-once sink idempotent. A stored value that is
not a JSON document with a numeric `version` is overwritten (a corrupt view entry must not block the
order forever).

Two faces over the same layout and script:
- `OrderView` (sync `redis.Redis`) for the view sink, which runs in a plain consumer thread;
  `put_many` sends a whole batch in one script call (one round trip per 1,000 orders).
- `AsyncOrderView` (`redis.asyncio`) for the aiohttp read API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis

from shopstream.money import format_amount
from shopstream.views.batch import get_many_json, stored_bytes
from shopstream.views.guard import AsyncGuardedWriter, Entry, GuardedWriter

if TYPE_CHECKING:
    from shopstream.schemas.models import Money, OrderState


def order_key(prefix: str, order_id: str) -> str:
    """The Redis key of one order's view document."""
    return f"{prefix}order:{order_id}"


def iso_utc(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with millisecond precision and a `Z` suffix (Avro keeps milliseconds)."""
    if value is None:
        return None
    if value.tzinfo is None:  # the models reject naive datetimes; treat a stray one as UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _money(money: Money) -> dict[str, str]:
    return {"amount": format_amount(money.amount, money.currency), "currency": money.currency}


def order_document(state: OrderState) -> dict[str, Any]:
    """The view/API document of an OrderState (JSON-ready: amounts as strings, times as ISO-8601)."""
    return {
        "order_id": state.order_id,
        "status": state.status,
        "payment_status": state.payment_status,
        "fulfillment_status": state.fulfillment_status,
        "return_status": state.return_status,
        "hold_reasons": list(state.hold_reasons),
        "lines": [
            {
                "line_id": line.line_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": _money(line.unit_price),
                "title": line.title,
            }
            for line in state.lines
        ],
        "total": _money(state.total),
        "captured": _money(state.captured),
        "refunded": _money(state.refunded),
        "placed_at": iso_utc(state.placed_at),
        "cancelled_at": iso_utc(state.cancelled_at),
        "version": state.version,
        "updated_at": iso_utc(state.updated_at),
    }


def _entry(prefix: str, doc: dict[str, Any]) -> Entry:
    """The guarded write of one order document (ValueError when it has no id or no int version)."""
    order_id = doc["order_id"]
    version = doc["version"]
    if not isinstance(order_id, str) or not order_id:
        raise ValueError("document has no order_id")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"document version must be an int, got {version!r}")
    return Entry(order_key(prefix, order_id), version, json.dumps(doc, separators=(",", ":"), ensure_ascii=False))


def _decode(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    doc: dict[str, Any] = json.loads(raw)
    return doc


class OrderView:
    """Synchronous access to the order view (the sink's side)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._writer = GuardedWriter(client)

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout_s: float = 5.0) -> OrderView:
        """A view over a fresh client; socket timeouts so a hung Redis surfaces as an error."""
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, prefix)

    def key(self, order_id: str) -> str:
        return order_key(self._prefix, order_id)

    def put(self, doc: dict[str, Any]) -> bool:
        """Store `doc` unless the stored version is the same or newer; True when it was written."""
        return self.put_many([doc])[0]

    def put_many(self, docs: Sequence[dict[str, Any]]) -> list[bool]:
        """Guarded writes of a batch (one round trip per 1,000 orders); one flag per input document.

        Older versions of an order already superseded inside the batch are not sent (flag False).
        """
        return self._writer.put_many([_entry(self._prefix, d) for d in docs])

    def delete(self, order_id: str) -> bool:
        """Remove an order's document (a tombstone on the compacted state topic)."""
        return bool(self._client.delete(self.key(order_id)))

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        """The stored document, or None when the order is not in the view."""
        return _decode(self._client.get(self.key(order_id)))

    def close(self) -> None:
        self._client.close()


class AsyncOrderView:
    """asyncio access to the order view (the read API's side)."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._writer = AsyncGuardedWriter(client)

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout_s: float = 2.0) -> AsyncOrderView:
        """A view over a fresh client; short timeouts because an HTTP request waits on them."""
        client = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, prefix)

    def key(self, order_id: str) -> str:
        return order_key(self._prefix, order_id)

    async def get_order_json(self, order_id: str) -> bytes | None:
        """The stored JSON text as-is (the API passes it through without re-encoding)."""
        raw = await self._client.get(self.key(order_id))
        return None if raw is None else stored_bytes(raw)

    async def get_many_json(self, order_ids: Sequence[str]) -> list[bytes | None]:
        """The stored JSON texts of `order_ids` (None where unknown), in one MGET round trip."""
        return await get_many_json(self._client, [self.key(i) for i in order_ids])

    async def get_order(self, order_id: str) -> dict[str, Any] | None:
        """The stored document, or None when the order is not in the view."""
        return _decode(await self.get_order_json(order_id))

    async def put(self, doc: dict[str, Any]) -> bool:
        """Store `doc` unless the stored version is the same or newer; True when it was written."""
        return (await self.put_many([doc]))[0]

    async def put_many(self, docs: Iterable[dict[str, Any]]) -> list[bool]:
        """Guarded writes of a batch (one round trip per 1,000 orders); one flag per input document."""
        return await self._writer.put_many([_entry(self._prefix, d) for d in docs])

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def close(self) -> None:
        await self._client.aclose()
