"""The Redis read view of orders: one JSON document per order, written only forwards in version.

Key layout: `{redis_key_prefix}order:{order_id}` -> the JSON document the read API returns for
`GET /v1/orders/{order_id}` (see `order_document`), which includes the OrderState `version`.

Writes go through a Lua script (`GUARDED_SET`) that compares versions inside Redis, atomically:
the value is set only when the new version is greater than the stored one, so a redelivered or
replayed older OrderState never overwrites a newer one and an equal version is a no-op. That
makes the at-least-once sink idempotent. A stored value that is not a JSON document with a
numeric `version` is overwritten (a corrupt view entry must not block the order forever).

Two faces over the same layout and script:
- `OrderView` (sync `redis.Redis`) for the view sink, which runs in a plain consumer thread;
  `put_many` sends a whole batch as EVALSHA calls in one pipeline round trip.
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

if TYPE_CHECKING:
    from shopstream.schemas.models import Money, OrderState

# KEYS[1] = view key, ARGV[1] = new version, ARGV[2] = JSON document. Returns 1 if written.
GUARDED_SET = """
local new_version = tonumber(ARGV[1])
if not new_version then
  return redis.error_reply('version is not a number')
end
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and type(doc) == 'table' then
    local stored = tonumber(doc['version'])
    if stored and stored >= new_version then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


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


def _encode(doc: dict[str, Any]) -> tuple[str, int, str]:
    order_id = doc["order_id"]
    version = doc["version"]
    if not isinstance(order_id, str) or not order_id:
        raise ValueError("document has no order_id")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"document version must be an int, got {version!r}")
    return order_id, version, json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _newest_per_order(docs: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Index of the highest-version document per order: a batch replayed from a compacted topic
    often holds several versions of one order and only the newest can win anyway."""
    best: dict[str, int] = {}
    for i, doc in enumerate(docs):
        j = best.get(doc["order_id"])
        if j is None or doc["version"] > docs[j]["version"]:
            best[doc["order_id"]] = i
    return best


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
        self._script = client.register_script(GUARDED_SET)

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout_s: float = 5.0) -> OrderView:
        """A view over a fresh client; socket timeouts so a hung Redis surfaces as an error."""
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, prefix)

    def key(self, order_id: str) -> str:
        return order_key(self._prefix, order_id)

    def put(self, doc: dict[str, Any]) -> bool:
        """Store `doc` unless the stored version is the same or newer; True when it was written."""
        order_id, version, payload = _encode(doc)
        return bool(self._script(keys=[self.key(order_id)], args=[version, payload]))

    def put_many(self, docs: Sequence[dict[str, Any]]) -> list[bool]:
        """Guarded writes of a batch in one pipeline round trip; one flag per input document.

        Older versions of an order already superseded inside the batch are not sent (flag False).
        """
        encoded = [_encode(d) for d in docs]
        keep = _newest_per_order(docs)
        written = [False] * len(docs)
        if not keep:
            return written
        # No MULTI: each EVALSHA is atomic on its own and the guard makes any order of them safe.
        pipe = self._client.pipeline(transaction=False)
        for i in keep.values():
            order_id, version, payload = encoded[i]
            self._script(keys=[self.key(order_id)], args=[version, payload], client=pipe)
        for i, result in zip(keep.values(), pipe.execute(), strict=True):
            written[i] = bool(result)
        return written

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
        self._script = client.register_script(GUARDED_SET)

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
        if raw is None:
            return None
        return raw.encode() if isinstance(raw, str) else bytes(raw)

    async def get_order(self, order_id: str) -> dict[str, Any] | None:
        """The stored document, or None when the order is not in the view."""
        return _decode(await self.get_order_json(order_id))

    async def put(self, doc: dict[str, Any]) -> bool:
        """Store `doc` unless the stored version is the same or newer; True when it was written."""
        order_id, version, payload = _encode(doc)
        return bool(await self._script(keys=[self.key(order_id)], args=[version, payload]))

    async def put_many(self, docs: Iterable[dict[str, Any]]) -> list[bool]:
        """Guarded writes of a batch in one pipeline round trip; one flag per input document."""
        docs = list(docs)
        encoded = [_encode(d) for d in docs]
        keep = _newest_per_order(docs)
        written = [False] * len(docs)
        if not keep:
            return written
        pipe = self._client.pipeline(transaction=False)
        for i in keep.values():
            order_id, version, payload = encoded[i]
            await self._script(keys=[self.key(order_id)], args=[version, payload], client=pipe)
        for i, result in zip(keep.values(), await pipe.execute(), strict=True):
            written[i] = bool(result)
        return written

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def close(self) -> None:
        await self._client.aclose()
