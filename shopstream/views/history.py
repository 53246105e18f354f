"""The Redis read view of an order's audit trail: its OrderStatusChanged records, in order, idempotent.

Source: `orders.status-changes` (OrderStatusChanged records keyed by order id, emitted by the orders
processor), written by the view sink (`shopstream.views.sink`, route `HistoryRoute`). The read API
answers `GET /v1/orders/{order_id}/history` from it:

    {"order_id": "1001", "changes": [<entry>, <entry>, ...]}        oldest first

One entry per OrderStatusChanged (`history_document`; compact JSON, times ISO-8601 UTC with
milliseconds and a `Z`, as in the order view):

    {"event_id": "…", "version": 3, "occurred_at": "2024-05-01T12:00:03.000Z",
     "recorded_at": "2024-05-01T12:00:03.120Z", "changed": ["status", "payment_status"],
     "previous": {"status": "pending_payment", "payment_status": "pending", "fulfillment_status":
                  "unfulfilled", "return_status": "none", "hold_reasons": []},
     "current": {"status": "ready_to_fulfill", "payment_status": "paid", …},
     "cause_event_id": "…", "cause_event_type": "PaymentCaptured", "source": "stripe",
     "rule": "payments.captured", "correlation_id": null, "note": null, "work_item_id": null}

A decision on a work item carries the person as `source` (`user:<name>`), their `note` and the
`work_item_id`; other entries have both null.

`event_id` is the OrderStatusChanged's own id, `version` the order version the change produced,
`occurred_at` / `recorded_at` the cause's source and recording times (the record's meta carries the
cause's times), `previous` is null for the first state of an order, `changed` names the dimensions
(`status`, `payment_status`, `fulfillment_status`, `return_status`, `hold_reasons`) whose value
differs between `previous` and `current` — all five for the first state. The record carries no
amounts; were one added it would be an exact decimal string like the order view's.

Order: by `version` (the OrderState version after the change; the orders processor bumps it by one
per applied step, so it is the order's own sequence and, unlike source or recording times, never ties
or runs backwards; gaps are steps that changed no status, e.g. only an amount), then by `event_id` —
a tie that only a faulty producer could cause, broken deterministically (`history_sort_key`).

Key layout: one sorted set per order, `{redis_key_prefix}order-history:{order_id}`; member = the
entry's JSON text, score = its version. Redis orders members of equal score by their bytes, and every
entry starts with `{"event_id":"<canonical lower-case uuid>"`, so the set's order *is* (version,
event_id) and a read is one ZRANGE of stored texts, passed through without decoding.

Idempotence: the identity of an entry is (version, event_id). `HISTORY_ADD`, one Lua script per batch
of up to 1,000 entries (one round trip), adds an entry only when no member with the same score
starts with the same event id, so redelivery and replay of the same record change nothing — even
when the document's rendering changed between the two writes (first write wins). A replay re-emits
identical records (ids derived from the cause event), so the same event id never arrives with
another version; were it to, both entries would be kept (and shown) rather than one silently lost.

Bound: at most `HISTORY_MAX_ENTRIES` (1,000) entries per order — the newest by version; an add beyond
that trims the oldest in the same script call. A replayed record older than the newest 1,000 is
trimmed again at once and reported as not written, so replays stay no-ops at the bound too. An order
reaches a few dozen changes in practice; the bound only protects Redis from a runaway producer. There
is no TTL: entries stay as long as Redis keeps them, while the topic keeps 30 days
(`topology/topics.yaml`), so a view rebuilt from the topic (a new consumer group) only recovers the
changes of the last 30 days. A tombstone of the order on `orders.state` does not delete its history,
and a null value on `orders.status-changes` is parked on its DLQ (the sink never erases an audit trail).

Not found: the API answers 404 only when the order has no history *and* no order document
(`{prefix}order:{order_id}`, see `shopstream.views.orders`); an order known to the order view but
without recorded changes answers 200 with `"changes": []`. Both keys are read in one pipelined round
trip. `?limit=N` (1..`HISTORY_MAX_ENTRIES`, `history_limit`) returns the newest N entries, still
oldest first.

Two faces over the same layout: `HistoryView` (sync `redis.Redis`, the sink's side: `put_many`) and
`AsyncHistoryView` (`redis.asyncio`, the API's side: `get_body`). The pure parts (document, entry,
sort key, limit parsing, body assembly) do no I/O and are unit-tested on their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import redis
import redis.asyncio as aioredis

from shopstream.views.guard import CHUNK
from shopstream.views.orders import iso_utc, order_key

if TYPE_CHECKING:
    from shopstream.schemas.models import OrderStatusChanged, OrderStatusSnapshot

#: Most entries kept per order (the newest by version); older ones are trimmed on write.
HISTORY_MAX_ENTRIES = 1000

#: The status dimensions of an OrderStatusSnapshot, in the order `changed` lists them.
DIMENSIONS = ("status", "payment_status", "fulfillment_status", "return_status", "hold_reasons")

_HEAD = '{"event_id":"'  # every entry starts with this, then its event id (the script relies on it)

# KEYS[i]: the history key of entry i. ARGV[1]: max entries per key (0: unbounded); entry i is
# ARGV[3i-1] version, ARGV[3i] event id, ARGV[3i+1] document. Answers one byte per entry: "1" added,
# "0" not (a duplicate, or older than the newest max entries). Arguments are checked before
# anything is written, so a bad one fails the whole call without a partial write.
HISTORY_ADD = """
local max = tonumber(ARGV[1])
if not max then
  return redis.error_reply('max entries is not a number')
end
for i = 1, #KEYS do
  if not tonumber(ARGV[3 * i - 1]) then
    return redis.error_reply('version of an entry of ' .. KEYS[i] .. ' is not a number')
  end
  local head = '{"event_id":"' .. ARGV[3 * i] .. '"'
  if string.sub(ARGV[3 * i + 1], 1, #head) ~= head then
    return redis.error_reply('entry of ' .. KEYS[i] .. ' does not start with its event_id')
  end
end
local flags = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local version = ARGV[3 * i - 1]
  local head = '{"event_id":"' .. ARGV[3 * i] .. '"'
  local doc = ARGV[3 * i + 1]
  local flag = '1'
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, version, version)) do
    if string.sub(member, 1, #head) == head then
      flag = '0'
      break
    end
  end
  if flag == '1' then
    redis.call('ZADD', key, version, doc)
    if max > 0 and redis.call('ZCARD', key) > max then
      redis.call('ZREMRANGEBYRANK', key, 0, -(max + 1))
      if not redis.call('ZSCORE', key, doc) then
        flag = '0'
      end
    end
  end
  flags[i] = flag
end
return table.concat(flags)
"""
_ADDED = ord("1")


class HistoryEntry(NamedTuple):
    """One history write: the order's history key, the order version, the change's event id, its JSON."""

    key: str
    version: int
    event_id: str
    document: str


def history_key(prefix: str, order_id: str) -> str:
    """The Redis key of one order's history (a sorted set)."""
    return f"{prefix}order-history:{order_id}"


def snapshot_document(snapshot: OrderStatusSnapshot | None) -> dict[str, Any] | None:
    """The four status dimensions and the hold reasons of a snapshot (None stays None)."""
    if snapshot is None:
        return None
    return {
        "status": snapshot.status,
        "payment_status": snapshot.payment_status,
        "fulfillment_status": snapshot.fulfillment_status,
        "return_status": snapshot.return_status,
        "hold_reasons": list(snapshot.hold_reasons),
    }


def changed_dimensions(previous: OrderStatusSnapshot | None, current: OrderStatusSnapshot) -> list[str]:
    """The dimensions whose value differs between `previous` and `current` (all of them for a first state)."""
    if previous is None:
        return list(DIMENSIONS)
    return [name for name in DIMENSIONS if getattr(previous, name) != getattr(current, name)]


def history_document(change: OrderStatusChanged) -> dict[str, Any]:
    """The view/API entry of an OrderStatusChanged (JSON-ready). `event_id` must stay the first key: the
    Redis layout orders and deduplicates by it (see the module docstring)."""
    return {
        "event_id": change.meta.event_id,
        "version": change.version,
        "occurred_at": iso_utc(change.meta.occurred_at),
        "recorded_at": iso_utc(change.meta.recorded_at),
        "changed": changed_dimensions(change.previous, change.current),
        "previous": snapshot_document(change.previous),
        "current": snapshot_document(change.current),
        "cause_event_id": change.cause_event_id,
        "cause_event_type": change.cause_event_type,
        "source": change.source,
        "rule": change.rule,
        "correlation_id": change.meta.correlation_id,
        "note": change.note,
        "work_item_id": change.work_item_id,
    }


def history_text(document: dict[str, Any]) -> str:
    """The stored JSON text of an entry: compact, keys in document order (`event_id` first)."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    if not text.startswith(_HEAD):
        raise ValueError("a history entry must start with its event_id")
    return text


def history_entry(prefix: str, change: OrderStatusChanged, key: bytes | None) -> HistoryEntry:
    """The history write of one OrderStatusChanged consumed with Kafka key `key`.

    ValueError when the key is not the record's order id (UTF-8): `orders.status-changes` is keyed by
    order id, and only then do all changes of an order share a partition and arrive in order."""
    if not change.order_id:
        raise ValueError("OrderStatusChanged has an empty order_id")
    if key != change.order_id.encode():
        raise ValueError(f"record key {key!r} is not its order_id {change.order_id!r}: "
                         "orders.status-changes is keyed by order id")
    return HistoryEntry(history_key(prefix, change.order_id), change.version, change.meta.event_id,
                        history_text(history_document(change)))


def history_sort_key(document: dict[str, Any]) -> tuple[int, str]:
    """Where an entry stands in its order's history: by version, then event id (the Redis order)."""
    return document["version"], document["event_id"]


def in_history_order(documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries oldest first, duplicates (same version and event id) once — what the view stores."""
    unique = {history_sort_key(d): d for d in reversed(list(documents))}  # the first of equal ones wins
    return [unique[k] for k in sorted(unique)]


def history_limit(raw: str | None) -> int | None:
    """The `?limit=` of a history request: None (everything kept) or 1..HISTORY_MAX_ENTRIES.

    ValueError with the reason the API returns for anything else."""
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"limit must be a whole number from 1 to {HISTORY_MAX_ENTRIES}")
    limit = int(raw)
    if not 1 <= limit <= HISTORY_MAX_ENTRIES:
        raise ValueError(f"limit must be from 1 to {HISTORY_MAX_ENTRIES}, got {limit}")
    return limit


def history_body(order_id: str, stored: Sequence[bytes]) -> bytes:
    """The API answer `{"order_id": …, "changes": [entries]}` from the stored JSON texts, not decoded."""
    return (b'{"order_id":' + json.dumps(order_id, ensure_ascii=False).encode()
            + b',"changes":[' + b",".join(stored) + b"]}")


def _script_args(entries: Sequence[HistoryEntry], max_entries: int) -> list[tuple[list[str], list[int | str]]]:
    """(keys, args) of the script calls for `entries`, `CHUNK` entries per call, in input order."""
    calls = []
    for start in range(0, len(entries), CHUNK):
        chunk = entries[start:start + CHUNK]
        args: list[int | str] = [max_entries]
        for entry in chunk:
            if not isinstance(entry.version, int) or isinstance(entry.version, bool):
                raise ValueError(f"{entry.key}: version must be an int, got {entry.version!r}")
            args += [entry.version, entry.event_id, entry.document]
        calls.append(([e.key for e in chunk], args))
    return calls


def _as_bytes(raw: bytes | str) -> bytes:
    return raw.encode() if isinstance(raw, str) else bytes(raw)


class HistoryView:
    """Synchronous access to the history view (the sink's side)."""

    def __init__(self, client: redis.Redis, prefix: str, *, max_entries: int = HISTORY_MAX_ENTRIES) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be 0 (unbounded) or more")
        self._client = client
        self.prefix = prefix
        self.max_entries = max_entries
        self._script = client.register_script(HISTORY_ADD)

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout_s: float = 5.0,
                 max_entries: int = HISTORY_MAX_ENTRIES) -> HistoryView:
        """A view over a fresh client; socket timeouts so a hung Redis surfaces as an error."""
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, prefix, max_entries=max_entries)

    def key(self, order_id: str) -> str:
        return history_key(self.prefix, order_id)

    def entry(self, change: OrderStatusChanged, key: bytes | None) -> HistoryEntry:
        """The write of one OrderStatusChanged consumed with Kafka key `key` (see `history_entry`)."""
        return history_entry(self.prefix, change, key)

    def put_many(self, entries: Sequence[HistoryEntry]) -> list[bool]:
        """Add a batch (one round trip per 1,000 entries); one flag per entry (False: a duplicate, or
        older than the newest `max_entries` of its order)."""
        written: list[bool] = []
        for keys, args in _script_args(entries, self.max_entries):
            answer = self._script(keys=keys, args=args)
            written += [flag == _ADDED for flag in _as_bytes(answer)]
        return written

    def put_changes(self, changes: Iterable[OrderStatusChanged]) -> list[bool]:
        """Add OrderStatusChanged models (tools and tests; the sink writes entries)."""
        return self.put_many([self.entry(c, c.order_id.encode()) for c in changes])

    def get(self, order_id: str) -> list[dict[str, Any]]:
        """The stored entries, oldest first ([] when none)."""
        stored = cast("list[bytes]", self._client.zrange(self.key(order_id), 0, -1))  # sync client: a list
        return [json.loads(raw) for raw in stored]

    def delete(self, order_id: str) -> bool:
        """Remove an order's whole history (an operator's tool; the sink never calls it)."""
        return bool(self._client.delete(self.key(order_id)))

    def close(self) -> None:
        self._client.close()


class AsyncHistoryView:
    """asyncio access to the history view (the read API's side)."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self.prefix = prefix

    def key(self, order_id: str) -> str:
        return history_key(self.prefix, order_id)

    async def get_json(self, order_id: str, limit: int | None = None) -> tuple[list[bytes], bool]:
        """The stored entries oldest first (the newest `limit` of them), and whether the order view
        holds the order — one pipelined round trip."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zrange(self.key(order_id), -limit if limit else 0, -1)
            pipe.exists(order_key(self.prefix, order_id))
            stored, order_known = await pipe.execute()
        return [_as_bytes(raw) for raw in stored], bool(order_known)

    async def get_body(self, order_id: str, limit: int | None = None) -> bytes | None:
        """The API answer (`history_body`), or None when there is neither history nor an order document."""
        stored, order_known = await self.get_json(order_id, limit)
        if not stored and not order_known:
            return None
        return history_body(order_id, stored)
