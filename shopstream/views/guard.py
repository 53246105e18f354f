"""The version guard every Redis read view writes through: a value only ever moves forwards in version.

A view entry is one Redis string per entity holding a JSON document with a numeric `version` field.
`GUARDED_SET` is a Lua script that takes many entries at once (KEYS[i] with ARGV[2i-1] = its new
version, ARGV[2i] = its document) and, atomically per call, sets each key only when the new version
is greater than the stored one. So a redelivered or replayed older record never overwrites a newer
one and an equal version is a no-op: that is what makes the at-least-once view sink idempotent.
Versions are checked before anything is written, so a bad argument fails the whole call without a
partial write. Lua numbers are doubles: versions compare exactly up to 2**53.

Reading the stored version: the documents are compact JSON (no blanks) whose only `"version"` key is
the top-level one (true of the order and ATP documents: nothing nested has a `version`, and a JSON
string cannot contain an unescaped `"version":`), so the script finds it with one `string.match`;
only when that fails does it fully decode the document with cjson. A stored value that is not a JSON
document with a numeric `version` is overwritten (a corrupt entry must not block its entity forever).
A new kind of view document must keep to that shape.

Cost, measured on this 2-core machine (100k ATP documents, 1,000 per call): one call reads every key
of the chunk with one MGET and writes the winners with one MSET, and answers one byte per key
(`"1"` written, `"0"` not) instead of an array: ~4-7 µs of Redis CPU per entry whether the key
exists or not, against ~15-18 µs for a pipeline of one EVALSHA per key (which also costs ~3x the
client CPU) and ~10-12 µs for per-key GET/SET with a cjson decode of every stored document. A batch
of 1,000 is one round trip. All keys of one call must live on one node, which holds for a single
Redis server (the deployment here); a Redis Cluster would need hash tags.

`newest_per_key` drops entries a later entry of the same batch supersedes before anything is sent
(a batch replayed from a compacted topic often holds several versions of one entity).
`GuardedWriter` (sync, for the sink's consumer thread) and `AsyncGuardedWriter` (redis.asyncio)
send a batch and return one "written" flag per input entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import redis
import redis.asyncio as aioredis

#: Most entries per script call: bounds how long one call keeps Redis busy (~10 ms measured) and stays
#: far below Lua's limit on unpack() (MGET/MSET take all keys of a call at once).
CHUNK = 1000
_WRITTEN = ord("1")  # the script answers one byte per key: b"1" written, b"0" not

GUARDED_SET = """
local n = #KEYS
for i = 1, n do
  if not tonumber(ARGV[2 * i - 1]) then
    return redis.error_reply('version of ' .. KEYS[i] .. ' is not a number')
  end
end
local current = redis.call('MGET', unpack(KEYS))
local flags = {}
local sets = {}
for i = 1, n do
  local write = true
  local doc = current[i]
  if doc then
    local stored = tonumber(string.match(doc, '"version":(%-?%d+)'))
    if not stored then
      local ok, decoded = pcall(cjson.decode, doc)
      if ok and type(decoded) == 'table' then
        stored = tonumber(decoded['version'])
      end
    end
    if stored and stored >= tonumber(ARGV[2 * i - 1]) then
      write = false
    end
  end
  if write then
    sets[#sets + 1] = KEYS[i]
    sets[#sets + 1] = ARGV[2 * i]
    flags[i] = '1'
  else
    flags[i] = '0'
  end
end
if #sets > 0 then
  redis.call('MSET', unpack(sets))
end
return table.concat(flags)
"""


class Entry(NamedTuple):
    """One guarded write: the Redis key, the entity's version and its JSON document."""

    key: str
    version: int
    document: str | bytes


def newest_per_key(entries: Sequence[Entry]) -> dict[str, int]:
    """Index of the highest-version entry per key (the first of equal ones), in first-seen key order."""
    best: dict[str, int] = {}
    for i, entry in enumerate(entries):
        j = best.get(entry.key)
        if j is None or entry.version > entries[j].version:
            best[entry.key] = i
    return best


def _calls(entries: Sequence[Entry], keep: list[int]) -> list[tuple[list[str], list[int | str | bytes], list[int]]]:
    """The script calls for the kept entries: (keys, args, input indexes) per chunk."""
    calls = []
    for start in range(0, len(keep), CHUNK):
        chunk = keep[start:start + CHUNK]
        keys: list[str] = []
        args: list[int | str | bytes] = []
        for i in chunk:
            key, version, document = entries[i]
            keys.append(key)
            args.append(version)
            args.append(document)
        calls.append((keys, args, chunk))
    return calls


def _flags(answer: bytes | str) -> bytes:
    """The script's answer as bytes (a client made with decode_responses=True hands back str)."""
    return answer.encode() if isinstance(answer, str) else bytes(answer)


def _check(entries: Sequence[Entry]) -> None:
    for entry in entries:
        if not isinstance(entry.version, int) or isinstance(entry.version, bool):
            raise ValueError(f"{entry.key}: version must be an int, got {entry.version!r}")


class GuardedWriter:
    """Guarded batch writes over a sync client."""

    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(GUARDED_SET)

    def put_many(self, entries: Sequence[Entry]) -> list[bool]:
        """Write what is newer than the stored versions; one flag per entry (False: older, equal or
        superseded within the batch). One round trip per `CHUNK` distinct keys."""
        _check(entries)
        written = [False] * len(entries)
        for keys, args, indexes in _calls(entries, list(newest_per_key(entries).values())):
            for i, flag in zip(indexes, _flags(self._script(keys=keys, args=args)), strict=True):
                written[i] = flag == _WRITTEN
        return written


class AsyncGuardedWriter:
    """Guarded batch writes over an asyncio client."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._script = client.register_script(GUARDED_SET)

    async def put_many(self, entries: Sequence[Entry]) -> list[bool]:
        """As `GuardedWriter.put_many`."""
        _check(entries)
        written = [False] * len(entries)
        for keys, args, indexes in _calls(entries, list(newest_per_key(entries).values())):
            for i, flag in zip(indexes, _flags(await self._script(keys=keys, args=args)), strict=True):
                written[i] = flag == _WRITTEN
        return written
