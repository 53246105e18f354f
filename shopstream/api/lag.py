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
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from prometheus_client import Gauge

from shopstream.config import Settings
from shopstream.kafka import make_admin, make_consumer

REFRESH_S = 30.0
CONSUMER_LAG = Gauge("shopstream_consumer_lag", "Records not yet committed by a consumer group, per topic",
                     ["group", "topic"])
log = logging.getLogger("shopstream.api.lag")


def count_lag(settings: Settings, timeout_s: float = 5.0) -> dict[tuple[str, str], int]:
    """(group, topic) -> uncommitted records, for the groups and topics of this deployment's prefix."""
    admin = make_admin(settings)
    listed = admin.list_consumer_groups(request_timeout=timeout_s).result()
    prefix = settings.topic_prefix
    groups = sorted(g.group_id for g in listed.valid if g.group_id.startswith(prefix))
    reader = make_consumer(settings, "shopstream.lag")
    lag: dict[tuple[str, str], int] = {}
    try:
        for group in groups:
            request = [ConsumerGroupTopicPartitions(group)]
            committed = admin.list_consumer_group_offsets(request, request_timeout=timeout_s)[group].result()
            for tp in committed.topic_partitions:
                if not tp.topic.startswith(prefix):
                    continue
                low, high = reader.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout_s)
                start = tp.offset if tp.offset >= 0 else low
                key = (group, tp.topic)
                lag[key] = lag.get(key, 0) + max(0, high - start)
    finally:
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
