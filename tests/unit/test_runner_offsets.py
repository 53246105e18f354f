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


def test_a_held_record_holds_the_commit_until_its_deferred_ack() -> None:
    """Deferred acknowledgement (`Effects.pending`): 11 waits for its window; 12, 13 are done meanwhile."""
    done = DoneOffsets()
    for offset in (10, 11, 12, 13):
        done.read(TP, offset)
    for offset in (10, 12, 13):
        done.done(TP, offset)
    assert done.positions() == {TP: 11}  # nothing committed past the held record
    done.committed({TP: 11})
    done.read(TP, 14)
    done.done(TP, 14)
    assert done.positions() == {} and done.in_flight() == 1
    done.done(TP, 11)  # the ack, once the window's command is confirmed
    assert done.positions() == {TP: 15} and done.in_flight() == 0


def test_an_ack_after_the_partition_was_forgotten_or_repeated_changes_nothing() -> None:
    done = DoneOffsets()
    done.read(TP, 5)
    done.forget([TP])
    done.done(TP, 5)  # a late ack for a revoked partition: its next owner's position is not ours
    assert done.positions() == {}
    done.read(TP, 6)
    done.done(TP, 6)
    done.done(TP, 6)
    done.done(TP, 99)  # never read
    assert done.positions() == {TP: 7}


def test_held_records_of_one_partition_do_not_hold_another() -> None:
    done, other = DoneOffsets(), ("t", 1)
    done.read(TP, 0)
    done.read(other, 0)
    done.done(other, 0)
    assert done.positions() == {other: 1}


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=1, max_size=40), st.randoms())
def test_position_never_passes_a_held_record_whatever_the_ack_order(
        records: list[tuple[bool, int]], rnd: object) -> None:
    """Each record is done at once or held and acked later in any order; after every step the position
    is exactly the end of the prefix done so far (never past a record still held)."""
    import random
    assert isinstance(rnd, random.Random)
    done = DoneOffsets()
    finished: set[int] = set()
    held: list[int] = []
    for offset, (deferred, _) in enumerate(records):
        done.read(TP, offset)
        if deferred:
            held.append(offset)
        else:
            done.done(TP, offset)
            finished.add(offset)
        if held and rnd.random() < 0.3:  # some ack arrives meanwhile
            ack = held.pop(rnd.randrange(len(held)))
            done.done(TP, ack)
            finished.add(ack)
        prefix = next((i for i in range(offset + 1) if i not in finished), offset + 1)
        assert done.positions().get(TP, 0) == prefix
    rnd.shuffle(held)
    for ack in held:
        done.done(TP, ack)
    assert done.positions().get(TP, 0) == len(records)
