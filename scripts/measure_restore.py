"""Measure how fast a worker can restore an in-memory table from its compacted changelog.

The chart's state default (Deployment, memory store, changelog recovery) costs one restore per start
and rebalance; this times that restore in the shape of the confluent-kafka runner's memory store:
a consumer reads a changelog from the beginning to its end offsets and loads every record into a
dict (orjson-decoded values, keyed by bytes). It starts the embedded broker (Tansu) unless
KAFKA_BOOTSTRAP_SERVERS is set, writes N AtpLevel-sized JSON records (one per key, as after
compaction) over P partitions, then restores them R times and prints each run and the median.

    .venv/bin/python scripts/measure_restore.py --keys 1000000 --partitions 12 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not bootstrap:
        from shopstream.dev.broker import start_tansu

        broker = start_tansu()
        bootstrap = broker.bootstrap
    try:
        topic = f"restore-bench-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, args.partitions, 1, config={
            "cleanup.policy": "compact", "retention.ms": "-1"})])[topic].result(30)
        producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                             "linger.ms": 20, "batch.size": 1_000_000, "compression.type": "none"})
        value: dict[str, Any] = {
            "sku": "", "on_hand": 120, "reserved": 7, "safety_stock": 5, "incoming": 40, "available": 108,
            "version": 42, "locations": [{"location": "main", "on_hand": 120, "reserved": 7,
                                               "safety_stock": 5, "incoming": 40, "as_of": 1764662400000}]}
        started = time.perf_counter()
        for i in range(args.keys):
            value["sku"] = f"SKU-{i:08d}"
            while True:
                try:
                    producer.produce(topic, key=value["sku"].encode(), value=orjson.dumps(value))
                    break
                except BufferError:
                    producer.poll(0.05)
            if i % 10_000 == 0:
                producer.poll(0)
        producer.flush(120)
        del producer
        print(f"wrote {args.keys:,} records over {args.partitions} partitions in {time.perf_counter() - started:.1f} s")

        times = []
        for run in range(args.runs):
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"restore-{uuid.uuid4().hex[:6]}",
                                 "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                 "fetch.wait.max.ms": 10, "enable.partition.eof": True})
            parts = [TopicPartition(topic, p, 0) for p in range(args.partitions)]
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in range(args.partitions)}
            consumer.assign(parts)
            table: dict[bytes, object] = {}
            pending = {p for p, end in ends.items() if end > 0}
            t0 = time.perf_counter()
            while pending:
                for msg in consumer.consume(10_000, timeout=1.0):
                    err = msg.error()
                    if err is not None:
                        if err.code() == -191:  # _PARTITION_EOF
                            pending.discard(msg.partition())
                        continue
                    table[msg.key() or b""] = orjson.loads(msg.value() or b"null")
            elapsed = time.perf_counter() - t0
            consumer.close()
            times.append(elapsed)
            print(f"run {run + 1}: restored {len(table):,} keys in {elapsed:.2f} s "
                  f"({len(table) / elapsed:,.0f} records/s)")
        median = statistics.median(times)
        print(f"median of {args.runs}: {median:.2f} s for {args.keys:,} keys ({args.keys / median:,.0f} records/s)")
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
