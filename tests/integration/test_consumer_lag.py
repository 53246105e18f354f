"""The consumer lag gauge's count on a real broker: a group that committed part of a topic lags by the rest."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from shopstream.api.lag import LogEnds, count_lag
from shopstream.config import Settings
from shopstream.kafka import make_admin, make_consumer
from tests.kafka_write import CheckedProducer, make_producer
from tests.workers import wait_for

pytestmark = pytest.mark.broker


def _ten_records_four_committed(settings: Settings, name: str, group: str, **producer_conf: object) -> CheckedProducer:
    """A one-partition topic holding ten records, of which `group` committed four; its producer."""
    topic = settings.topic(name)
    admin = make_admin(settings)
    for future in admin.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "3600000",
                                                                    "cleanup.policy": "delete"})]).values():
        future.result(timeout=30)
    producer = make_producer(settings, **producer_conf)
    for i in range(10):
        producer.produce(topic, key=b"k", value=str(i).encode())
    assert producer.flush(30) == 0
    consumer = make_consumer(settings, group)
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    finally:
        consumer.close()
    return producer


def test_lag_is_high_watermark_minus_committed(settings: Settings) -> None:
    # one record per batch: Tansu reports the last batch's base offset + 1 as the end (README, Tansu
    # quirks), so with batches the gauge is a lower bound there (api/lag.py)
    _ten_records_four_committed(settings, "lag-test", "lag-worker", **{"batch.num.messages": 1})
    lag = count_lag(settings)
    assert lag[(settings.topic("lag-worker"), settings.topic("lag-test"))] == 6


def test_lag_from_fetched_ends_is_exact_and_follows_new_records(settings: Settings) -> None:
    """`LogEnds` (bench orders' sampler): the ends of fetch responses, exact on Tansu even for a last batch
    of many records, where ListOffsets stops at its first."""
    topic = settings.topic("lag-ends-test")
    producer = _ten_records_four_committed(settings, "lag-ends-test", "lag-ends-worker", **{"linger.ms": 50})
    key = (settings.topic("lag-ends-worker"), topic)
    ends = LogEnds(settings)
    try:
        wait_for(lambda: count_lag(settings, ends=ends).get(key) == 6, 15, what="a lag of 6 from the fetched end")
        for i in range(10):
            producer.produce(topic, key=b"k", value=str(i).encode())
        assert producer.flush(30) == 0
        wait_for(lambda: count_lag(settings, ends=ends).get(key) == 16, 15, what="16 after ten more")
    finally:
        ends.close()
