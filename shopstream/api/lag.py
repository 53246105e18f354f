"""Consumer lag gauge: records each shopstream consumer group has not committed yet, per topic.

`shopstream_consumer_lag{group, topic}` = sum over partitions of (high watermark - committed offset)
for every group that has committed on a topic of this deployment (the topic prefix). Refreshed by the
read API next to the DLQ backlog (`shopstream.api.backlog`), so the "lag growing" and "worker stuck"
alerts need nothing else running. Groups are found through the broker (ListGroups), so a new worker
is covered without a list to keep; a partition without a committed offset counts from its low
watermark (everything retained is unread). On the embedded Tansu the high watermark is the last batch's
base offset + 1 (README, Tansu quirks), so there the figure is a lower bound, short by at most the records
after the first of each partition's last batch; on Kafka it is exact.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from confluent_kafka import OFFSET_END, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from prometheus_client import Gauge

from shopstream.config import Settings
from shopstream.kafka import fetched_end, make_admin, make_consumer

REFRESH_S = 30.0
CONSUMER_LAG = Gauge("shopstream_consumer_lag", "Records not yet committed by a consumer group, per topic",
                     ["group", "topic"])
log = logging.getLogger("shopstream.api.lag")


class LogEnds:
    """Partition ends from fetch responses, not ListOffsets: one consumer (no group) at the end of every
    partition it was asked about, drained by `refresh`; ListOffsets only for a partition's first answer.

    For a sampler asking every second (`bench orders`): Tansu answers ListOffsets in time growing with the
    partition's batches (measured: 0.23 ms of broker CPU at 50 batches, 4.9 ms at 5,000), so sampling
    ~150 partitions a second took most of a core once a bench had filled the topics, and the stack it
    measured slowed run after run. Its watermark is exact on Tansu (README, Tansu quirks), where
    ListOffsets' is short. A fetch that finds records costs Tansu a listing of the partition too, so this
    consumer is not free: making it and the watcher fetch less did not change the bench's figures beyond
    the spread of single runs (README, Performance, third pass)."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = make_consumer(settings, f"shopstream.lag-ends.{uuid.uuid4().hex[:8]}")
        self._assigned: set[tuple[str, int]] = set()

    def refresh(self) -> None:
        """Take what was fetched (the records are not needed: the fetch responses carried the watermarks)."""
        while self._consumer.consume(10_000, 0):
            pass

    def end(self, topic: str, partition: int, timeout_s: float) -> int:
        """The partition's end as of the last fetch response (ListOffsets until the first one)."""
        tp = TopicPartition(topic, partition)
        if (topic, partition) not in self._assigned:
            self._consumer.incremental_assign([TopicPartition(topic, partition, OFFSET_END)])
            self._assigned.add((topic, partition))
        listed = -1
        if self._consumer.get_watermark_offsets(tp, cached=True)[1] < 0:
            listed = self._consumer.get_watermark_offsets(tp, timeout=timeout_s)[1]
        return fetched_end(self._consumer, topic, partition, listed)

    def close(self) -> None:
        self._consumer.close()


def count_lag(settings: Settings, timeout_s: float = 5.0, ends: LogEnds | None = None) -> dict[tuple[str, str], int]:
    """(group, topic) -> uncommitted records, for the groups and topics of this deployment's prefix.

    `ends`: partition ends from fetch responses (`LogEnds`) instead of one ListOffsets per partition."""
    admin = make_admin(settings)
    listed = admin.list_consumer_groups(request_timeout=timeout_s).result()
    prefix = settings.topic_prefix
    groups = sorted(g.group_id for g in listed.valid if g.group_id.startswith(prefix))
    reader = make_consumer(settings, "shopstream.lag") if ends is None else None
    if ends is not None:
        ends.refresh()
    lag: dict[tuple[str, str], int] = {}
    try:
        for group in groups:
            request = [ConsumerGroupTopicPartitions(group)]
            committed = admin.list_consumer_group_offsets(request, request_timeout=timeout_s)[group].result()
            for tp in committed.topic_partitions:
                if not tp.topic.startswith(prefix):
                    continue
                if reader is not None:
                    low, high = reader.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                             timeout=timeout_s)
                else:
                    assert ends is not None
                    low, high = 0, ends.end(tp.topic, tp.partition, timeout_s)
                start = tp.offset if tp.offset >= 0 else low
                key = (group, tp.topic)
                lag[key] = lag.get(key, 0) + max(0, high - start)
    finally:
        if reader is not None:
            reader.close()
    return lag


def refresher(settings: Settings,
              interval_s: float = REFRESH_S) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context that refreshes the gauge every `interval_s` while the app runs."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                try:
                    counts = await asyncio.get_running_loop().run_in_executor(None, count_lag, settings)
                    for (group, topic), count in counts.items():
                        CONSUMER_LAG.labels(group, topic).set(count)
                except KafkaException as exc:
                    log.warning("consumer lag not refreshed: %s", exc)
                await asyncio.sleep(interval_s)

        task = asyncio.create_task(loop())
        yield
        task.cancel()

    return ctx
