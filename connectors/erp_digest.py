"""The figures the ERP stock ingest last published per SKU and location, kept in Redis.

`shopstream ingest erp-stock` uses it to report how many rows are *unchanged* (same on_hand,
safety_stock and incoming as the last ingest published for that SKU and location) and, with
`--changed-only`, to publish only the rows that changed.

Layout: one hash per location, `{SHOPSTREAM_REDIS_PREFIX}erp-stock:last:{location}`, field = SKU,
value = `"on_hand,safety_stock,incoming"` (a figure the file did not report is empty). Rows are
remembered only after the broker confirmed their batch, so a failed or interrupted ingest never
marks a row as published; the caller remembers only the rows that changed (an unchanged row's
figures are already there). One round trip per chunk of rows each way.

How a chunk travels: per location, its SKUs joined by line breaks and their figures joined the same
way, two arguments to a Lua script (`COMPARE` answers one byte per row, `STORE` writes the hash),
not one argument per row: redis-py's command packing cost ~3 µs per row (HMGET or HSET) and its
reply parsing about as much per HMGET value: ~30% of a 1M-row ingest (py-spy). A SKU
can hold a line break (a quoted CSV field), so a location whose SKUs do is sent as plain HMGET/HSET.

Why unchanged rows are still published by default: a snapshot also moves the SKU's `as_of`, which is
what lets the ATP processor stop deducting shipments the ERP count already reflects (see
processors/inventory/atp.py). Skipping an unchanged row is exact when the ERP and shopstream saw the
same movements since the last count; otherwise a shipment stays deducted until the next snapshot that
changes the SKU (the shop under-promises for a while, never over-promises). That is why skipping is
an explicit option, not the default; publishing them costs little, since the inventory worker takes
a short path for a line that repeats its SKU's figures (README, performance).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import redis.asyncio as aioredis

from shopstream.connectors.erp_stock import Row

#: Lines per HMGET / HSET inside the scripts: far below Lua's limit on unpack().
_SLICE = 1000

# KEYS[k]: a location's hash; ARGV[2k-1]: its SKUs, ARGV[2k]: their figures, each joined by "\n"
# (no value is empty: SKUs are trimmed non-empty, figures hold two commas).
_SPLIT = """
local function split(text)
  local out = {}
  for value in string.gmatch(text, '[^\\n]+') do out[#out + 1] = value end
  return out
end
"""

#: One byte per row, locations in KEYS order: "1" when the hash holds exactly these figures for the SKU.
COMPARE = _SPLIT + f"""
local answer = {{}}
for k = 1, #KEYS do
  local skus, figures = split(ARGV[2 * k - 1]), split(ARGV[2 * k])
  for i = 1, #skus, {_SLICE} do
    local last = math.min(i + {_SLICE - 1}, #skus)
    local stored = redis.call('HMGET', KEYS[k], unpack(skus, i, last))
    for j = i, last do
      answer[#answer + 1] = (stored[j - i + 1] == figures[j]) and '1' or '0'
    end
  end
end
return table.concat(answer)
"""

#: Sets each SKU's field to its figures; answers how many rows it wrote.
STORE = _SPLIT + f"""
local written = 0
for k = 1, #KEYS do
  local skus, figures = split(ARGV[2 * k - 1]), split(ARGV[2 * k])
  if #skus ~= #figures then
    return redis.error_reply('erp-stock digest: ' .. #skus .. ' SKUs but ' .. #figures .. ' figures')
  end
  for i = 1, #skus, {_SLICE} do
    local args = {{}}
    for j = i, math.min(i + {_SLICE - 1}, #skus) do
      args[#args + 1] = skus[j]
      args[#args + 1] = figures[j]
    end
    redis.call('HSET', KEYS[k], unpack(args))
    written = written + #args / 2
  end
end
return written
"""

_UNCHANGED = ord("1")


@functools.lru_cache(maxsize=65536)  # stock figures repeat a lot across an export
def _figures(on_hand: int, safety_stock: int | None, incoming: int | None) -> str:
    return f"{on_hand},{'' if safety_stock is None else safety_stock},{'' if incoming is None else incoming}"


def figures(row: Row) -> str:
    """The stored form of a row's figures."""
    return _figures(row.on_hand, row.safety_stock, row.incoming)


class _Location:
    """One location's rows of a chunk: their positions in it, SKUs and figures."""

    __slots__ = ("figures", "positions", "skus")

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.skus: list[str] = []
        self.figures: list[str] = []

    def joined(self) -> tuple[str, str] | None:
        """(SKUs, figures) joined by line breaks; None when a SKU holds a line break itself."""
        skus = "\n".join(self.skus)
        if skus.count("\n") != len(self.skus) - 1:
            return None
        return skus, "\n".join(self.figures)


def _by_location(rows: Sequence[Row]) -> dict[str, _Location]:
    out: dict[str, _Location] = {}
    for i, row in enumerate(rows):
        group = out.get(row.location)
        if group is None:
            group = out[row.location] = _Location()
        group.positions.append(i)
        group.skus.append(row.sku)
        group.figures.append(_figures(row.on_hand, row.safety_stock, row.incoming))
    return out


class PublishedDigest:
    """Last published figures per (location, SKU) in Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._compare = client.register_script(COMPARE)
        self._store = client.register_script(STORE)

    def key(self, location: str) -> str:
        return f"{self._prefix}erp-stock:last:{location}"

    def _script_arguments(self, rows: Sequence[Row]) -> tuple[list[str], list[str], list[int],
                                                               list[tuple[str, _Location]]]:
        """The scripts' keys and arguments per location, the row positions they answer for (in order),
        and the locations that must go as plain commands (a SKU holding a line break)."""
        keys: list[str] = []
        args: list[str] = []
        positions: list[int] = []
        plain: list[tuple[str, _Location]] = []
        for location, group in _by_location(rows).items():
            joined = group.joined()
            if joined is None:
                plain.append((location, group))
                continue
            keys.append(self.key(location))
            args.extend(joined)
            positions.extend(group.positions)
        return keys, args, positions, plain

    async def unchanged(self, rows: Sequence[Row]) -> list[bool]:
        """Per row: were these exactly the figures last published for its SKU and location?"""
        flags = [False] * len(rows)
        keys, args, positions, plain = self._script_arguments(rows)
        if keys:
            answer = await self._compare(keys=keys, args=args)
            if isinstance(answer, str):  # a client made with decode_responses=True
                answer = answer.encode()
            for i, flag in zip(positions, answer, strict=True):
                flags[i] = flag == _UNCHANGED
        if plain:
            pipe = self._redis.pipeline(transaction=False)
            for location, group in plain:
                pipe.hmget(self.key(location), group.skus)
            for (_, group), stored in zip(plain, await pipe.execute(), strict=True):
                for i, value, expected in zip(group.positions, stored, group.figures, strict=True):
                    flags[i] = value is not None and value == expected.encode()
        return flags

    async def remember(self, rows: Sequence[Row]) -> None:
        """Record rows whose batch the broker confirmed (the caller leaves out the unchanged ones)."""
        if not rows:
            return
        keys, args, _, plain = self._script_arguments(rows)
        if keys:
            await self._store(keys=keys, args=args)
        if plain:
            pipe = self._redis.pipeline(transaction=False)
            for location, group in plain:
                pipe.hset(self.key(location), mapping=dict(zip(group.skus, group.figures, strict=True)))
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()
