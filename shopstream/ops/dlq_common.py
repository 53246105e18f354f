"""What the `shopstream dlq` verbs share: topic arguments (a DLQ's name, a replay's `--to`), the name
of the replay log, the clock, and shortening a message to one line.

Each verb module (`dlq_list`, `dlq_show`, `dlq_replay`) prints to `out` and returns the exit code
(0 ok, 1 something failed); a bad or conflicting argument raises `UsageError` (the CLI exits 2).
Topic arguments are logical topology names (`shop.orders.dlq`); the physical name adds
SHOPSTREAM_TOPIC_PREFIX. Argument parsing is in cli.py.
"""

from __future__ import annotations

import time
from typing import IO, Any

from shopstream.topology import Topic, Topology, names

from .dlq_filters import UsageError, escape_controls

#: Logical name of the replay log (topology/topics.yaml).
REPLAY_LOG = names.DLQ_REPLAY_LOG
EXAMPLE_CHARS = 100


class _EscapingWriter:
    """A text stream that writes through `out` with terminal control characters escaped."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(escape_controls(text))

    def flush(self) -> None:
        self._out.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


def safe_out(out: IO[str]) -> IO[str]:
    """`out` escaping terminal control sequences: what the DLQ tools print quotes senders' bytes."""
    return out if isinstance(out, _EscapingWriter) else _EscapingWriter(out)  # type: ignore[return-value]


def now_ms() -> int:
    return int(time.time() * 1000)


def one_line(text: str | None, limit: int = EXAMPLE_CHARS) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def dlq_topics(topology: Topology) -> list[Topic]:
    """The DLQ topics of the topology, in file order."""
    return [t for t in topology.topics if t.kind == "dlq"]


def resolve_dlq(topology: Topology, name: str, prefix: str = "") -> Topic:
    """The DLQ topic named `name` (logical, or physical with the prefix); UsageError otherwise."""
    known = ", ".join(t.name for t in dlq_topics(topology))
    candidates = [name]
    if prefix and name.startswith(prefix):
        candidates.append(name[len(prefix):])
    for candidate in candidates:
        try:
            topic = topology.topic(candidate)
        except KeyError:
            continue
        if topic.kind != "dlq":
            hint = f" (its DLQ is {topic.dlq})" if topic.dlq else ""
            article = "an" if topic.kind[0] in "aeiou" else "a"
            raise UsageError(f"{name} is {article} {topic.kind} topic, not a DLQ{hint}; DLQ topics: {known}")
        return topic
    raise UsageError(f"unknown topic {name!r}; DLQ topics: {known}")


def _replayable(topic: Topic) -> bool:
    """A DLQ, the replay log or a state-store changelog (internal, read by no processor as input) is no
    replay target: records sent there are parked again or corrupt a table's state."""
    return topic.kind != "dlq" and topic.name != REPLAY_LOG and not (topic.kind == "internal" and not topic.consumed)


def resolve_target(topology: Topology, name: str, prefix: str = "") -> str:
    """The physical name of a `--to` topic: a non-DLQ topic of the topology; UsageError otherwise."""
    candidates = [name] + ([name[len(prefix):]] if prefix and name.startswith(prefix) else [])
    for candidate in candidates:
        try:
            topic = topology.topic(candidate)
        except KeyError:
            continue
        if topic.kind == "dlq" or topic.name == REPLAY_LOG:
            raise UsageError(f"--to {name}: replaying into {topic.name} would only park the records again; "
                             "name the topic a processor reads")
        if not _replayable(topic):
            raise UsageError(f"--to {name}: {topic.name} is a worker's internal topic (a table changelog): "
                             "replayed records would corrupt its state; name the topic a processor reads")
        return topic.physical_name(prefix)
    targets = ", ".join(t.name for t in topology.topics if _replayable(t))
    raise UsageError(f"--to {name}: unknown topic; topics: {targets}")
