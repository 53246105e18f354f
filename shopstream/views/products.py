"""The product quality view: `catalog.quality` → one JSON document per SKU in Redis, written only forwards.

Key `{redis_key_prefix}product-quality:{sku}` → the quality document the catalog worker computed
(`processors/catalog/checks.py`: per channel and locale `completeness`, `missing`, `score`, `failed`
checks; `score`, `complete`, `blocking_failed`, `rules_version`) plus `version` (the SKU's catalog
state version) and `updated_at`. Writes go through the shared version guard (`views/guard.py`), so
redelivery and replay change nothing; a tombstone deletes the document. `GET /v1/products/{sku}/quality`
passes the stored JSON through.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from shopstream.schemas.models import ProductQuality
from shopstream.serde import AvroSerde, SerdeError
from shopstream.views.guard import Entry, GuardedWriter
from shopstream.views.orders import iso_utc


def quality_key(prefix: str, sku: str) -> str:
    """The Redis key of one SKU's quality document."""
    return f"{prefix}product-quality:{sku}"


def quality_entry(prefix: str, record: ProductQuality, key: bytes | None) -> Entry:
    """The guarded write of a ProductQuality (ValueError when the Kafka key is not its SKU or the JSON is bad)."""
    if key is not None and key.decode("utf-8", "replace") != record.sku:
        raise ValueError(f"record key {key!r} is not the record's sku {record.sku!r}")
    doc: dict[str, Any] = json.loads(record.document)
    if not isinstance(doc, dict):
        raise ValueError("document is not a JSON object")
    doc.pop("version", None)  # the guard reads the one top-level version: ours
    body = {**doc, "sku": record.sku, "version": record.version, "updated_at": iso_utc(record.meta.occurred_at)}
    return Entry(quality_key(prefix, record.sku), record.version,
                 json.dumps(body, separators=(",", ":"), ensure_ascii=False))


class QualityRoute:
    """`catalog.quality` → the quality view (a route of the view sink)."""

    tombstones = True

    def __init__(self, topic: str, serde: AvroSerde, client: redis.Redis, prefix: str) -> None:
        self.topic, self.serde, self._client, self._prefix = topic, serde, client, prefix
        self._writer = GuardedWriter(client)

    @classmethod
    def from_url(cls, topic: str, serde: AvroSerde, url: str, prefix: str) -> QualityRoute:
        """A route over a fresh client with socket timeouts."""
        return cls(topic, serde, redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0), prefix)

    def decode(self, value: bytes | None) -> ProductQuality:
        """The ProductQuality (SerdeError: the sink parks it)."""
        record = self.serde.decode(value)
        if not isinstance(record, ProductQuality):
            raise SerdeError(f"{type(record).__name__} is not a ProductQuality")
        return record

    def entry(self, decoded: ProductQuality, key: bytes | None) -> Entry:
        """The document to store."""
        return quality_entry(self._prefix, decoded, key)

    def put_many(self, entries: Sequence[Entry]) -> list[bool]:
        """Guarded writes, one round trip per 1,000."""
        return self._writer.put_many(entries)

    def delete(self, key: str) -> bool:
        """A tombstone removes the SKU's document."""
        return bool(self._client.delete(quality_key(self._prefix, key)))

    def close(self) -> None:
        """Free the client."""
        self._client.close()


class AsyncQualityView:
    """The read API's side."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client, self._prefix = client, prefix

    async def get_json(self, sku: str) -> bytes | None:
        """The stored JSON text as is, or None."""
        raw = await self._client.get(quality_key(self._prefix, sku))
        if raw is None:
            return None
        return raw.encode() if isinstance(raw, str) else bytes(raw)
