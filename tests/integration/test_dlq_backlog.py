"""The DLQ backlog gauge counts what is parked on each dead-letter topic."""

from __future__ import annotations

import pytest

from shopstream.api.backlog import count_backlog
from shopstream.config import Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.kafka import AsyncProducer
from shopstream.topology import apply, load_topology

pytestmark = pytest.mark.broker


async def test_backlog_counts_parked_records(settings: Settings) -> None:
    apply(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    assert count_backlog(settings)[settings.topic("shop.orders.dlq")] == 0
    producer = AsyncProducer(settings)
    writer = DeadLetterWriter(producer, "test", load_topology().dlq_routes(settings.topic_prefix))
    for i in range(3):
        record = FailedRecord(topic=settings.topic("shop.orders"), key=f"k{i}".encode(), value=b"x", partition=0,
                              offset=i)
        await writer.park(record, Failure(ValueError("boom"), "process"))
    await writer.park(FailedRecord(topic=settings.topic("payments"), key=b"p", value=b"y"),
                      Failure(ValueError("boom"), "process"))
    producer.close()
    counts = count_backlog(settings)
    assert counts[settings.topic("shop.orders.dlq")] == 3
    assert counts[settings.topic("payments.dlq")] == 1
    assert counts[settings.topic("returns.dlq")] == 0
