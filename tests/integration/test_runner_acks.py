"""The runner's deferred acknowledgement and batch handler on the real broker (`tests/runner_probe.py`)."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Consumer, TopicPartition

from shopstream.config import Settings
from shopstream.kafka import partition_for
from shopstream.metrics import RETRIES
from shopstream.runner import Runner
from shopstream.runner.api import Processor
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.runner_probe import BatchProcessor, HoldingProcessor
from tests.workers import wait_for

pytestmark = pytest.mark.broker


def _produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(settings)
    for key, value in records:
        producer.produce(settings.topic("inventory.stock"), key=key, value=value)
    assert producer.flush(30) == 0


def _outputs(settings: Settings) -> list[bytes]:
    return [m.value() for m in read_all(settings.kafka_bootstrap_servers, settings.topic("alerts.anomalies"),
                                        idle_s=0.3)]


def _committed(settings: Settings, group: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "group.id": settings.topic(group), "enable.auto.commit": False})
    try:
        tp = TopicPartition(settings.topic("inventory.stock"), partition)
        return int(consumer.committed([tp], timeout=10)[0].offset)
    finally:
        consumer.close()


def _start(settings: Settings, processor: Processor) -> tuple[Runner, threading.Thread]:
    runner = Runner(settings, processor, stop=threading.Event())
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    return runner, thread


def _stop(runner: Runner, thread: threading.Thread) -> None:
    runner.stop.set()
    thread.join(30)
    assert not thread.is_alive()


def test_nothing_is_committed_past_a_held_record_until_its_ack(settings: Settings) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    partition = partition_for(b"k", 4)
    _produce(settings, [(b"k", b"a"), (b"k", b"hold"), (b"k", b"b"), (b"k", b"c")])
    runner, thread = _start(settings, HoldingProcessor())
    try:
        wait_for(lambda: _outputs(settings) == [b"a", b"b", b"c"], 60, what="the records after the held one")
        wait_for(lambda: _committed(settings, "runner-hold", partition) == 1, 30, what="the done prefix committed")
        assert runner.offsets.in_flight() == 1
        _produce(settings, [(b"k", b"release")])
        wait_for(lambda: _committed(settings, "runner-hold", partition) == 5, 30, what="everything after the ack")
    finally:
        _stop(runner, thread)
    assert _outputs(settings)[-1] == b"released:1"

    # Held at stop without a drain: the restart reads the held record (and everything after it) again.
    _produce(settings, [(b"k", b"hold"), (b"k", b"d")])
    runner, thread = _start(settings, HoldingProcessor())
    try:
        wait_for(lambda: _outputs(settings)[-1:] == [b"d"], 60, what="the record after the second hold")
    finally:
        _stop(runner, thread)
    assert _committed(settings, "runner-hold", partition) == 5
    runner, thread = _start(settings, HoldingProcessor(drains=True))
    try:
        wait_for(lambda: _outputs(settings).count(b"d") == 2, 60, what="the held tail read again")
    finally:
        _stop(runner, thread)  # the drain on stop acks the hold: committed to the end
    assert _outputs(settings)[-1] == b"released:1"
    assert _committed(settings, "runner-hold", partition) == 7


def test_a_batch_handler_parks_poison_and_rewinds_on_a_lasting_transient_fault(settings: Settings) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    keys = [b"x", b"y", b"z"]
    _produce(settings, [(key, value) for key in keys for value in (b"1", b"poison", b"2")])
    processor = BatchProcessor(failures=3)  # two attempts per batch: rewound once, then retried in place
    before = RETRIES.labels("runner-batch", "redis")._value.get()
    runner = Runner(settings, processor, stop=threading.Event())
    outcomes: list[bool] = []
    process = runner.process_batch

    def spy(msgs: list) -> bool:  # type: ignore[type-arg]
        ok = process(msgs)
        if msgs:
            outcomes.append(ok)
        return ok

    runner.process_batch = spy  # type: ignore[method-assign]
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: sorted(_outputs(settings)) == sorted([b"batch:1", b"batch:2"] * 3), 60,
                 what="every good record written")
        ends = {partition_for(key, 4): 0 for key in keys}
        for key in keys:
            ends[partition_for(key, 4)] += 3
        wait_for(lambda: all(_committed(settings, "runner-batch", p) == n for p, n in ends.items()), 30,
                 what="every batch committed")
    finally:
        _stop(runner, thread)
    assert False in outcomes and outcomes[-1] is True
    assert RETRIES.labels("runner-batch", "redis")._value.get() - before >= 1
    parked = read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.stock.dlq"), partitions=1,
                      idle_s=0.3)
    assert sorted(m.key() for m in parked) == sorted(keys)
