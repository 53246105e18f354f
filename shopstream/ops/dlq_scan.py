"""Read a topic from its start up to the end offsets captured when the read starts — never "until the end".

A replay whose records fail again lands them on the very DLQ it is reading; a reader that goes on
"until there is nothing more" then chases its own tail for ever (the AKHQ bug). `read_bounded`
therefore asks the broker for every partition's end offset (high watermark) once, before reading,
and stops at it: records written after the start are never part of this read.

Partitions are `assign`ed (no consumer-group join, nothing committed): the tool is a reader, it
leaves no group offsets behind, and a read of a small DLQ takes milliseconds instead of a join.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, KafkaException, Message, TopicPartition

from shopstream.config import Settings
from shopstream.kafka import fetched_end, make_admin, make_consumer

from .dlq_filters import DeadLetter, Selection, parse_dead_letter

#: The consumer group id of the tool's consumers: never joined (assign only) and never committed.
GROUP_ID = "dlq-tool"


class TopicMissing(Exception):
    """The topic does not exist on the broker."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic} does not exist on the broker (run `shopstream topics apply`, "
                         "and check SHOPSTREAM_TOPIC_PREFIX)")
        self.topic = topic


class ScanError(Exception):
    """The read could not reach the end offsets captured at its start (broker away, fetch errors)."""


def broker_topics(settings: Settings, timeout_s: float = 10.0) -> set[str]:
    """Names of the topics on the broker; ScanError naming the bootstrap servers if it does not answer."""
    try:
        metadata = make_admin(settings).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ScanError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers} "
                        f"(KAFKA_BOOTSTRAP_SERVERS): {exc.args[0] if exc.args else exc}") from None
    return {name for name, meta in metadata.topics.items() if meta.error is None}


def _headers(msg: Message) -> list[tuple[str, bytes | None]]:
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in pairs]


def _timestamp(msg: Message) -> int | None:
    kind, ts = msg.timestamp()
    return None if kind == TIMESTAMP_NOT_AVAILABLE or ts < 0 else int(ts)


def read_bounded(settings: Settings, topic: str, *, offset_from: int | None = None, offset_to: int | None = None,
                 timeout_s: float = 10.0, idle_timeout_s: float = 15.0) -> Iterator[Message]:
    """Every record of `topic` (all partitions) from the start (or `offset_from`) up to the end offsets
    captured before the first fetch (or `offset_to`, inclusive).

    Raises TopicMissing when the topic does not exist, ScanError when the read stalls for
    `idle_timeout_s` before reaching the captured ends. Closing the generator closes the consumer.
    """
    consumer = make_consumer(settings, GROUP_ID, **{"enable.partition.eof": False})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        tmeta = metadata.topics.get(topic)
        if tmeta is None or tmeta.error is not None or not tmeta.partitions:
            raise TopicMissing(topic)
        start: dict[int, int] = {}
        end: dict[int, int] = {}
        for p in sorted(tmeta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s, cached=False)
            first = max(low, offset_from or 0)
            stop = high if offset_to is None else min(high, offset_to + 1)
            if first < stop:
                start[p], end[p] = first, stop
        if not end:
            return
        consumer.assign([TopicPartition(topic, p, start[p]) for p in sorted(start)])
        pending = set(end)
        # Tansu reports the last batch's base offset + 1 as the end (README, Tansu quirks): a park batch of
        # several records (the ingest parks rows concurrently) would lose all but its first. A fetch
        # response carries the exact watermark: each partition's end is raised to it once, at its first
        # record, before anything of it is yielded.
        exact: set[int] = set()
        last_progress = time.monotonic()
        while pending:
            batch = consumer.consume(500, 0.2)
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise ScanError(f"reading {topic}: {err}")
                p, offset = msg.partition(), msg.offset()
                if p is None or offset is None or p not in pending:
                    continue
                if p not in exact and offset_to is None:
                    exact.add(p)
                    end[p] = fetched_end(consumer, topic, p, end[p])
                if offset >= end[p]:  # written after the read started: not ours
                    pending.discard(p)
                    continue
                last_progress = time.monotonic()
                yield msg
                if offset + 1 >= end[p]:
                    pending.discard(p)
            if pending and not batch:
                # Gaps (compaction, transaction markers) move the position past the last offset seen.
                for tp in consumer.position([TopicPartition(topic, p) for p in pending]):
                    if tp.offset >= end[tp.partition]:
                        pending.discard(tp.partition)
                if pending and time.monotonic() - last_progress > idle_timeout_s:
                    where = ", ".join(f"partition {p} short of offset {end[p]}" for p in sorted(pending))
                    raise ScanError(f"reading {topic} stalled for {idle_timeout_s:.0f}s ({where})")
    except KafkaException as exc:
        raise ScanError(f"reading {topic}: {exc.args[0] if exc.args else exc}") from exc
    finally:
        consumer.close()


def scan(settings: Settings, topic: str, selection: Selection | None = None, *, timeout_s: float = 10.0,
         idle_timeout_s: float = 15.0) -> Iterator[DeadLetter]:
    """The dead letters of the physical DLQ `topic` that match `selection`, read to the captured ends."""
    sel = selection or Selection()
    for msg in read_bounded(settings, topic, offset_from=sel.offset_from, offset_to=sel.offset_to,
                            timeout_s=timeout_s, idle_timeout_s=idle_timeout_s):
        dl = parse_dead_letter(msg.topic() or topic, msg.partition() or 0, msg.offset() or 0, _timestamp(msg),
                               msg.key(), msg.value(), _headers(msg))
        if sel.matches(dl):
            yield dl


def read_log(settings: Settings, topic: str, key_prefix: str = "") -> dict[str, bytes | None]:
    """The latest value per key of a (compacted) log topic, read to the captured end; keys as text."""
    latest: dict[str, bytes | None] = {}
    for msg in read_bounded(settings, topic):
        raw = msg.key()
        if raw is None:
            continue
        key = raw.decode("utf-8", "replace")
        if key.startswith(key_prefix):
            latest[key] = msg.value()
    return latest
