"""The runner on the real broker: state restored from its changelog, nothing committed past an unparked record.

1. A counting processor (tests/runner_probe.py) runs, stops, and a second runner of the same group
   continues the counts: its state came from the changelog, not from zero.
2. Behind a proxy that refuses the runner's writes (`fail_produce` by its client id), a poison
   record cannot be parked: the process halts with exit 75 and the group's committed offset stays at
   the poison record. After the fault heals a restarted runner parks it and applies the rest.
3. A record whose output is over the producer's message.max.bytes is parked (stage `produce`) and the
   runner goes on; a state value over it halts the process (exit 76) naming the key and size, and
   nothing is committed past the record that made it.
4. The commit interval: outputs are on their topic before anything is committed, and a key written
   forty times within one interval is written to the changelog once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from shopstream.config import Settings, load_settings
from shopstream.halt import EXIT_DELIVERY_FAILED, EXIT_PARK_FAILED
from shopstream.kafka import partition_for
from shopstream.runner import Runner
from shopstream.runner.store import BATCH_END, restore
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests import processes
from tests.broker_proxy import BrokerProxy, proxied_tansu
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.runner_probe import CHANGELOG, CountingProcessor, EchoProcessor
from tests.workers import stop, wait_for

pytestmark = pytest.mark.broker

FAULT_ENV = {"KAFKA_PRODUCER_TIMEOUT_S": "2", "SHOPSTREAM_RETRY_MAX_ELAPSED_S": "3"}


def _produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(settings)
    topic = settings.topic("inventory.stock")
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def _outputs(settings: Settings) -> list[bytes]:
    return [m.value() for m in read_all(settings.kafka_bootstrap_servers, settings.topic("alerts.anomalies"),
                                        idle_s=0.3)]


def _committed(settings: Settings, partition: int, group: str = "runner-probe") -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "group.id": settings.topic(group), "enable.auto.commit": False})
    try:
        tp = TopicPartition(settings.topic("inventory.stock"), partition)
        return int(consumer.committed([tp], timeout=10)[0].offset)
    finally:
        consumer.close()


def _in_thread(settings: Settings) -> tuple[Runner, threading.Thread]:
    runner = Runner(settings, CountingProcessor(), stop=threading.Event())
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    return runner, thread


def test_a_restarted_runner_continues_from_the_state_in_its_changelog(settings: Settings) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    _produce(settings, [(key, b"x") for _ in range(5) for key in (b"a", b"b")])
    runner, thread = _in_thread(settings)
    try:
        wait_for(lambda: len(_outputs(settings)) == 10, 60, what="the first ten counted")
        assert runner.readiness()[1] == 200
    finally:
        runner.stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert b"a:5" in _outputs(settings)

    _produce(settings, [(b"a", b"x")] * 3)
    second, thread = _in_thread(settings)
    try:
        wait_for(lambda: len(_outputs(settings)) == 13, 60, what="the next three counted")
        assert second.states[partition_for(b"a", 4)][b"a"] == 8
    finally:
        second.stop.set()
        thread.join(30)
    counts = [v for v in _outputs(settings) if v.startswith(b"a:")]
    assert counts[-3:] == [b"a:6", b"a:7", b"a:8"]  # restored 5, not started from 0
    assert second.states == {}  # dropped with the partitions when it left the group


def test_outputs_go_out_before_the_commit_and_the_changelog_gets_each_key_once_per_interval(
        settings: Settings) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    _produce(settings, [(b"a", b"x")] * 40)
    slow = settings.model_copy(update={"commit_interval_ms": 20_000})
    runner = Runner(slow, CountingProcessor(), stop=threading.Event())
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    partition = partition_for(b"a", 4)
    try:
        wait_for(lambda: len(_outputs(settings)) == 40, 15, what="the forty counts, before the first commit")
        assert _committed(settings, partition) < 0  # nothing committed yet: the interval has not passed
        assert runner.offsets.in_flight() == 40  # read, handled, not yet confirmed
    finally:
        runner.stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert _committed(settings, partition) == 40  # the stop flushed and committed the open work
    changelog = [m for m in read_all(settings.kafka_bootstrap_servers, settings.topic(CHANGELOG), idle_s=0.3)
                 if m.key() == b"a"]
    assert [m.value() for m in changelog] == [b"40"]


def test_restore_reads_a_changelog_written_in_multi_record_batches_to_its_end(settings: Settings) -> None:
    """Tansu reports the last batch's base offset + 1 as the high watermark: a restore that stopped there
    would miss the rest of a multi-record batch and count those keys from zero again."""
    settings = settings.model_copy(update={"single_record_batches": False})
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    # Keys of one partition, one record each: one batch, so their changelog records go out together.
    keys = [k for k in (f"m{i}".encode() for i in range(200)) if partition_for(k, 4) == 0][:30]
    _produce(settings, [(key, b"x") for key in keys])
    runner, thread = _in_thread(settings)
    try:
        wait_for(lambda: len(_outputs(settings)) == len(keys), 60, what="every key counted once")
    finally:
        runner.stop.set()
        thread.join(30)
    _produce(settings, [(key, b"x") for key in keys])
    second, thread = _in_thread(settings)
    try:
        wait_for(lambda: len(_outputs(settings)) == 2 * len(keys), 60, what="every key counted again")
    finally:
        second.stop.set()
        thread.join(30)
    assert sorted(_outputs(settings)[len(keys):]) == sorted(key + b":2" for key in keys)


def test_a_processor_without_a_store_runs_on_the_same_loop(settings: Settings) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    _produce(settings, [(b"e", b"1"), (b"e", b"2")])
    runner = Runner(settings, EchoProcessor(), stop=threading.Event())
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: _outputs(settings) == [b"e=1", b"e=2"], 60, what="both records echoed")
        assert runner.readiness()[1] == 200 and runner.states == {}
        wait_for(lambda: _committed(settings, partition_for(b"e", 4), "runner-echo") == 2, 30, what="committed")
    finally:
        runner.stop.set()
        thread.join(30)


def test_a_rebalance_moves_state_with_its_partitions(settings: Settings) -> None:
    """A second member joins: each partition's state goes with it (restored from the changelog by its new
    owner, dropped by the old one), so counts continue across the move and no partition is owned twice."""
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    keys = [f"k{i}".encode() for i in range(8)]
    _produce(settings, [(key, b"x") for key in keys for _ in range(2)])
    first, first_thread = _in_thread(settings)
    second: Runner | None = None
    second_thread: threading.Thread | None = None
    try:
        wait_for(lambda: len(_outputs(settings)) == 16, 60, what="the first lot counted")
        second, second_thread = _in_thread(settings)
        wait_for(lambda: bool(first.owned) and bool(second.owned)
                 and {p for _, p in first.owned}.isdisjoint({p for _, p in second.owned}), 60,
                 what="the partitions shared between both members")
        assert set(first.states).isdisjoint(second.states)
        _produce(settings, [(key, b"x") for key in keys])
        wait_for(lambda: len(_outputs(settings)) == 24, 60, what="the second lot counted")
    finally:
        for runner in (first, second):
            if runner is not None:
                runner.stop.set()
        first_thread.join(30)
        if second_thread is not None:
            second_thread.join(30)
    for key in keys:  # third count of every key, whichever member owned it after the move
        assert [v for v in _outputs(settings) if v.startswith(key + b":")][-1] == key + b":3"


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[BrokerProxy]:
    with proxied_tansu(tmp_path / "tansu.log") as proxy:
        yield proxy


def _start(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "SCHEMA_REGISTRY_URL": settings.schema_registry_url, "SHOPSTREAM_TOPIC_PREFIX": settings.topic_prefix,
           "KAFKA_SESSION_TIMEOUT_S": "6", **FAULT_ENV}
    processes.track("runner probe", log)
    from shopstream.children import spawn

    with open(log, "ab") as out:
        return spawn([sys.executable, "-m", "tests.runner_probe"], env=env, stdout=out, stderr=subprocess.STDOUT,
                     cwd=str(Path(__file__).parents[2]))


def test_a_record_that_can_be_neither_applied_nor_parked_is_never_committed(
        proxy: BrokerProxy, registry_url: str, unique: str, tmp_path: Path) -> None:
    settings = load_settings(kafka_bootstrap_servers=proxy.bootstrap, schema_registry_url=registry_url,
                             topic_prefix=f"t{unique}.", kafka_session_timeout_s=6)
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    partition = partition_for(b"k", 4)
    _produce(settings, [(b"k", b"x")] * 3)
    log = tmp_path / "probe.log"
    worker = _start(settings, log)
    restarted: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: _committed(settings, partition) == 3, 60, log, "the first three committed")
        proxy.fail_produce("shopstream-runner-probe")  # its outputs and DLQ writes now fail
        _produce(settings, [(b"k", b"poison"), (b"k", b"x")])
        code = wait_for(lambda: worker.poll(), 60, log, "the runner to halt on the failed park")
        assert code == EXIT_PARK_FAILED, log.read_text(errors="replace")[-3000:]
        assert _committed(settings, partition) == 3  # not past the poison record
        proxy.heal()

        restarted = _start(settings, log)
        wait_for(lambda: _committed(settings, partition) == 5, 60, log, "everything committed after healing")
        parked = read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.stock.dlq"),
                          partitions=1, idle_s=0.3)
        assert [m.value() for m in parked] == [b"poison"]
        assert [v for v in _outputs(settings) if v.startswith(b"k:")][-1] == b"k:4"
    finally:
        stop(worker)
        if restarted is not None:
            stop(restarted)


def _changelog(settings: Settings, records: list[tuple[bytes, bytes | None]]) -> str:
    topic = settings.topic("orders-orders-changelog")
    producer = make_producer(settings)
    for key, value in records:
        producer.produce(topic, key=key, value=value, partition=1)
    assert producer.flush(30) == 0
    return topic


def test_an_atomic_restore_ignores_a_batch_cut_off_after_its_last_marker(settings: Settings) -> None:
    """A crash between two changelog records of one batch: the keys come back as of the last whole batch."""
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    topic = _changelog(settings, [(BATCH_END, b""), (b"seen", b"1"), (b"count", b"1"), (BATCH_END, b""),
                                  (b"seen", b"2"), (b"gone", b"x"), (b"gone", None), (BATCH_END, b""),
                                  (b"seen", b"3")])  # the count of this batch never reached the log
    assert restore(settings, topic, 1, bytes, atomic=True) == {b"seen": b"2", b"count": b"1"}
    assert restore(settings, topic, 1, bytes) == {b"seen": b"3", b"count": b"1", BATCH_END: b""}


def test_an_atomic_restore_takes_a_changelog_from_before_markers_whole(settings: Settings) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    topic = _changelog(settings, [(b"seen", b"1"), (b"count", b"1")])
    assert restore(settings, topic, 1, bytes, atomic=True) == {b"seen": b"1", b"count": b"1"}


def _headers(msg: Message) -> dict[str, bytes]:
    return dict(msg.headers() or [])


def test_a_record_whose_output_is_too_large_is_parked_and_the_runner_goes_on(settings: Settings) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    _produce(settings, [(b"a", b"x"), (b"a", b"huge"), (b"a", b"x")])
    runner, thread = _in_thread(settings)
    try:
        wait_for(lambda: _committed(settings, partition_for(b"a", 4)) == 3, 60, what="all three done")
        assert thread.is_alive()
        assert _outputs(settings) == [b"a:1", b"a:2"]  # the parked record's count was not stored either
    finally:
        runner.stop.set()
        thread.join(30)
    [parked] = read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.stock.dlq"), partitions=1,
                        idle_s=0.3)
    headers = _headers(parked)
    assert parked.value() == b"huge" and parked.key() == b"a"
    assert headers["shopstream.dlq.stage"] == b"produce"
    assert headers["shopstream.dlq.error.class"] == b"shopstream.kafka.RecordTooLarge"
    assert b"1100065 bytes" in headers["shopstream.dlq.error.message"], headers["shopstream.dlq.error.message"]
    assert headers["shopstream.dlq.original.offset"] == b"1"


def test_a_state_record_too_large_to_write_halts_without_committing(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    partition = partition_for(b"k", 4)
    _produce(settings, [(b"k", b"x")])
    log = tmp_path / "probe.log"
    worker = _start(settings, log)
    try:
        wait_for(lambda: _committed(settings, partition) == 1, 60, log, "the first record committed")
        _produce(settings, [(b"k", b"huge-state"), (b"k", b"x")])
        code = wait_for(lambda: worker.poll(), 60, log, "the runner to halt on the changelog record")
        assert code == EXIT_DELIVERY_FAILED, log.read_text(errors="replace")[-3000:]
        text = log.read_text(errors="replace")
        assert "a changelog record of partition" in text and "key b'k' is 1100065 bytes" in text, text[-3000:]
        assert _committed(settings, partition) == 1
    finally:
        stop(worker)
