"""The consumer lag gauge's count on a real broker: a group that committed part of a topic lags by the rest."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from shopstream.api.lag import count_lag
from shopstream.config import Settings
from shopstream.kafka import make_admin, make_consumer
from tests.kafka_write import make_producer

pytestmark = pytest.mark.broker


def test_lag_is_high_watermark_minus_committed(settings: Settings) -> None:
    topic = settings.topic("lag-test")
    admin = make_admin(settings)
    for future in admin.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "3600000",
                                                                    "cleanup.policy": "delete"})]).values():
        future.result(timeout=30)
    # one record per batch: Tansu reports the last batch's base offset + 1 as the end (README, Tansu
    # quirks), so with batches the gauge is a lower bound there (api/lag.py)
    producer = make_producer(settings, **{"batch.num.messages": 1})
    for i in range(10):
        producer.produce(topic, key=b"k", value=str(i).encode())
    assert producer.flush(30) == 0
    consumer = make_consumer(settings, "lag-worker")
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    finally:
        consumer.close()
    lag = count_lag(settings)
    assert lag[(settings.topic("lag-worker"), topic)] == 6
