"""`shopstream worker anomalies` with 50,000 SKUs on the real broker: it keeps running, every changelog
record stays small, and a restarted worker restores exactly the state the pure engine computes.

Before the per-key changelog (processors/anomalies/changelog.py) all per-SKU state was one `core`
record of ~60 bytes a SKU (12.3 MB measured at 200,000 SKUs): past the producer's 1 MB from about
16,000 SKUs on, when the worker exited with MSG_SIZE_TOO_LARGE (the 1M-SKU bench found it). The ATP
levels carry times in the past, so the wall clock closes nothing and the oracle is the engine over the
facts log alone.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from shopstream.config import Settings
from shopstream.processors.anomalies.changelog import assemble
from shopstream.processors.anomalies.engine import Engine
from shopstream.processors.anomalies.records import decode_fact
from shopstream.processors.anomalies.rules import load_rules
from shopstream.processors.anomalies.worker import PROCESSOR, TABLE, EngineStage
from shopstream.runner.store import restore
from shopstream.schemas.models import AtpLevel, EventMeta
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology, names
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.workers import start_worker

pytestmark = pytest.mark.broker
SKUS = 50_000
T0 = datetime(2026, 11, 2, tzinfo=UTC)
_NS = uuid.UUID("5e0b7a4c-1f0e-4d2b-9c3a-616e6f6d616c")
LIMIT = 64 * 1024


def _levels(first: int, count: int) -> list[AtpLevel]:
    out = []
    for i in range(first, first + count):
        at = T0 + timedelta(milliseconds=i)
        # every SKU oversold: the engine keeps no entry for a level >= 0 of a SKU never oversold
        available = -1 - i % 5
        meta = EventMeta(event_id=str(uuid.uuid5(_NS, f"atp:{i}")), event_type="AtpLevel", occurred_at=at,
                         recorded_at=at, source="shopstream.inventory", correlation_id=f"sku:S{i:06d}")
        out.append(AtpLevel(meta=meta, sku=f"S{i:06d}", on_hand=7, reserved=0, safety_stock=0, incoming=0,
                            available=available, version=1, updated_at=at))
    return out


def _produce(settings: Settings, levels: list[AtpLevel]) -> None:
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    topic = settings.topic(names.INVENTORY_ATP)
    producer = make_producer(settings)
    for level in levels:
        while True:
            try:
                producer.produce(topic, key=level.sku.encode(), value=serde.encode(topic, level))
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def _committed(settings: Settings) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "group.id": settings.topic(PROCESSOR), "enable.auto.commit": False})
    try:
        tp = TopicPartition(settings.topic(names.ANOMALIES_FACTS), 0)
        return int(consumer.committed([tp], timeout=10)[0].offset)
    finally:
        consumer.close()


def _wait_committed(settings: Settings, worker: subprocess.Popen[bytes], log: Path, count: int,
                    timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _committed(settings) < count:
        assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"{_committed(settings)} of {count} facts committed:\n" + \
            log.read_text(errors="replace")[-3000:]
        time.sleep(0.5)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()


def _changelog(settings: Settings) -> tuple[dict[bytes, Any], int]:
    """The engine's stored records as a restore reads them, and the largest record's size."""
    topic = settings.topic(load_topology().table_changelog(PROCESSOR, TABLE, EngineStage.inputs).name)
    largest = 0

    def decode(data: bytes) -> Any:
        nonlocal largest
        largest = max(largest, len(data))
        return json.loads(data)

    return restore(settings, topic, 0, decode, atomic=True), largest


def test_fifty_thousand_skus_run_and_restore_the_engine_state(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"single_record_batches": False})
    topology = load_topology()
    apply_topology(topology, settings.kafka_client_config(), prefix=settings.topic_prefix)
    _produce(settings, _levels(0, SKUS))
    log = tmp_path / "worker.log"
    env = {"SHOPSTREAM_SINGLE_RECORD_BATCHES": "false"}  # batches of many records: 50,000 facts in seconds
    worker = start_worker("anomalies", settings, log, **env)
    try:
        _wait_committed(settings, worker, log, SKUS, 120)
    finally:
        _stop(worker)
    stored, largest = _changelog(settings)
    state = assemble(stored.items()).state
    assert len(state["skus"]) == SKUS and not state["seen"]  # ATP levels are deduplicated by time, not id
    assert largest < LIMIT

    _produce(settings, _levels(SKUS, 100))  # a restarted worker restores, then goes on from there
    worker = start_worker("anomalies", settings, log, **env)
    try:
        _wait_committed(settings, worker, log, SKUS + 100, 120)
    finally:
        _stop(worker)
    assert "anomalies: engine of partition 0 restored" in log.read_text(errors="replace")
    stored, largest = _changelog(settings)
    facts = [decode_fact(m.value()) for m in read_all(settings.kafka_bootstrap_servers,
                                                          settings.topic(names.ANOMALIES_FACTS), partitions=1)]
    oracle = Engine(load_rules(), order_sources=topology.topic(names.SHOP_ORDERS).partitions)
    for fact in facts:
        oracle.apply(fact)
    assert len(facts) == SKUS + 100
    assert assemble(stored.items()).state == json.loads(json.dumps(oracle.state))
    assert largest < LIMIT
