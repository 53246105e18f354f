"""Kafka I/O: the one producer factory, an asyncio wrapper for the HTTP faces, the consumer and admin factories.

Every confluent-kafka producer comes from `make_producer`, which sets `partitioner=murmur2_random`:
librdkafka's default (CRC32) would place a key on a different partition than aiokafka and
Java clients (murmur2), and state partitioned by key would split. tests/integration checks this.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from confluent_kafka import Consumer as _Consumer
from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from shopstream.config import Settings

Headers = Sequence[tuple[str, bytes]]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of a key (unsigned 32 bit), as Java clients, aiokafka and librdkafka compute it.

    Same results as `aiokafka.partitioner.murmur2` (a unit test checks it), about twice as fast: bulk
    ingest places a million SKUs by it."""
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    words = length >> 2
    if words:
        for (k,) in struct.iter_unpack("<I", data[:words * 4]):
            k = (k * m) & 0xFFFFFFFF
            k ^= k >> 24
            k = (k * m) & 0xFFFFFFFF
            h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length & 3
    if rest:
        tail = data[words * 4:]
        if rest == 3:
            h ^= tail[2] << 16
        if rest >= 2:
            h ^= tail[1] << 8
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a keyed record lands on with the murmur2 partitioner (every producer here)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class DeliveryError(Exception):
    """The broker did not confirm a write."""

    def __init__(self, topic: str, error: KafkaError | str) -> None:
        super().__init__(f"delivery to {topic} failed: {error}")
        self.topic = topic
        self.retriable = bool(isinstance(error, KafkaError) and error.retriable())


#: librdkafka's default `message.max.bytes` (the producer refuses a larger record at produce time)
MESSAGE_MAX_BYTES = 1_000_000
#: what librdkafka adds to key + value when it checks a record without headers against `message.max.bytes`
#: (36 bytes in librdkafka 2.x; a margin on top, so the check here never passes what produce would refuse)
RECORD_FRAMING = 64


class RecordTooLarge(Exception):
    """A record over the producer's `message.max.bytes`: permanent, the same record is refused every time."""

    def __init__(self, topic: str, key: bytes | None, size: int, limit: int) -> None:
        shown = repr(key[:80]) + ("..." if len(key) > 80 else "") if key is not None else "None"
        super().__init__(f"a record for {topic} with key {shown} is {size} bytes, over the producer's "
                         f"message.max.bytes {limit}")
        self.topic, self.key, self.size, self.limit = topic, key, size, limit


def record_size(key: bytes | None, value: bytes | None) -> int:
    """The size librdkafka checks against `message.max.bytes` for a record without headers (with a margin)."""
    return len(key or b"") + len(value or b"") + RECORD_FRAMING


class Publisher(Protocol):
    """Anything that writes a record and returns once the broker confirmed it."""

    async def publish(self, topic: str, key: bytes | None, value: bytes | None,
                      headers: Headers | None = None) -> None: ...


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """librdkafka producer settings: idempotent, acks=all, murmur2 partitioner."""
    conf = {
        **settings.kafka_client_config(),
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "compression.type": settings.kafka_compression,
        "message.timeout.ms": 30000,
    }
    if not settings.kafka_idempotence:  # the durable Tansu (config.py): a retry may duplicate, never vanish
        conf.update({"enable.idempotence": False, "max.in.flight.requests.per.connection": 1})
    if settings.single_record_batches:
        conf["batch.num.messages"] = 1
    conf.update(overrides)
    return conf


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """The one way to build a confluent-kafka producer in shopstream."""
    return Producer(producer_config(settings, **overrides))


class AsyncProducer:
    """A confluent-kafka producer for asyncio code: `publish` resolves when the broker confirmed.

    librdkafka runs delivery callbacks from `poll()`, so a daemon thread polls and hands each
    report back to the event loop; a webhook is then acknowledged only after Kafka confirmed. The
    stream processors use the runner's `ConfirmingProducer` instead (batches, failures latched).
    """

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self._producer = make_producer(settings, **overrides)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name="kafka-producer-poll", daemon=True)
        self._thread.start()

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def publish(self, topic: str, key: bytes | None, value: bytes | None,
                      headers: Headers | None = None) -> None:
        """Write one record; raise DeliveryError if the broker does not confirm it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            def settle() -> None:
                if done.done():
                    return
                if err is not None:
                    done.set_exception(DeliveryError(topic, err))
                else:
                    done.set_result(None)

            loop.call_soon_threadsafe(settle)

        while True:
            try:
                self._producer.produce(topic, key=key, value=value, headers=list(headers or []),
                                       on_delivery=on_delivery)
                break
            except BufferError:
                # Local queue full: let the poll thread drain delivery reports, then try again.
                await asyncio.sleep(0.01)
            except KafkaException as exc:
                raise DeliveryError(topic, exc.args[0]) from exc
        await done

    def partitions(self, topic: str, timeout_s: float = 10.0) -> int:
        """The topic's partition count as the broker reports it (DeliveryError when it is unknown)."""
        meta = self._producer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise DeliveryError(topic, f"topic unknown to the broker ({meta.error if meta else 'no metadata'})")
        return len(meta.partitions)

    def flush(self, timeout_s: float = 10.0) -> int:
        """Wait for outstanding writes; returns how many are still queued."""
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        self._stop.set()
        self._thread.join(timeout=2)


def fetched_end(consumer: _Consumer, topic: str, partition: int, known: int) -> int:
    """A partition's end: `known` (from ListOffsets) or, when larger, the high watermark of the consumer's
    last fetch response for it. On the embedded Tansu ListOffsets(latest) is the last batch's base offset
    + 1 (and on S3 storage older still); the fetch response's watermark is exact (README, Tansu quirks)."""
    return max(known, consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)[1])


def poll_batch(consumer: _Consumer, batch_size: int, timeout_s: float,
               last_error: str | None) -> tuple[list[Message], str | None]:
    """Up to `batch_size` records: block up to `timeout_s` for the first, then take what is already fetched.

    consume(n, t) waits until n records OR t passed, so waiting only for the first keeps a quiet topic
    from adding latency per batch. Consumer errors are logged once per distinct text (e.g. a topic not
    created yet) and dropped; fatal ones raise. Returns the records and the last error text seen."""
    first = consumer.poll(timeout_s)
    if first is None:
        return [], last_error
    records: list[Message] = []
    for msg in [first, *consumer.consume(batch_size - 1, 0.005)]:
        err = msg.error()
        if err is None:
            records.append(msg)
            continue
        if err.fatal():
            raise KafkaException(err)
        if str(err) != last_error:
            logging.getLogger("shopstream.kafka").warning("consumer error: %s", err)
            last_error = str(err)
    return records, last_error


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """librdkafka consumer settings: manual commits (after processing), earliest on a new group."""
    conf = {
        **settings.kafka_client_config(),
        "group.id": settings.topic(group_id),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": int(settings.kafka_session_timeout_s * 1000),
        "heartbeat.interval.ms": max(500, int(settings.kafka_session_timeout_s * 1000) // 5),
        "enable.partition.eof": False,
        "fetch.wait.max.ms": settings.kafka_fetch_max_wait_ms,
    }
    conf.update(overrides)
    return conf


def make_consumer(settings: Settings, group_id: str, **overrides: Any) -> _Consumer:
    """The one way to build a confluent-kafka consumer (group id gets the topic prefix too)."""
    return _Consumer(consumer_config(settings, group_id, **overrides))


def make_admin(settings: Settings) -> AdminClient:
    """An AdminClient with the shared bootstrap and security settings."""
    return AdminClient(settings.kafka_client_config())


def kafka_reachable(settings: Settings, timeout_s: float = 3.0) -> bool:
    """True when the cluster answers a metadata request (for /readyz)."""
    try:
        make_admin(settings).list_topics(timeout=timeout_s)
        return True
    except KafkaException:
        return False
