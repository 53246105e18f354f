"""`bench orders`' baselines, measured in the same run against the same stack.

- The webhook round trip alone: orders posted one at a time (closed loop, nothing else offered), from
  send to the 200 (the connector's verify → dedupe → translate → publish → Kafka confirmed).
- A plain confluent-kafka consume → dict update → produce loop (DESIGN.md's ~158,000 events/s row) over
  the records the run itself wrote to `shop.orders`, into a scratch topic deleted afterwards: what the
  broker and client alone do with the same records, without the workers' own work.
"""

from __future__ import annotations

import math
import time
import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from shopstream.bench.common import BenchError, percentile
from shopstream.bench.orders_load import order_ids, sim_order
from shopstream.config import Settings
from shopstream.kafka import make_admin, make_consumer, make_producer
from shopstream.sim.faces import Faces, post_step
from shopstream.sim.traffic import orders as shop_orders

Offsets = dict[int, int]  # partition -> offset


def webhook_round_trips(faces: Faces, count: int) -> list[float]:
    """Round trip (ms) of `count` orders posted one after another."""
    out = []
    for i, order_id in enumerate(order_ids(count)):
        started = time.perf_counter()
        status, body = post_step(faces, shop_orders.create(sim_order(order_id, i), 0.0))
        if status != 200:
            raise BenchError(f"baseline webhook answered {status}: {body}")
        out.append((time.perf_counter() - started) * 1000)
    return out


def end_offsets(settings: Settings, name: str) -> Offsets:
    """Each partition's high watermark on topic `name` (under the prefix)."""
    consumer = make_consumer(settings, "bench-orders-offsets")
    try:
        topic = settings.topic(name)
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def kafka_loop(settings: Settings, name: str, start: Offsets, end: Offsets) -> tuple[int, float]:
    """(records, records/s) of consume → dict update → produce over `name`'s records between the offsets."""
    expected = sum(max(0, end[p] - start.get(p, 0)) for p in end)
    if not expected:
        return 0, float("nan")
    admin = make_admin(settings)
    scratch = settings.topic(f"bench.orders-baseline-{uuid.uuid4().hex[:8]}")
    futures = admin.create_topics([NewTopic(scratch, len(end), 1, config={"retention.ms": "600000",
                                                                           "cleanup.policy": "delete"})])
    for future in futures.values():
        future.result(timeout=30)
    consumer = Consumer({**settings.kafka_client_config(), "group.id": scratch, "enable.auto.commit": False,
                         "enable.partition.eof": False, "fetch.wait.max.ms": 10})
    # librdkafka's default batching whatever the stack runs with (single-record batches on Tansu): a plain loop.
    producer = make_producer(settings, **{"batch.num.messages": 10000})
    topic = settings.topic(name)
    consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in end])
    table: dict[bytes, int] = {}
    done = 0
    try:
        # Timed from the first record read: with a run's few hundred records the connection set-up and the
        # first fetch would otherwise be most of the time. The final flush (every record confirmed) counts.
        started = math.nan
        deadline = time.perf_counter() + 120
        while done < expected and time.perf_counter() < deadline:
            for msg in consumer.consume(1000, 0.1):
                if math.isnan(started):
                    started = time.perf_counter()
                if msg.error() is not None or (msg.offset() or 0) >= end.get(msg.partition() or 0, 0):
                    continue
                key, value = msg.key() or b"", msg.value() or b""
                table[key] = table.get(key, 0) + len(value)
                producer.produce(scratch, key=key, value=value)
                producer.poll(0)
                done += 1
        if producer.flush(60) != 0:
            raise BenchError("the baseline loop's records were not all confirmed")
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
        try:
            for future in admin.delete_topics([scratch], operation_timeout=30).values():
                future.result(30)
        except KafkaException:
            pass  # a scratch topic left behind is the prefix's; nothing reads it
    if done < expected:
        raise BenchError(f"the baseline loop read {done} of {expected} records of {topic} in 120 s")
    return done, done / seconds


def summary_ms(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of a list of milliseconds."""
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "max": max(values) if values else float("nan")}
