"""The Redis read view of available-to-promise: one JSON document per SKU, written only forwards in version.

Source: the compacted topic `inventory.atp` (AtpLevel records keyed by SKU), written by the view
sink (`shopstream.views.sink`). Key layout: `{redis_key_prefix}atp:{sku}` -> the JSON document the
read API returns for `GET /v1/atp/{sku}`, passed through unchanged:

    {"sku": "A-1", "on_hand": 12, "reserved": 3, "safety_stock": 2, "incoming": 40, "available": 7,
     "version": 5, "updated_at": "2024-05-01T12:00:00.123Z",
     "locations": [{"location": "main", "on_hand": 12, "reserved": 3, "safety_stock": 2,
                    "incoming": 40, "as_of": "2024-05-01T06:00:00.000Z"}]}

The figures are the record's, unchanged: the SKU totals are the inventory processor's (over the
locations that sell online; `available` = on_hand - reserved - safety_stock, negative when oversold),
and `locations` lists every location it knows, as it sent them. Times are ISO-8601 UTC with
millisecond precision and a `Z`. A location no ERP snapshot has counted yet travels with the epoch as
its `as_of` (`processors/inventory/app.py`); the view says `"as_of": null` for it instead of 1970.

Writes go through the version guard shared by every view (`shopstream.views.guard`): an AtpLevel
older than or equal to the stored version is ignored, so redelivery and replay are no-ops, and a
batch of up to 1,000 SKUs is one script call and one round trip.

Built for bulk speed (a full ERP snapshot is a million AtpLevel records): the sink decodes records
to plain dicts (`AvroSerde.decode_datum`, no pydantic model; timestamps as epoch milliseconds) and
`atp_entry` formats the document straight from that dict with a fixed template (the doc's key order
is fixed too), which is several times cheaper than building a dict and `json.dumps` on this machine.
A record whose Kafka key is not its SKU is refused (ValueError; the sink parks it): on a compacted
topic keyed by SKU such a record would never be superseded or deleted under its SKU.

Pure helpers (no I/O) for the read API: `sku_problem` (which SKUs a lookup accepts), `batch_skus`
(the `?sku=a&sku=b` query: 1 to `MAX_BATCH` SKUs, duplicates answered once; the rules and the answer
are `shopstream.views.batch`'s, shared with `GET /v1/orders?order_id=…`).

Two faces over the same layout: `AtpView` (sync `redis.Redis`, the sink's side) and `AsyncAtpView`
(`redis.asyncio`, the read API's side; `get_many_json` is one MGET).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring  # the C JSON string quoting json.dumps(ensure_ascii=False) uses
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis

from shopstream.views.batch import batch_ids, get_many_json, stored_bytes
from shopstream.views.guard import Entry, GuardedWriter

if TYPE_CHECKING:
    from shopstream.schemas.models import AtpLevel

#: Longest SKU a lookup accepts (Shopify allows 255 characters).
SKU_MAX = 255

_EPOCH = datetime(1970, 1, 1)  # naive on purpose: isoformat() then has no offset and we append "Z"
_ISO_CACHE: dict[int, str] = {}
_ISO_CACHE_MAX = 65_536

_LEVEL = ('{"sku":%s,"on_hand":%d,"reserved":%d,"safety_stock":%d,"incoming":%d,"available":%d,'
          '"version":%d,"updated_at":"%s","locations":[%s]}')
_LOCATION = '{"location":%s,"on_hand":%d,"reserved":%d,"safety_stock":%d,"incoming":%d,"as_of":%s}'


def atp_key(prefix: str, sku: str) -> str:
    """The Redis key of one SKU's view document."""
    return f"{prefix}atp:{sku}"


def iso_millis(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with millisecond precision and `Z` (cached: a bulk snapshot
    stamps a million records with a handful of distinct times)."""
    text = _ISO_CACHE.get(ms)
    if text is None:
        try:
            text = (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds") + "Z"
        except OverflowError as exc:
            raise ValueError(f"timestamp {ms} ms is out of range") from exc
        if len(_ISO_CACHE) >= _ISO_CACHE_MAX:
            _ISO_CACHE.clear()
        _ISO_CACHE[ms] = text
    return text


def atp_document(datum: Mapping[str, Any]) -> str:
    """The view/API JSON text of an AtpLevel given as the plain dict `AvroSerde.decode_datum` returns
    (timestamps as epoch ms). TypeError/KeyError/ValueError when the dict is not such a record."""
    sku = datum["sku"]
    if not isinstance(sku, str) or not sku:
        raise ValueError("AtpLevel has an empty sku")
    locations = ",".join([
        _LOCATION % (encode_basestring(loc["location"]), loc["on_hand"], loc["reserved"], loc["safety_stock"],
                     loc["incoming"], f'"{iso_millis(loc["as_of"])}"' if loc["as_of"] else "null")
        for loc in datum["locations"]])
    return _LEVEL % (encode_basestring(sku), datum["on_hand"], datum["reserved"], datum["safety_stock"],
                     datum["incoming"], datum["available"], datum["version"], iso_millis(datum["updated_at"]),
                     locations)


def atp_entry(prefix: str, datum: Mapping[str, Any], key: bytes | None) -> Entry:
    """The guarded write of one decoded AtpLevel consumed with Kafka key `key`.

    ValueError when the key is not the record's SKU (UTF-8) or the record is not a well-formed
    AtpLevel (TypeError/KeyError likewise)."""
    document = atp_document(datum)
    sku: str = datum["sku"]
    if key != sku.encode():
        raise ValueError(f"record key {key!r} is not its sku {sku!r}: inventory.atp is keyed by SKU")
    version = datum["version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"AtpLevel version must be an int, got {version!r}")
    return Entry(atp_key(prefix, sku), version, document)


def level_datum(level: AtpLevel) -> dict[str, Any]:
    """An AtpLevel model as the plain dict the sink decodes (timestamps as epoch milliseconds)."""
    def millis(value: datetime) -> int:
        return (value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)

    datum = level.model_dump(mode="python")
    datum["updated_at"] = millis(level.updated_at)
    for loc, model in zip(datum["locations"], level.locations, strict=True):
        loc["as_of"] = millis(model.as_of)
    return datum


def sku_problem(sku: str) -> str | None:
    """Why the read API refuses to look `sku` up, or None when it accepts it."""
    if not sku:
        return "sku is empty"
    if len(sku) > SKU_MAX:
        return f"sku is longer than {SKU_MAX} characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in sku):
        return "sku contains control characters"
    return None


def batch_skus(values: Sequence[str]) -> list[str]:
    """The SKUs a `GET /v1/atp?sku=…` asks for (`batch_ids`: each once, at most `MAX_BATCH`, each valid)."""
    return batch_ids(values, "sku", sku_problem, "/v1/atp?sku=A-1&sku=B-2")


def _decode(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    doc: dict[str, Any] = json.loads(raw)
    return doc


class AtpView:
    """Synchronous access to the ATP view (the sink's side)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self.prefix = prefix
        self._writer = GuardedWriter(client)

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout_s: float = 5.0) -> AtpView:
        """A view over a fresh client; socket timeouts so a hung Redis surfaces as an error."""
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, prefix)

    def key(self, sku: str) -> str:
        return atp_key(self.prefix, sku)

    def entry(self, datum: Mapping[str, Any], key: bytes | None) -> Entry:
        """The guarded write of one decoded AtpLevel consumed with Kafka key `key` (see `atp_entry`)."""
        return atp_entry(self.prefix, datum, key)

    def put_many(self, entries: Sequence[Entry]) -> list[bool]:
        """Guarded writes of a batch (one round trip per 1,000 SKUs); one flag per entry (False: the
        stored version is the same or newer, or a later entry of the batch supersedes it)."""
        return self._writer.put_many(entries)

    def put_levels(self, levels: Iterable[AtpLevel]) -> list[bool]:
        """Guarded writes of AtpLevel models (tools and tests; the sink writes decoded dicts)."""
        return self.put_many([self.entry(d, d["sku"].encode()) for d in map(level_datum, levels)])

    def delete(self, sku: str) -> bool:
        """Remove a SKU's document (a tombstone on the compacted topic)."""
        return bool(self._client.delete(self.key(sku)))

    def get(self, sku: str) -> dict[str, Any] | None:
        """The stored document, or None when the SKU is not in the view."""
        return _decode(self._client.get(self.key(sku)))

    def close(self) -> None:
        self._client.close()


class AsyncAtpView:
    """asyncio access to the ATP view (the read API's side)."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self.prefix = prefix

    def key(self, sku: str) -> str:
        return atp_key(self.prefix, sku)

    async def get_json(self, sku: str) -> bytes | None:
        """The stored JSON text as-is (the API passes it through without re-encoding)."""
        raw = await self._client.get(self.key(sku))
        return None if raw is None else stored_bytes(raw)

    async def get_many_json(self, skus: Sequence[str]) -> list[bytes | None]:
        """The stored JSON texts of `skus` (None where unknown), in one MGET round trip."""
        return await get_many_json(self._client, [self.key(s) for s in skus])
