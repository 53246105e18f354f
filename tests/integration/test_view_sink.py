"""The order view sink end to end: real broker, real Redis, the embedded registry in-process."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from shopstream.config import Settings
from shopstream.dev.ports import free_port
from shopstream.dev.registry.service import RegistryServer, start_in_thread
from shopstream.dev.registry.store import SchemaStore
from shopstream.dlq import header_map
from shopstream.kafka import make_admin, make_consumer
from shopstream.metrics import RETRIES
from shopstream.runner import Runner
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import load_topology
from shopstream.views.orders import OrderView
from shopstream.views.sink import GROUP_ID, PROCESSOR, SOURCE_TOPIC, RetryPolicy, ViewsProcessor, run_sink
from tests.integration.test_order_view import make_state
from tests.kafka_write import make_producer
from tests.workers import wait_for

pytestmark = pytest.mark.broker

PARTITIONS = 4


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    server = start_in_thread(SchemaStore(tmp_path / "registry.json"))
    yield server
    server.stop()


@pytest.fixture
def settings(kafka_bootstrap: str, registry: RegistryServer, redis_url: str, redis_prefix: str,
             unique: str) -> Settings:
    s = Settings(topic_prefix=f"t{unique}.", kafka_bootstrap_servers=kafka_bootstrap,
                 schema_registry_url=registry.url, redis_url=redis_url, redis_key_prefix=redis_prefix,
                 kafka_session_timeout_s=6)
    topic = s.topic(SOURCE_TOPIC)
    cfg = {"cleanup.policy": "delete", "retention.ms": str(24 * 3600 * 1000)}
    admin = make_admin(s)  # keep a reference: a collected AdminClient fails its futures
    dlq = load_topology().dlq_routes(s.topic_prefix)[topic]
    futures = admin.create_topics([NewTopic(topic, PARTITIONS, 1, config=cfg), NewTopic(dlq, 1, 1, config=cfg)])
    for f in futures.values():
        f.result(timeout=30)
    return s


def produce(settings: Settings,
            records: list[tuple[str, bytes | None, list[tuple[str, str | bytes | None]]]]) -> None:
    producer = make_producer(settings)
    topic = settings.topic(SOURCE_TOPIC)
    for key, value, headers in records:
        producer.produce(topic, key=key.encode(), value=value, headers=headers)
    assert producer.flush(30) == 0


def state_bytes(serde: AvroSerde, settings: Settings, order_id: str, version: int, **kw: Any) -> bytes:
    return serde.encode(settings.topic(SOURCE_TOPIC), make_state(order_id, version, **kw))


def versions(view: OrderView, expected: dict[str, int | None]) -> Callable[[], bool]:
    def check() -> bool:
        for order_id, version in expected.items():
            doc = view.get_order(order_id)
            if (doc["version"] if doc else None) != version:
                return False
        return True
    return check


def read_all(settings: Settings, topic: str, count: int, timeout_s: float = 30.0) -> list[Any]:
    consumer = make_consumer(settings, f"reader-{time.monotonic_ns()}")
    consumer.subscribe([topic])
    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < count and time.monotonic() < deadline:
            got += [m for m in consumer.consume(100, 0.5) if m.error() is None]
    finally:
        consumer.close()
    return got


def test_sink_writes_newest_parks_garbage_and_commits(settings: Settings, redis_url: str,
                                                       redis_prefix: str) -> None:
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    produce(settings, [
        ("A-1", state_bytes(serde, settings, "A-1", 1), []),
        ("A-1", state_bytes(serde, settings, "A-1", 3, status="shipped"), []),
        ("A-1", state_bytes(serde, settings, "A-1", 2, status="cancelled"), []),  # older, arrives later
        ("A-1", b"definitely not avro", [("trace", b"abc")]),                     # poison on A's partition
        *[(f"B-{i}", state_bytes(serde, settings, f"B-{i}", 1), []) for i in range(20)],
        ("T-1", state_bytes(serde, settings, "T-1", 1), []),
        ("T-1", None, []),                                                         # tombstone
    ])

    view = OrderView.from_url(redis_url, redis_prefix)
    stop = threading.Event()
    errors: list[BaseException] = []
    metrics_port = free_port()

    def target() -> None:
        try:
            run_sink(settings, stop, metrics_port=metrics_port, batch_size=7)
        except BaseException as exc:  # surface the worker's crash in the test
            errors.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    try:
        expected: dict[str, int | None] = {"A-1": 3, "T-1": None, **{f"B-{i}": 1 for i in range(20)}}
        wait_for(versions(view, expected), what="view to reach the newest versions")

        # The sink goes on after the poison record: a later record on the same partition lands.
        produce(settings, [("A-1", state_bytes(serde, settings, "A-1", 4, status="delivered"), [])])
        wait_for(versions(view, {"A-1": 4}), what="record after the poison one")
        a1 = view.get_order("A-1")
        assert a1 is not None and a1["status"] == "delivered"
        assert a1["total"] == {"amount": "12.50", "currency": "EUR"}

        topic = settings.topic(SOURCE_TOPIC)
        parked = read_all(settings, load_topology().dlq_routes(settings.topic_prefix)[topic], 1)
        assert len(parked) == 1
        rec = parked[0]
        assert rec.key() == b"A-1" and rec.value() == b"definitely not avro"
        h = header_map(rec.headers())
        assert h["trace"] == b"abc"  # original headers kept
        assert h["shopstream.dlq.original.topic"] == topic.encode()
        assert int(h["shopstream.dlq.original.offset"]) >= 0
        assert 0 <= int(h["shopstream.dlq.original.partition"]) < PARTITIONS
        assert h["shopstream.dlq.stage"] == b"deserialize"
        assert h["shopstream.dlq.processor"] == settings.topic(GROUP_ID).encode()
        assert h["shopstream.dlq.error.class"].endswith(b"NotAvroFramed")
        assert h["shopstream.dlq.error.message"]

        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert f'shopstream_records_in_total{{outcome="dlq",processor="{PROCESSOR}",topic="{topic}"}} 1.0' \
            in metrics
    finally:
        stop.set()
        worker.join(timeout=30)
        view.close()
    assert not worker.is_alive()
    assert not errors, errors

    # Everything consumed was committed: the group's offset per partition is one past its last
    # record (read back with a fresh group; Tansu's watermark answers are not reliable enough).
    all_records = read_all(settings, topic, 27)
    assert len(all_records) == 27
    last: dict[int, int] = {}
    for m in all_records:
        last[m.partition()] = max(last.get(m.partition(), -1), m.offset())
    probe = make_consumer(settings, GROUP_ID)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = {tp.partition: tp.offset for tp in probe.committed(tps, timeout=10)}
    finally:
        probe.close()
    assert {p: committed[p] for p in last} == {p: off + 1 for p, off in last.items()}


class FlakyView(OrderView):
    """A real OrderView whose first `failures` batch writes raise a Redis connection error."""

    failures = 0

    def put_many(self, docs: Any) -> list[bool]:
        if FlakyView.failures > 0:
            FlakyView.failures -= 1
            raise redis.exceptions.ConnectionError("simulated: Redis went away")
        return super().put_many(docs)


def test_transient_redis_faults_retry_then_rewind(settings: Settings, redis_url: str,
                                                  redis_prefix: str) -> None:
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    produce(settings, [(f"R-{i}", state_bytes(serde, settings, f"R-{i}", 2), []) for i in range(10)])

    # Two attempts per batch: the first batch fails twice and is rewound (nothing committed),
    # the redelivered batch fails once more, is retried in place, and lands.
    FlakyView.failures = 3
    before = RETRIES.labels(PROCESSOR, "redis")._value.get()
    stop = threading.Event()
    sink = ViewsProcessor.create(settings, retry=RetryPolicy(initial_s=0.01, max_backoff_s=0.05, max_attempts=2,
                                                             max_elapsed_s=5))
    sink.view.close()
    sink.view = FlakyView.from_url(redis_url, redis_prefix)
    runner = Runner(settings, sink, batch_size=100, stop=stop)
    rewound: list[bool] = []
    process = runner.process_batch

    def spy(records: Any) -> Any:
        ok = process(records)
        if records:
            rewound.append(not ok)
        return ok

    runner.process_batch = spy  # type: ignore[method-assign]
    worker = threading.Thread(target=runner.run, daemon=True)
    worker.start()
    view = OrderView.from_url(redis_url, redis_prefix)
    try:
        wait_for(versions(view, {f"R-{i}": 2 for i in range(10)}), what="writes after Redis came back")
    finally:
        stop.set()
        worker.join(timeout=30)
        sink.close()
        view.close()
    assert FlakyView.failures == 0
    assert True in rewound and rewound[-1] is False
    assert RETRIES.labels(PROCESSOR, "redis")._value.get() - before >= 2
