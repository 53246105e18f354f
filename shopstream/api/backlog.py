"""DLQ backlog gauge: records retained on each dead-letter topic, refreshed in the background.

The read API runs the refresher so that Prometheus always has `shopstream_dlq_backlog{dlq_topic}`
to alert on (e.g. `shopstream_dlq_backlog > 0 for 10m`), without anyone running `shopstream dlq list`.
Counted from watermarks (high - low per partition): cheap, no record is read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from confluent_kafka import KafkaException, TopicPartition

from shopstream.config import Settings
from shopstream.kafka import make_consumer
from shopstream.metrics import DLQ_BACKLOG
from shopstream.topology import load_topology_for

REFRESH_S = 30.0
log = logging.getLogger("shopstream.api.backlog")


def count_backlog(settings: Settings, timeout_s: float = 5.0) -> dict[str, int]:
    """Records on every DLQ topic of the topology (physical names); topics that do not exist are skipped."""
    consumer = make_consumer(settings, "shopstream.dlq-backlog")
    try:
        names = [settings.topic(t.name) for t in load_topology_for(settings).topics if t.kind == "dlq"]
        metadata = consumer.list_topics(timeout=timeout_s).topics
        counts: dict[str, int] = {}
        for name in names:
            if name not in metadata:
                continue
            total = 0
            for partition in metadata[name].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=timeout_s)
                total += max(0, high - low)
            counts[name] = total
        return counts
    finally:
        consumer.close()


def refresher(settings: Settings,
              interval_s: float = REFRESH_S) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context that refreshes the gauge every `interval_s` while the app runs."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                try:
                    counts = await asyncio.get_running_loop().run_in_executor(None, count_backlog, settings)
                    for topic, count in counts.items():
                        DLQ_BACKLOG.labels(topic).set(count)
                except KafkaException as exc:
                    log.warning("DLQ backlog not refreshed: %s", exc)
                await asyncio.sleep(interval_s)

        task = asyncio.create_task(loop())
        yield
        task.cancel()

    return ctx
