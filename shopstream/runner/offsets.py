"""The runner's pure bookkeeping: a poll's records grouped by partition, and what may be committed.

No Kafka client here (unit-tested without a broker): records are anything with `partition()` and
`offset()`, topic-partitions are `(topic, partition)` tuples.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Protocol, TypeVar


class _Positioned(Protocol):
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


M = TypeVar("M", bound=_Positioned)
TopicPartition = tuple[str, int]


def by_partition(records: Iterable[M], owned: set[TopicPartition] | None = None) -> dict[int, list[M]]:
    """Records grouped by partition number (co-partitioned topics share one group), poll order kept.

    Records of a topic-partition not in `owned` are dropped: fetched before a rebalance took it, they
    belong to its next owner, which reads them again from the committed offset."""
    groups: dict[int, list[M]] = {}
    for rec in records:
        partition = rec.partition() or 0
        if owned is not None and (rec.topic() or "", partition) not in owned:
            continue
        group = groups.get(partition)
        if group is None:
            groups[partition] = [rec]
        else:
            group.append(rec)
    return groups


class DoneOffsets:
    """Per topic-partition: records read and done; the commit position ends the contiguous done prefix.

    A record is done once it was applied (outputs and state confirmed) or parked. The position to
    commit is one past the last record of the unbroken run of done records, in read order, from the
    first one read: a record read but not done holds the commit back, whatever was done after it.
    Read order, not offset arithmetic: offsets have gaps (compaction, transaction markers).
    A record whose acknowledgement is deferred (`Effects.pending`) simply stays not done until its ack:
    nothing after it is committed meanwhile, however much after it is done."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, deque[list[int]]] = {}  # [offset, done] in read order
        self._index: dict[TopicPartition, dict[int, list[int]]] = {}  # offset -> its entry (O(1) acks)
        self._position: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def read(self, tp: TopicPartition, offset: int) -> None:
        """`offset` of `tp` was handed to processing (not done yet)."""
        entry = [offset, 0]
        self._pending.setdefault(tp, deque()).append(entry)
        self._index.setdefault(tp, {})[offset] = entry

    def done(self, tp: TopicPartition, offset: int) -> None:
        """`offset` of `tp` was applied, parked or acknowledged; the position moves over the done prefix.

        An offset not read (or forgotten with its partition) changes nothing: a late ack for a partition
        revoked meanwhile must not move its new owner's position."""
        entry = self._index.get(tp, {}).pop(offset, None)
        if entry is None:
            return
        entry[1] = 1
        queue = self._pending[tp]
        while queue and queue[0][1]:
            self._position[tp] = queue.popleft()[0] + 1

    def positions(self) -> dict[TopicPartition, int]:
        """{tp: next offset to commit} for every tp whose position moved since `committed` was last told."""
        return {tp: pos for tp, pos in self._position.items() if self._committed.get(tp) != pos}

    def committed(self, positions: dict[TopicPartition, int]) -> None:
        """The broker took these positions."""
        self._committed.update(positions)

    def in_flight(self) -> int:
        """Records read and not done yet (between batches: those held for a deferred ack, or a halted batch)."""
        return sum(len(index) for index in self._index.values())

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions revoked or lost: nothing about them is kept."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._index.pop(tp, None)
            self._position.pop(tp, None)
            self._committed.pop(tp, None)
