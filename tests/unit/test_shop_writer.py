"""The shop writer's pure core: per-SKU coalescing, stale commands, retries, results; the limits arithmetic."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from shopstream.processors.shop_writer import core, limits
from shopstream.processors.shop_writer.config import load_shop_writer_config
from shopstream.processors.shop_writer.core import SkuEntry, StockCommand, Write, WriteOutcome

T = datetime(2026, 12, 6, tzinfo=UTC)


def cmd(sku: str, available: int, version: int | None, offset: int = 0, now: float = 0.0) -> StockCommand:
    return StockCommand(sku=sku, available=available, atp_version=version,
                        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sku}:{version}:{offset}")), offset=offset,
                        offered_at=now)


def test_a_burst_of_changes_becomes_one_pending_figure_and_superseded_results() -> None:
    entry: SkuEntry | None = None
    results = []
    for v in range(1, 6):
        out = core.offer(entry, cmd("A", v * 10, v, offset=v))
        entry, results = out.entry, results + list(out.results)
    assert entry is not None and entry.pending is not None and entry.pending.available == 50
    assert [(r.command.atp_version, r.outcome) for r in results] == [(v, "superseded") for v in range(1, 5)]
    assert all(r.superseded_by is not None for r in results)


def test_an_older_version_never_replaces_a_newer_pending_or_applied_figure() -> None:
    entry = core.offer(None, cmd("A", 7, 9)).entry
    late = core.offer(entry, cmd("A", 3, 4, offset=9))
    assert late.entry == entry and [r.outcome for r in late.results] == ["superseded"]
    entry, _ = core.settle_applied(entry, cmd("A", 7, 9))
    stale = core.offer(entry, cmd("A", 1, 8))
    assert stale.entry.pending is None and stale.results[0].superseded_by == cmd("A", 7, 9).event_id


def test_redelivery_is_a_duplicate() -> None:
    entry = core.offer(None, cmd("A", 7, 9)).entry
    assert core.offer(entry, cmd("A", 7, 9)).duplicate
    applied, _ = core.settle_applied(entry, cmd("A", 7, 9))
    assert core.offer(applied, cmd("A", 7, 9)).duplicate


def test_without_versions_the_later_offset_wins() -> None:
    entry = core.offer(None, cmd("A", 1, None, offset=5)).entry
    assert core.offer(entry, cmd("A", 2, None, offset=6)).entry.pending == cmd("A", 2, None, offset=6)
    assert core.offer(entry, cmd("A", 0, None, offset=4)).results[0].outcome == "superseded"


def test_a_newer_figure_offered_during_a_write_stays_pending() -> None:
    first = cmd("A", 5, 1)
    entry = core.offer(None, first).entry
    entry = core.offer(entry, cmd("A", 6, 2)).entry  # arrives while `first` is being written
    after, result = core.settle_applied(entry, first)
    assert result.outcome == "applied" and after.pending == cmd("A", 6, 2)


def test_transient_failures_back_off_then_fail_permanent_ones_fail_at_once() -> None:
    c = cmd("A", 5, 1)
    entry = core.offer(None, c).entry
    entry, result = core.settle_failed(entry, c, "HTTP 503", permanent=False, now=100.0, max_attempts=3)
    assert result is None and entry.attempts == 1 and entry.not_before == 101.0
    assert core.due({"A": entry}, 100.5) == [] and core.due({"A": entry}, 101.0) == [c]
    entry, result = core.settle_failed(entry, c, "HTTP 503", permanent=False, now=101.0, max_attempts=3)
    assert result is None and entry.not_before == 103.0
    entry, result = core.settle_failed(entry, c, "HTTP 503", permanent=False, now=103.0, max_attempts=3)
    assert result is not None and result.outcome == "failed" and entry.pending is None
    fresh = core.offer(None, c).entry
    _, result = core.settle_failed(fresh, c, "HTTP 404", permanent=True, now=0.0, max_attempts=3)
    assert result is not None and (result.outcome, result.error) == ("failed", "HTTP 404")


def test_entries_round_trip_through_the_changelog_form() -> None:
    newer = StockCommand("A", 6, 2, str(uuid.uuid4()), offset=3, offered_at=1.5, raw=b"\x00\x01raw")
    entry = core.offer(core.settle_applied(core.offer(None, cmd("A", 5, 1)).entry, cmd("A", 5, 1))[0], newer).entry
    back = SkuEntry.from_dict(entry.to_dict())
    assert back == entry and back.pending is not None and back.pending.raw == b"\x00\x01raw"


def _writer(fail: set[str] = frozenset(), transient: set[str] = frozenset()):  # type: ignore[no-untyped-def]
    calls: list[list[Write]] = []

    def write(writes: Sequence[Write]) -> list[WriteOutcome]:
        calls.append(list(writes))
        return [WriteOutcome(w, w.command.sku not in fail | transient, w.command.sku in fail,
                             "HTTP 500" if w.command.sku in transient else "HTTP 403" if w.command.sku in fail
                             else None) for w in writes]
    return write, calls


def test_flush_writes_due_figures_in_one_call_and_settles_each() -> None:
    entries = {s: core.offer(None, cmd(s, i, 1, now=float(i))).entry for i, s in enumerate("ABCDE")}
    write, calls = _writer(fail={"C"}, transient={"D"})
    out = core.flush(entries, 10.0, write, {s: f"gid://shopify/InventoryItem/{i}" for i, s in enumerate("ABCD")},
                     max_attempts=5)
    assert len(calls) == 1 and [w.command.sku for w in calls[0]] == ["A", "B", "C", "D"]
    by = {r.command.sku: r for r in out.results}
    assert by["A"].outcome == "applied" and by["A"].shop_item_id == "gid://shopify/InventoryItem/0"
    assert by["C"].outcome == "failed" and by["E"].outcome == "failed" and "unknown item" in (by["E"].error or "")
    assert "D" not in by and out.entries["D"].pending is not None and out.entries["D"].attempts == 1
    assert {r.command.sku for r in out.failed} == {"C", "E"}
    assert out.entries["A"].applied is not None and out.entries["A"].pending is None


def test_result_records_have_ids_derived_from_command_and_outcome() -> None:
    result = core.Result(cmd("A", 5, 3), "applied", attempts=1, shop_item_id="gid://shopify/InventoryItem/1")
    one, two = core.result_record(result, "shopify", T), core.result_record(result, "shopify", T)
    assert one == two and one.outcome == "applied" and one.sku == "A" and one.atp_version == 3
    other = core.result_record(core.Result(cmd("A", 5, 3), "failed", error="x"), "shopify", T)
    assert other.meta.event_id != one.meta.event_id


def test_leaky_bucket_waits_before_it_would_be_throttled_and_believes_the_shop() -> None:
    bucket = limits.LeakyBucket.full(100, 50, now=0.0)
    for _ in range(10):
        bucket.spend(10, 0.0)
    assert bucket.level(0.0) == 0 and bucket.wait_s(10, 0.0) == pytest.approx(0.2)
    assert bucket.level(1.0) == 50 and bucket.wait_s(10, 1.0) == 0
    bucket.observe(5, 2.0, capacity=1000, rate=50)
    assert (bucket.capacity, bucket.level(2.0)) == (1000, 5) and bucket.wait_s(10, 2.0) == pytest.approx(0.1)


def test_shopify_response_parsing() -> None:
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                 "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": None, "throttleStatus": {
                     "maximumAvailable": 1000.0, "currentlyAvailable": 6, "restoreRate": 50.0}}}}
    assert limits.is_throttled(throttled) and not limits.is_throttled({"data": {}})
    assert limits.graphql_throttle_status(throttled) == (6.0, 1000.0, 50.0)
    assert limits.graphql_costs(throttled) == (10.0, None)
    assert limits.call_limit("32/40") == (32, 40) and limits.call_limit("x") is None
    assert limits.retry_after_s("2.0") == 2.0 and limits.retry_after_s(None, 1.5) == 1.5
    assert limits.retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", 3.0) == 3.0


def test_shipped_config_loads_with_documented_defaults() -> None:
    cfg = load_shop_writer_config()
    assert cfg.platform == "shopify" and cfg.shopify.graphql.batch_size == 250
    assert (cfg.shopify.graphql.bucket, cfg.shopify.graphql.restore_per_s) == (1000, 50)
    assert (cfg.shopify.rest.bucket, cfg.shopify.rest.leak_per_s) == (40, 2)


def test_after_a_command_was_given_up_older_ones_are_stale_too() -> None:
    c5 = cmd("A", 5, 5)
    entry, result = core.settle_failed(core.offer(None, c5).entry, c5, "HTTP 404", permanent=True, now=0.0,
                                       max_attempts=3)
    assert result is not None and entry.failed == c5
    late = core.offer(entry, cmd("A", 9, 4))
    assert late.entry.pending is None and late.results[0].superseded_by == c5.event_id
    assert core.offer(entry, cmd("A", 9, 6)).entry.pending == cmd("A", 9, 6)
    assert SkuEntry.from_dict(entry.to_dict()) == entry
