"""What the webhook integration tests share: the connectors app in-process, and reading what it published.

`read_topic` assigns every partition (no consumer group), waits for `want` records, then `settle_s`
more to catch extras (so a test can assert that nothing else was published).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from confluent_kafka import Consumer, Message, TopicPartition

from shopstream.config import Settings
from shopstream.connectors.service import make_app
from shopstream.topology import load_topology


@asynccontextmanager
async def client_for(settings: Settings, **producer_overrides: Any) -> AsyncIterator[TestClient[Any, Any]]:
    """An HTTP client on the connectors app; `producer_overrides` are librdkafka settings for its producer."""
    async with TestClient(TestServer(make_app(settings, producer_overrides=producer_overrides))) as client:
        yield client


def partitions_of(name: str) -> int:
    """The partition count the shipped topology gives topic `name`."""
    return next(t.partitions for t in load_topology().topics if t.name == name)


def read_topic(settings: Settings, name: str, *, want: int, partitions: int | None = None, settle_s: float = 1.5,
               timeout_s: float = 20.0) -> list[Message]:
    """Records on topic `name` (under the settings' prefix), from every partition unless `partitions` is given."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "webhook-test-reader",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    count = partitions if partitions is not None else partitions_of(name)
    consumer.assign([TopicPartition(settings.topic(name), p, 0) for p in range(count)])
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            got += [m for m in consumer.consume(100, 0.2) if m.error() is None]
        settle = time.monotonic() + settle_s
        while time.monotonic() < settle:
            got += [m for m in consumer.consume(100, 0.2) if m.error() is None]
    finally:
        consumer.close()
    return got
