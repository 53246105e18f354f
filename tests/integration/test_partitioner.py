"""One partitioner: confluent-kafka producers from `make_producer` place every key where aiokafka and Java do.

State is partitioned by key, so a key written by any client (confluent-kafka here, aiokafka or Java
elsewhere) must land on the same partition. librdkafka's default is CRC32 (`consistent_random`),
aiokafka/Java use murmur2: `make_producer` sets `partitioner=murmur2_random`. Checked here on a
real broker, against aiokafka's partitioner function and against records aiokafka actually wrote.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from shopstream.config import Settings
from shopstream.kafka import make_admin, partition_for
from shopstream.runner.producer import ConfirmingProducer
from tests.kafka_write import make_producer

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

KEYS = [f"order-{i}".encode() for i in range(300)] + [f"SKU-{i:05d}".encode() for i in range(200)]
TOPIC_CFG = {"cleanup.policy": "delete", "retention.ms": str(3600 * 1000)}


@pytest.fixture
def topics(settings: Settings) -> Iterator[dict[int, str]]:
    """Partition count -> a fresh topic with that many partitions."""
    names = {n: settings.topic(f"partitioner-{n}") for n in (4, 7)}
    admin = make_admin(settings)
    futures = admin.create_topics([NewTopic(name, n, 1, config=TOPIC_CFG) for n, name in names.items()],
                                  operation_timeout=30, request_timeout=30)
    for f in futures.values():
        f.result(timeout=30)
    yield names
    admin.delete_topics(list(names.values()), operation_timeout=10)


def produce_confluent(producer: Producer, topic: str, keys: list[bytes], tag: bytes) -> dict[bytes, int]:
    """Produce one record per key; key -> partition from the broker-confirmed delivery reports."""
    placed: dict[bytes, int] = {}
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            key, partition = msg.key(), msg.partition()
            assert isinstance(key, bytes) and partition is not None
            placed[key] = partition

    for key in keys:
        producer.produce(topic, key=key, value=tag + b":" + key, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []
    assert len(placed) == len(keys)
    return placed


async def produce_aiokafka(bootstrap: str, topic: str, keys: list[bytes], tag: bytes) -> dict[bytes, int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=tag + b":" + key) for key in keys]
        metas = [await f for f in futures]
    finally:
        await producer.stop()
    return {key: meta.partition for key, meta in zip(keys, metas, strict=True)}


def read_back(bootstrap: str, topic: str, partitions: int, expected: int,
              timeout_s: float = 30.0) -> dict[bytes, dict[bytes, int]]:
    """Every record on the topic (assign, no group): tag -> key -> partition it was read from."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "partitioner-reader",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen: dict[bytes, dict[bytes, int]] = {}
    count = 0
    deadline = time.monotonic() + timeout_s
    try:
        while count < expected and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                if msg.error() is not None:
                    continue
                value, partition = msg.value(), msg.partition()
                assert isinstance(value, bytes) and partition is not None
                tag, _, key = value.partition(b":")
                assert key == msg.key()
                seen.setdefault(tag, {})[key] = partition
                count += 1
    finally:
        consumer.close()
    assert count == expected, f"read {count} of {expected} records from {topic}"
    return seen


@pytest.mark.parametrize("partitions", [4, 7])
async def test_make_producer_places_keys_like_aiokafka(settings: Settings, topics: dict[int, str],
                                                       partitions: int) -> None:
    topic = topics[partitions]
    all_partitions = list(range(partitions))

    ours = make_producer(settings)
    confluent = produce_confluent(ours, topic, KEYS, b"confluent")
    aio = await produce_aiokafka(settings.kafka_bootstrap_servers, topic, KEYS, b"aiokafka")

    # 1. aiokafka's own partitioner function (the Java-compatible reference) agrees with the broker's placement.
    expected = {key: DefaultPartitioner()(key, all_partitions, all_partitions) for key in KEYS}
    mismatched = [k for k in KEYS if confluent[k] != expected[k]]
    assert mismatched == [], f"{len(mismatched)} keys placed differently, e.g. {mismatched[:5]}"

    # 2. Records really written by AIOKafkaProducer to the same topic land on the same partitions.
    assert aio == confluent

    # 3. Read back from the broker: each key sits on one partition, for both writers.
    seen = read_back(settings.kafka_bootstrap_servers, topic, partitions, 2 * len(KEYS))
    assert seen[b"confluent"] == confluent
    assert seen[b"aiokafka"] == confluent

    # The keys spread over every partition (the comparison is not trivially passing on one partition).
    assert set(confluent.values()) == set(all_partitions)


async def test_librdkafka_default_partitioner_differs(settings: Settings, topics: dict[int, str]) -> None:
    """Without the setting, confluent-kafka hashes with CRC32: the same key lands elsewhere."""
    topic = topics[4]
    default = Producer(settings.kafka_client_config())  # no `partitioner`: librdkafka's consistent_random
    placed_default = produce_confluent(default, topic, KEYS, b"default")
    placed_ours = produce_confluent(make_producer(settings), topic, KEYS, b"ours")

    differing = [k for k in KEYS if placed_default[k] != placed_ours[k]]
    # With 4 partitions and unrelated hashes about 3 in 4 keys move; require a clear majority.
    assert len(differing) > len(KEYS) // 2, len(differing)
    # And what the default does is CRC32 mod partitions, while ours is murmur2 (aiokafka's).
    assert all(placed_default[k] == zlib.crc32(k) % 4 for k in KEYS)
    assert all(placed_ours[k] == DefaultPartitioner()(k, [0, 1, 2, 3], [0, 1, 2, 3]) for k in KEYS)


def test_producer_config_sets_murmur2(settings: Settings) -> None:
    from shopstream.kafka import producer_config

    conf = producer_config(settings, **{"message.timeout.ms": 1000})
    assert conf["partitioner"] == "murmur2_random"
    assert conf["message.timeout.ms"] == 1000 and conf["acks"] == "all" and conf["enable.idempotence"] is True


def test_runner_producer_confirms_every_record_and_places_keys_alike(
        settings: Settings, topics: dict[int, str]) -> None:
    """The runner's ConfirmingProducer (delivery reports only on failure): after confirm every record is
    on the broker, on the partition murmur2 gives its key (or the one named, as a changelog record's)."""
    topic = topics[4]
    producer = ConfirmingProducer(settings)
    try:
        producer.produce([(topic, key, b"queued:" + key, None) for key in KEYS])
        producer.produce([(topic, b"pinned", b"queued:pinned", 3)])
        assert producer.confirm() == []
        assert not producer.latched
    finally:
        producer.close()
    seen = read_back(settings.kafka_bootstrap_servers, topic, 4, len(KEYS) + 1)
    assert seen[b"queued"] == {**{key: partition_for(key, 4) for key in KEYS}, b"pinned": 3}
