"""List edits made through the API, kept in Redis and applied over the list files (the adapter side).

Per list two sets, `{prefix}review-list:{name}:added` and `{prefix}review-list:{name}:removed`, of
normalised entries (`rules.normalise` with the list's kind). Adding an entry takes it out of
`removed`; removing one takes it out of `added` and, since the file may hold it, records it in
`removed`. The effective list is `(file | added) - removed` (`rules.with_list_changes`); the review
worker re-reads the sets every few seconds, so an edit applies to the orders decided from then on
(not to verdicts already given; a replay after a restart uses the lists as they are then).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
import redis.asyncio as aioredis

Changes = dict[str, tuple[frozenset[str], frozenset[str]]]


def _keys(prefix: str, name: str) -> tuple[str, str]:
    return f"{prefix}review-list:{name}:added", f"{prefix}review-list:{name}:removed"


def _texts(values: Iterable[bytes | str]) -> frozenset[str]:
    return frozenset(v.decode() if isinstance(v, bytes) else str(v) for v in values)


def read_changes(client: redis.Redis, prefix: str, names: list[str]) -> Changes:
    """The API's edits of each named list (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        for key in _keys(prefix, name):
            pipe.smembers(key)
    raw = pipe.execute()
    return {name: (_texts(raw[2 * i]), _texts(raw[2 * i + 1])) for i, name in enumerate(names)}


class AsyncListStore:
    """The API's side: edit and read the sets."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def add(self, name: str, entry: str) -> None:
        """Add a (normalised) entry to a list."""
        added, removed = _keys(self.prefix, name)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(added, entry)
            pipe.srem(removed, entry)
            await pipe.execute()

    async def remove(self, name: str, entry: str) -> None:
        """Remove a (normalised) entry from a list, a file entry too."""
        added, removed = _keys(self.prefix, name)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.srem(added, entry)
            pipe.sadd(removed, entry)
            await pipe.execute()

    async def changes(self, name: str) -> tuple[frozenset[str], frozenset[str]]:
        """(added, removed) of one list."""
        added, removed = _keys(self.prefix, name)
        return _texts(await self.client.smembers(added)), _texts(await self.client.smembers(removed))
