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
    Read order, not offset arithmetic: offsets have gaps (compaction, transaction markers)."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, deque[list[int]]] = {}  # [offset, done] in read order
        self._position: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def read(self, tp: TopicPartition, offset: int) -> None:
        """`offset` of `tp` was handed to processing (not done yet)."""
        self._pending.setdefault(tp, deque()).append([offset, 0])

    def done(self, tp: TopicPartition, offset: int) -> None:
        """`offset` of `tp` was applied or parked; the position moves over the done prefix."""
        queue = self._pending.get(tp)
        if not queue:
            return
        for entry in queue:
            if entry[0] == offset:
                entry[1] = 1
                break
        while queue and queue[0][1]:
            self._position[tp] = queue.popleft()[0] + 1

    def positions(self) -> dict[TopicPartition, int]:
        """{tp: next offset to commit} for every tp whose position moved since `committed` was last told."""
        return {tp: pos for tp, pos in self._position.items() if self._committed.get(tp) != pos}

    def committed(self, positions: dict[TopicPartition, int]) -> None:
        """The broker took these positions."""
        self._committed.update(positions)

    def in_flight(self) -> int:
        """Records read and not done yet (0 between batches unless one halted the loop)."""
        return sum(1 for queue in self._pending.values() for entry in queue if not entry[1])

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions revoked or lost: nothing about them is kept."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._position.pop(tp, None)
            self._committed.pop(tp, None)
