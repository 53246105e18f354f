"""The runner's pure parts: batching by partition, the done-prefix commit rule, the batch's state overlay."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from shopstream.runner.offsets import DoneOffsets, by_partition
from shopstream.runner.store import PartitionState

TP = ("t", 0)


@dataclass
class Msg:
    t: str
    p: int
    o: int

    def topic(self) -> str:
        return self.t

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o


def test_records_are_grouped_by_partition_in_poll_order_across_co_partitioned_topics() -> None:
    msgs = [Msg("a", 0, 5), Msg("b", 1, 7), Msg("b", 0, 2), Msg("a", 0, 6), Msg("a", 1, 1)]
    groups = by_partition(msgs)
    assert [(m.t, m.o) for m in groups[0]] == [("a", 5), ("b", 2), ("a", 6)]
    assert [(m.t, m.o) for m in groups[1]] == [("b", 7), ("a", 1)]


def test_records_of_partitions_not_owned_are_dropped() -> None:
    msgs = [Msg("a", 0, 5), Msg("a", 1, 7), Msg("b", 0, 1)]
    groups = by_partition(msgs, owned={("a", 0), ("a", 1)})
    assert [(m.t, m.o) for m in groups[0]] == [("a", 5)]
    assert [m.o for m in groups[1]] == [7]


def test_commit_position_is_the_end_of_the_contiguous_done_prefix() -> None:
    done = DoneOffsets()
    for offset in (10, 11, 12, 13):
        done.read(TP, offset)
    done.done(TP, 10)
    done.done(TP, 12)  # 11 not done: holds the commit at 11
    assert done.positions() == {TP: 11}
    done.committed({TP: 11})
    assert done.positions() == {}
    assert done.in_flight() == 2
    done.done(TP, 11)
    assert done.positions() == {TP: 13}
    done.done(TP, 13)
    assert done.positions() == {TP: 14}
    assert done.in_flight() == 0


def test_offset_gaps_do_not_hold_the_commit_back() -> None:
    """Read order counts, not offset arithmetic: a compacted or marker offset was never read."""
    done = DoneOffsets()
    for offset in (3, 7, 8):
        done.read(TP, offset)
        done.done(TP, offset)
    assert done.positions() == {TP: 9}


def test_nothing_read_nothing_to_commit_and_forgotten_partitions_vanish() -> None:
    done = DoneOffsets()
    assert done.positions() == {}
    done.read(TP, 1)
    assert done.positions() == {}  # read, not done
    done.done(TP, 1)
    done.forget([TP])
    assert done.positions() == {}


@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_position_never_passes_an_undone_record(flags: list[bool]) -> None:
    done = DoneOffsets()
    for offset in range(len(flags)):
        done.read(TP, offset)
    for offset, finished in enumerate(flags):
        if finished:
            done.done(TP, offset)
    prefix = next((i for i, f in enumerate(flags) if not f), len(flags))
    assert done.positions().get(TP, 0) == prefix


def test_a_batch_sees_its_own_writes_and_stores_them_only_on_commit() -> None:
    stored = {b"a": 1, b"b": 2}
    state = PartitionState(stored)
    state[b"a"] = 10
    del state[b"b"]
    state[b"c"] = 3
    assert state.get(b"a") == 10 and state.get(b"b") is None and state[b"c"] == 3
    assert stored == {b"a": 1, b"b": 2}  # nothing stored before the broker confirmed
    state.rollback()
    assert state.get(b"a") == 1
    state[b"a"] = 11
    del state[b"b"]
    state.commit()
    assert stored == {b"a": 11}
