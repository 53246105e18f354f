"""Stall detection: a consumer that polls nothing while records wait past its position on its partitions.

A processor that silently stops consuming is an incident, not a quiet day: the runner counts the
records each poll returns, and once nothing arrived for `after_s` seconds it compares each owned
partition's position with the partition's end (one ListOffsets round trip, only while idle). Partitions
with records past the position are reported (log WARNING with position, committed offset and end;
`shopstream_runner_stalled_partitions`), and the consumer is re-pointed at its own position (`seek`),
which drops librdkafka's fetch state for the partition and makes it fetch again. Pure bookkeeping here;
the loop does the Kafka calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Lag:
    """One partition with records past the consumer's position."""

    topic: str
    partition: int
    position: int
    end: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}] position {self.position} end {self.end}"


def lagging(positions: Mapping[TopicPartition, int], bounds: Mapping[TopicPartition, tuple[int, int]],
            committed: Mapping[TopicPartition, int] | None = None) -> list[Lag]:
    """The partitions whose end lies past the position. A position < 0 (none yet: the consumer has not
    fetched the partition since its assignment) counts from the group's committed offset, or from the
    partition's start without one: a partition whose records were all committed before is not waiting
    (seen after a broker restart: position -1001, committed 4, end 4, reported every 40 s)."""
    out = []
    committed = committed or {}
    for (topic, partition), position in sorted(positions.items()):
        low, end = bounds.get((topic, partition), (0, -1))
        start = committed.get((topic, partition), -1)
        if end > (position if position >= 0 else start if start >= 0 else low):
            out.append(Lag(topic, partition, position, end))
    return out


class StallWatch:
    """When to look: after `after_s` seconds in which polls returned nothing, then every `after_s` again."""

    def __init__(self, after_s: float, now: float) -> None:
        self.after_s = after_s
        self._last_record = now
        self._last_check = now

    def polled(self, count: int, now: float) -> bool:
        """A poll returned `count` records at `now`; True when an idle check is due."""
        if count:
            self._last_record = now
            return False
        if now - self._last_record < self.after_s or now - self._last_check < self.after_s:
            return False
        self._last_check = now
        return True
