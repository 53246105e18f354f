"""Stall detection's pure part: which partitions lag, and when an idle consumer is looked at."""

from __future__ import annotations

from shopstream.runner.watch import Lag, StallWatch, lagging


def test_only_partitions_with_records_past_the_position_lag() -> None:
    positions = {("a", 0): 5, ("a", 1): 7, ("b", 1): 3}
    bounds = {("a", 0): (0, 5), ("a", 1): (0, 9), ("b", 1): (0, 2)}
    assert lagging(positions, bounds) == [Lag("a", 1, 7, 9)]


def test_a_partition_never_fetched_since_its_assignment_lags_when_it_holds_records() -> None:
    """No position at all (-1001) is the stuck case itself: assigned, records there, never fetched."""
    positions = {("a", 0): -1001, ("a", 1): -1001}
    bounds = {("a", 0): (0, 1121), ("a", 1): (40, 40)}
    assert lagging(positions, bounds) == [Lag("a", 0, -1001, 1121)]


def test_a_partition_never_fetched_counts_from_the_groups_committed_offset() -> None:
    """After a broker restart: no position, but everything up to the end was committed before: not waiting.
    Records past the committed offset do wait."""
    positions = {("a", 0): -1001, ("a", 1): -1001}
    bounds = {("a", 0): (0, 4), ("a", 1): (0, 9)}
    assert lagging(positions, bounds, {("a", 0): 4, ("a", 1): 6}) == [Lag("a", 1, -1001, 9)]


def test_a_partition_without_a_known_end_is_not_judged() -> None:
    assert lagging({("a", 0): 1}, {}) == []


def test_checks_only_after_a_quiet_spell_and_then_at_most_once_per_spell() -> None:
    watch = StallWatch(10, now=0)
    assert not watch.polled(0, 5)
    assert watch.polled(0, 10)
    assert not watch.polled(0, 15)  # checked 5 s ago
    assert watch.polled(0, 20)


def test_records_reset_the_quiet_spell() -> None:
    watch = StallWatch(10, now=0)
    assert not watch.polled(3, 9)
    assert not watch.polled(0, 18)  # 9 s since the last record
    assert watch.polled(0, 19)


def test_lag_reads_as_position_and_end() -> None:
    assert str(Lag("t", 2, 4, 9)) == "t[2] position 4 end 9"
