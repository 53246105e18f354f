"""Redis really stopped for a few seconds while the view sink works: retries, nothing parked, nothing lost.

A private redis-server (persisting every write, so a restart keeps what was written) is killed mid-stream
and started again on the same port; the sink must end with every order at its newest version and an
empty DLQ.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shopstream.children import spawn
from shopstream.config import Settings
from shopstream.dev.ports import free_port, wait_for_port
from shopstream.metrics import RETRIES
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from shopstream.views.orders import OrderView
from shopstream.views.sink import PROCESSOR, RetryPolicy, run_sink
from tests.integration.test_order_view import make_state
from tests.kafka_read import read_all
from tests.kafka_write import make_producer

pytestmark = pytest.mark.broker

ORDERS, VERSIONS = 20, 6


class RedisServer:
    """A redis-server process of the test's own, restartable on the same port and data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = spawn(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for_port("127.0.0.1", self.port, 10), "redis-server did not start"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.kill()


def test_sink_rides_out_a_redis_outage(settings: Settings, private_redis: RedisServer) -> None:
    settings = settings.model_copy(update={"redis_url": private_redis.url})
    apply(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    topic = settings.topic("orders.state")
    producer = make_producer(settings)

    def produce(version: int) -> None:
        for n in range(ORDERS):
            state = make_state(f"outage-{n}", version)
            producer.produce(topic, key=state.order_id.encode(), value=serde.encode(topic, state))
        assert producer.flush(10) == 0

    retries_before = sum(s.value for m in RETRIES.collect() for s in m.samples
                         if s.labels.get("processor") == PROCESSOR and s.name.endswith("_total"))
    stop = threading.Event()
    sink = threading.Thread(target=run_sink, args=(settings, stop),
                            kwargs={"metrics_port": 0, "batch_size": 7,
                                    "retry": RetryPolicy(initial_s=0.05, max_backoff_s=0.5, max_elapsed_s=4.0,
                                                         max_attempts=8)},
                            daemon=True)
    sink.start()
    view = OrderView.from_url(private_redis.url, settings.redis_key_prefix)
    try:
        produce(1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and view.get_order("outage-0") is None:
            time.sleep(0.2)
        assert view.get_order("outage-0") is not None, "sink never wrote before the outage"

        private_redis.kill()
        for version in range(2, VERSIONS + 1):
            produce(version)
        time.sleep(3)  # the sink keeps retrying against a dead Redis
        private_redis.start()

        deadline = time.monotonic() + 60
        views: dict[str, dict | None] = {}
        while time.monotonic() < deadline:
            try:
                views = {f"outage-{n}": view.get_order(f"outage-{n}") for n in range(ORDERS)}
            except redis.ConnectionError:
                views = {}
            if views and all(v is not None and v["version"] == VERSIONS for v in views.values()):
                break
            time.sleep(0.3)
    finally:
        stop.set()
        sink.join(timeout=30)
        view.close()

    assert all(v is not None and v["version"] == VERSIONS for v in views.values()), views
    assert read_all(settings.kafka_bootstrap_servers, settings.topic("orders.state.dlq"), partitions=1,
                    idle_s=0.5) == []
    retries_after = sum(s.value for m in RETRIES.collect() for s in m.samples
                        if s.labels.get("processor") == PROCESSOR and s.name.endswith("_total"))
    assert retries_after > retries_before
