"""The Redis ATP view on a real Redis: version guard, big batches, delete, the async face."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis

from shopstream.views.atp import AsyncAtpView, AtpView, atp_key, level_datum
from shopstream.views.guard import CHUNK
from tests.unit.test_atp_view import make_level


@pytest.fixture
def view(redis_url: str, redis_prefix: str) -> Iterator[AtpView]:
    v = AtpView.from_url(redis_url, redis_prefix)
    yield v
    v.close()


def test_newer_wins_older_and_equal_are_ignored(view: AtpView, redis_url: str, redis_prefix: str) -> None:
    assert view.get("A-1") is None
    assert view.put_levels([make_level("A-1", 2, on_hand=5)]) == [True]
    assert view.put_levels([make_level("A-1", 5, on_hand=9)]) == [True]
    assert view.put_levels([make_level("A-1", 4, on_hand=1)]) == [False]   # older: ignored
    assert view.put_levels([make_level("A-1", 5, on_hand=2)]) == [False]   # equal: no-op
    stored = view.get("A-1")
    assert stored is not None and (stored["version"], stored["on_hand"], stored["available"]) == (5, 9, 4)
    # The layout: one JSON string per SKU under {prefix}atp:{sku}.
    raw = redis.Redis.from_url(redis_url).get(atp_key(redis_prefix, "A-1"))
    assert raw is not None and json.loads(raw) == stored


def test_batch_keeps_newest_and_spans_several_script_calls(view: AtpView) -> None:
    view.put_levels([make_level("B-2", 7, on_hand=70)])
    batch = [make_level("B-1", 1), make_level("B-1", 3, on_hand=30), make_level("B-1", 2),
             make_level("B-2", 6, on_hand=60), make_level("B-3", 1)]
    assert view.put_levels(batch) == [False, True, False, False, True]
    assert view.put_levels(batch) == [False] * 5  # replay: nothing changes
    b1, b2 = view.get("B-1"), view.get("B-2")
    assert b1 is not None and (b1["version"], b1["on_hand"]) == (3, 30)
    assert b2 is not None and (b2["version"], b2["on_hand"]) == (7, 70)

    many = [make_level(f"M-{i}", 1 + i % 3) for i in range(2 * CHUNK + 17)]
    assert all(view.put_levels(many))
    assert all((doc := view.get(f"M-{i}")) is not None and doc["version"] == 1 + i % 3
               for i in range(0, len(many), 97))
    assert view.put_many([]) == []


def test_corrupt_value_is_overwritten_and_delete(view: AtpView, redis_url: str, redis_prefix: str) -> None:
    redis.Redis.from_url(redis_url).set(atp_key(redis_prefix, "C-1"), b"not json")
    assert view.put_levels([make_level("C-1", 1)]) == [True]
    assert view.delete("C-1") is True
    assert view.get("C-1") is None
    assert view.delete("C-1") is False


def test_bad_version_writes_nothing(view: AtpView) -> None:
    good = view.entry(level_datum(make_level("D-1", 1)), b"D-1")
    with pytest.raises(ValueError):
        view.put_many([good, good._replace(key=view.key("D-2"), version="2")])  # type: ignore[arg-type]
    assert view.get("D-1") is None


async def test_async_view_reads_one_and_many(view: AtpView, redis_url: str, redis_prefix: str) -> None:
    view.put_levels([make_level("E-1", 3), make_level("E/2", 4)])
    client = aioredis.Redis.from_url(redis_url)
    async_view = AsyncAtpView(client, redis_prefix)
    try:
        one = await async_view.get_json("E-1")
        assert one is not None and json.loads(one)["version"] == 3
        assert await async_view.get_json("nope") is None
        many = await async_view.get_many_json(["E/2", "nope", "E-1"])
        assert [json.loads(m)["sku"] if m else None for m in many] == ["E/2", None, "E-1"]
        assert await async_view.get_many_json([]) == []
    finally:
        await client.aclose()


def test_stored_version_is_read_with_and_without_the_compact_form(view: AtpView, redis_url: str,
                                                                    redis_prefix: str) -> None:
    # The script reads `"version":N` with one string match; a document written with blanks (another
    # tool, by hand) is decoded fully instead and still guards.
    client = redis.Redis.from_url(redis_url)
    client.set(atp_key(redis_prefix, "F-1"), json.dumps({"sku": "F-1", "version": 9}))  # '"version": 9'
    assert view.put_levels([make_level("F-1", 8)]) == [False]
    assert view.put_levels([make_level("F-1", 10)]) == [True]
    assert view.put_levels([make_level("F-1", 2**52), make_level("G-1", 1)]) == [True, True]
    assert view.put_levels([make_level("F-1", 2**52 - 1)]) == [False]
    client.set(atp_key(redis_prefix, "F-2"), json.dumps({"sku": "F-2", "version": "x"}))  # no numeric version
    assert view.put_levels([make_level("F-2", 1)]) == [True]
    client.close()
