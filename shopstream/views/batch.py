"""Batch lookups of the read API (`GET /v1/atp?sku=…`, `GET /v1/orders?order_id=…`): which ids a query asks
for, one Redis MGET for all of them, and the answer assembled from the stored JSON texts without decoding."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis

#: Most ids one batch query may ask for.
MAX_BATCH = 100


class BadQuery(ValueError):
    """A batch query the API refuses; the message is the reason it returns."""


def batch_ids(values: Sequence[str], param: str, problem: Callable[[str], str | None], example: str) -> list[str]:
    """The ids a batch query asks for, in order, each once; BadQuery says why a query is refused: no `param`
    parameter, more than `MAX_BATCH` of them, or one the single lookup would refuse (`problem`)."""
    if not values:
        raise BadQuery(f"give 1 to {MAX_BATCH} {param} parameters, e.g. {example}")
    if len(values) > MAX_BATCH:
        raise BadQuery(f"at most {MAX_BATCH} {param} parameters per request, got {len(values)}")
    for i, value in enumerate(values):
        reason = problem(value)
        if reason:
            raise BadQuery(f"{param} parameter {i + 1}: {reason}")
    return list(dict.fromkeys(values))


async def get_many_json(client: aioredis.Redis, keys: Sequence[str]) -> list[bytes | None]:
    """The stored JSON texts under `keys` (None where nothing is stored), in one MGET round trip."""
    if not keys:
        return []
    raws = await client.mget(list(keys))
    return [None if raw is None else stored_bytes(raw) for raw in raws]


def stored_bytes(raw: bytes | str) -> bytes:
    """A stored JSON text as bytes, whichever way the Redis client decoded it."""
    return raw.encode() if isinstance(raw, str) else bytes(raw)


def batch_body(ids: Sequence[str], stored: Sequence[bytes | None]) -> bytes:
    """The batch answer `{"items": [documents of the ids found, in query order], "unknown": [ids not in
    the view]}`, assembled from the stored JSON texts without decoding them."""
    items = [raw for raw in stored if raw is not None]
    unknown = [i for i, raw in zip(ids, stored, strict=True) if raw is None]
    return b'{"items":[' + b",".join(items) + b'],"unknown":' + json.dumps(unknown, ensure_ascii=False).encode() + b"}"
