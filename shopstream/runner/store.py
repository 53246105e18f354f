"""The runner's state store: one in-memory dict per owned partition, written through to a compacted changelog.

Changelog partition = input partition (the changelog is a member of its inputs' co-partition group,
`Topology.table_changelog`), so a key's state lives where its input records arrive. A value is
stored in memory as the processor's object and written as `encode_state(value)` bytes (a tombstone
for None). On assignment a partition is restored by reading its changelog partition from the
beginning to the end before any input record of that partition is processed.

The end: the high watermark, and then whatever else the last fetch carried. Tansu answers ListOffsets
with the base offset of the last batch + 1 (README, Tansu quirks), so the records of a multi-record
last batch lie past it; they arrive in the same fetch as the first of them, and a short drain after
the watermark picks them up. On S3 storage (the durable broker) that ListOffsets answer can be far
short: Tansu takes the batch with the newest S3 LastModified, which moto gives to the second, and of
the batches of that second the first — 1 for twenty records written within a second. So the end
is also taken from every fetch response's high watermark (Tansu's own watermark record, exact on
either storage; Kafka's log end), and the restore's fetches wait as long as the consumers'
(`KAFKA_FETCH_MAX_WAIT_MS`): Tansu spends a fetch's wait listing the partition's batches in S3 and
answers empty once it is spent, so a shorter wait never reaches the end on the durable broker.

Atomic state (`Processor.atomic_state`): when keys depend on each other, a crash between two changelog
records of one batch would restore some keys at the batch's end and others before it (a re-read record
is then deduplicated by one key and counted again in another). Such a processor's batches end with a
`BATCH_END` record, produced after the batch's other records in order; a restore applies only the records
before the last marker and ignores those after it (a batch cut off: its input records were not committed
and are read again). Compaction keeps that sound: the last marker is the newest of its key, and the
records after it are the newest of theirs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from shopstream.config import Settings
from shopstream.kafka import fetched_end

log = logging.getLogger("shopstream.runner")

Decode = Callable[[bytes], Any]
#: The key of the marker ending an atomic batch on a changelog (never a processor's key: NUL-prefixed).
BATCH_END = b"\x00shopstream:batch-end"


class PartitionState(MutableMapping[bytes, Any]):
    """A partition's committed state plus the writes of the batch in hand (seen by later records of it)."""

    def __init__(self, stored: dict[bytes, Any]) -> None:
        self.stored = stored
        self.writes: dict[bytes, Any] = {}

    def __getitem__(self, key: bytes) -> Any:
        writes = self.writes
        if key in writes:
            value = writes[key]
            if value is None:
                raise KeyError(key)
            return value
        return self.stored[key]

    def get(self, key: bytes, default: Any = None) -> Any:
        """The value of `key` (the batch's write first), or `default`."""
        writes = self.writes
        if key in writes:
            value = writes[key]
            return default if value is None else value
        return self.stored.get(key, default)

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.writes[key] = value

    def __delitem__(self, key: bytes) -> None:
        self.writes[key] = None

    def __iter__(self) -> Iterator[bytes]:
        yield from {**self.stored, **self.writes}

    def __len__(self) -> int:
        return len({**self.stored, **self.writes})

    def commit(self) -> None:
        """The batch's writes were confirmed on the changelog: they become the stored state."""
        stored, writes = self.stored, self.writes
        if None in writes.values():
            for key, value in writes.items():
                if value is None:
                    stored.pop(key, None)
                else:
                    stored[key] = value
        else:
            stored.update(writes)
        self.writes = {}

    def rollback(self) -> None:
        """Forget the batch's writes (its records are read again or re-applied)."""
        self.writes = {}


def restore(settings: Settings, changelog: str, partition: int, decode: Decode,
            timeout_s: float = 120.0, *, atomic: bool = False) -> dict[bytes, Any]:
    """Read `changelog`[`partition`] from the beginning to its end; the latest value per key (tombstones drop it).

    `atomic`: only what precedes the last `BATCH_END` marker (see the module docstring); a changelog
    without any marker (written before they existed) is taken whole, and the runner marks it at once."""
    started = time.monotonic()
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"restore-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "enable.partition.eof": True, "fetch.wait.max.ms": settings.kafka_fetch_max_wait_ms})
    state: dict[bytes, Any] = {}
    # atomic: the records since the last marker, applied when the next marker comes ({key: raw or None})
    open_batch: dict[bytes, bytes | None] = {}
    marked = False
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(changelog, partition), timeout=10)
        if high <= low:
            return state
        consumer.assign([TopicPartition(changelog, partition, low)])
        reached = False
        while True:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"restoring {changelog}[{partition}] took over {timeout_s:.0f} s")
            # consume(n, t) waits the whole t unless n records come: a long wait before the end cost every
            # restore a full second (a rebalance restores each partition in turn), so short polls until the
            # end is seen, then the drain for the records Tansu puts past its reported watermark.
            batch = consumer.consume(10_000, 0.2 if reached else 0.05)
            if not batch and reached:
                break
            # the fetch responses' watermark (-1 before the first): exact where ListOffsets is not (docstring)
            high = fetched_end(consumer, changelog, partition, high)
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() == err._PARTITION_EOF:
                        reached = True
                        continue
                    raise KafkaException(err)
                key, value = msg.key(), msg.value()
                if (msg.offset() or 0) + 1 >= high:
                    reached = True
                if key is None:
                    continue
                if not atomic:
                    _put(state, key, value, decode)
                elif key == BATCH_END:
                    marked = True
                    for done_key, done_value in open_batch.items():
                        _put(state, done_key, done_value, decode)
                    open_batch.clear()
                else:
                    open_batch[key] = value
    finally:
        consumer.close()
    if open_batch and not marked:  # a changelog from before markers: all of it (the runner marks it now)
        for key, value in open_batch.items():
            _put(state, key, value, decode)
    elif open_batch:
        log.warning("restore %s[%d]: %d record(s) of a batch cut off by a crash ignored (its input is read again)",
                    changelog, partition, len(open_batch))
    log.info("restored %s[%d]: %d keys in %.2f s", changelog, partition, len(state), time.monotonic() - started)
    return state


def _put(state: dict[bytes, Any], key: bytes, value: bytes | None, decode: Decode) -> None:
    if value is None:
        state.pop(key, None)
    else:
        state[key] = decode(value)
