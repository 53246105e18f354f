"""Read a whole topic in tests, without a consumer group.

Tansu reports a partition's high watermark as the base offset of its last batch + 1 (measured: ten
records produced in one batch → high watermark 1), so "read to the high watermark" stops early.
We read until the reported end is passed AND the topic has been quiet for `idle_s`.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Message, TopicPartition

from shopstream.schemas.models import OrderState
from shopstream.serde import AvroSerde


def read_all(bootstrap: str, topic: str, partitions: int = 4, idle_s: float = 1.0,
             timeout_s: float = 30.0) -> list[Message]:
    """Every record currently on `topic`, in partition order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-reader", "enable.auto.commit": False})
    tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=5)[1] for tp in tps}
    consumer.assign(tps)
    records: list[Message] = []
    deadline = time.monotonic() + timeout_s
    last_seen = time.monotonic()
    while time.monotonic() < deadline:
        batch = [m for m in consumer.consume(1000, 0.2) if not m.error()]
        if batch:
            records.extend(batch)
            last_seen = time.monotonic()
            for m in batch:
                if m.offset() + 1 >= ends[m.partition()]:
                    ends[m.partition()] = 0
        elif not any(ends.values()) and time.monotonic() - last_seen >= idle_s:
            break
    consumer.close()
    return records


def latest_order_states(bootstrap: str, topic: str, serde: AvroSerde) -> dict[str, OrderState]:
    """The highest-version OrderState per order on an orders.state topic."""
    latest: dict[str, OrderState] = {}
    for msg in read_all(bootstrap, topic, idle_s=0.5):
        state = serde.decode(msg.value())
        assert isinstance(state, OrderState)
        if state.order_id not in latest or state.version > latest[state.order_id].version:
            latest[state.order_id] = state
    return latest


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int = 4) -> dict[int, int]:
    """The group's committed offset per partition (negative: none), read without joining the group."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset
                for tp in consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)}
    finally:
        consumer.close()
