"""The one retry/park policy (`process_record`, per record on the runner); a fake publisher is the DLQ write.

This is a unit test of the policy (what gets retried, what gets parked, with which context); the
real broker path of DLQ writes is covered by the integration tests.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

import pytest
import redis
from confluent_kafka import KafkaError

from shopstream import processing
from shopstream.dlq import PREFIX, DeadLetterWriter, FailedRecord, header_map
from shopstream.halt import EXIT_DELIVERY_FAILED, EXIT_PARK_FAILED, MustRestart
from shopstream.kafka import DeliveryError, Headers
from shopstream.processing import RetryPolicy, is_transient, process_record
from shopstream.serde import InvalidRecord, NotAvroFramed, RegistryUnavailable
from shopstream.topology import load_topology

FAST = RetryPolicy(initial_s=0.001, max_backoff_s=0.01, max_elapsed_s=5.0)


@dataclass
class Published:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


@dataclass
class CollectingPublisher:
    """Collects what would be written; every publish 'succeeds'."""

    published: list[Published] = field(default_factory=list)

    async def publish(self, topic: str, key: bytes | None, value: bytes | None,
                      headers: Headers | None = None) -> None:
        self.published.append(Published(topic, key, value, header_map(headers)))


RECORD = FailedRecord(topic="t1.shop.orders", key=b"order-7", value=b"\x00\x00\x00\x00\x01body",
                      headers=[("trace", b"t-1")], partition=2, offset=77, timestamp_ms=1_700_000_000_000)


def _writer(publisher: object) -> DeadLetterWriter:
    return DeadLetterWriter(publisher, "p", load_topology().dlq_routes("t1."))  # type: ignore[arg-type]


def handler_failing(times: int, exc: Callable[[], BaseException]) -> tuple[Callable[[], None], list[int]]:
    """A handler that raises `exc()` on its first `times` calls, then succeeds; returns (handler, calls)."""
    calls: list[int] = []

    def handler() -> None:
        calls.append(1)
        if len(calls) <= times:
            raise exc()

    return handler, calls


@pytest.fixture
def publisher() -> CollectingPublisher:
    return CollectingPublisher()


@pytest.fixture
def dlq(publisher: CollectingPublisher) -> DeadLetterWriter:
    return DeadLetterWriter(publisher, "t1.orders-processor", load_topology().dlq_routes("t1."))


def test_success_is_ok_and_parks_nothing(publisher: CollectingPublisher, dlq: DeadLetterWriter) -> None:
    handler, calls = handler_failing(0, lambda: RuntimeError())
    assert process_record(RECORD, handler, dlq, FAST) == "ok"
    assert len(calls) == 1
    assert publisher.published == []


def test_permanent_error_is_parked_once_without_retry(publisher: CollectingPublisher,
                                                            dlq: DeadLetterWriter) -> None:
    handler, calls = handler_failing(100, lambda: KeyError("lines"))
    assert process_record(RECORD, handler, dlq, FAST) == "dlq"
    assert len(calls) == 1  # a bug in the handler is not retried
    assert len(publisher.published) == 1
    parked = publisher.published[0]
    assert parked.topic == "t1.shop.orders.dlq"
    assert parked.key == b"order-7" and parked.value == RECORD.value  # the original bytes, untouched
    h = parked.headers
    assert h["trace"] == b"t-1"
    assert h[PREFIX + "stage"] == b"process"
    assert h[PREFIX + "attempts"] == b"1"
    assert h[PREFIX + "error.class"] == b"builtins.KeyError"
    assert h[PREFIX + "processor"] == b"t1.orders-processor"
    assert h[PREFIX + "original.topic"] == b"t1.shop.orders"
    assert h[PREFIX + "original.partition"] == b"2" and h[PREFIX + "original.offset"] == b"77"
    assert int(h[PREFIX + "first.failure"]) <= int(h[PREFIX + "last.failure"])


@pytest.mark.parametrize("error", [NotAvroFramed("first byte is 123"), InvalidRecord("bad body")])
def test_serde_error_is_parked_at_stage_deserialize(error: Exception, publisher: CollectingPublisher,
                                                          dlq: DeadLetterWriter) -> None:
    handler, calls = handler_failing(100, lambda: error)
    assert process_record(RECORD, handler, dlq, FAST) == "dlq"
    assert len(calls) == 1
    (parked,) = publisher.published
    assert parked.headers[PREFIX + "stage"] == b"deserialize"
    assert parked.headers[PREFIX + "attempts"] == b"1"
    assert parked.headers[PREFIX + "error.class"].endswith(type(error).__name__.encode())


@pytest.mark.parametrize("make_error", [
    lambda: RegistryUnavailable("registry: connection refused"),
    lambda: redis.ConnectionError("Redis went away"),
    lambda: redis.TimeoutError("Redis slow"),
    lambda: DeliveryError("t1.x", KafkaError(KafkaError._MSG_TIMED_OUT, "timed out", retriable=True)),
], ids=["registry", "redis-connection", "redis-timeout", "retriable-delivery"])
def test_transient_error_that_heals_is_retried_in_place(make_error: Callable[[], BaseException],
                                                              publisher: CollectingPublisher,
                                                              dlq: DeadLetterWriter) -> None:
    handler, calls = handler_failing(2, make_error)
    assert process_record(RECORD, handler, dlq, FAST) == "ok"
    assert len(calls) == 3
    assert publisher.published == []


def test_transient_error_that_never_heals_is_parked_as_retry_exhausted(
        publisher: CollectingPublisher, dlq: DeadLetterWriter) -> None:
    handler, calls = handler_failing(10_000, lambda: RegistryUnavailable("still down"))
    started = time.monotonic()
    outcome = process_record(RECORD, handler, dlq, RetryPolicy(max_elapsed_s=0.2))
    elapsed = time.monotonic() - started
    assert outcome == "dlq"
    assert len(calls) > 1
    assert 0.2 <= elapsed < 3.0  # bounded: gave up soon after the budget
    (parked,) = publisher.published
    h = parked.headers
    assert h[PREFIX + "stage"] == b"retry-exhausted"
    assert int(h[PREFIX + "attempts"]) == len(calls) > 1
    assert h[PREFIX + "error.class"] == b"shopstream.serde.RegistryUnavailable"
    assert int(h[PREFIX + "last.failure"]) - int(h[PREFIX + "first.failure"]) >= 150


def test_transient_then_permanent_counts_all_attempts(publisher: CollectingPublisher,
                                                            dlq: DeadLetterWriter) -> None:
    errors = iter([redis.ConnectionError("blip"), ValueError("bad value")])

    def handler() -> None:
        raise next(errors)

    assert process_record(RECORD, handler, dlq, FAST) == "dlq"
    (parked,) = publisher.published
    assert parked.headers[PREFIX + "stage"] == b"process"
    assert parked.headers[PREFIX + "attempts"] == b"2"
    assert parked.headers[PREFIX + "error.class"] == b"builtins.ValueError"


def test_is_transient_classification() -> None:
    assert is_transient(RegistryUnavailable("x"))
    assert is_transient(redis.ConnectionError("x")) and is_transient(redis.TimeoutError("x"))
    assert is_transient(ConnectionRefusedError()) and is_transient(TimeoutError())
    assert is_transient(DeliveryError("t", KafkaError(KafkaError._MSG_TIMED_OUT, retriable=True)))
    assert not is_transient(DeliveryError("t", KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)))
    assert not is_transient(DeliveryError("t", "queue closed"))
    assert not is_transient(NotAvroFramed("x"))
    assert not is_transient(ValueError("x")) and not is_transient(KeyError("x"))
    assert not is_transient(redis.ResponseError("WRONGTYPE"))


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(initial_s=0.1, max_backoff_s=1.0)
    for attempt, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (30, 1.0)):
        samples = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling / 2  # full jitter spreads over the whole range


def test_retriable_kafka_exceptions_are_transient_and_others_not() -> None:
    from confluent_kafka import KafkaException

    assert is_transient(KafkaException(KafkaError(KafkaError._TRANSPORT, "broker down", retriable=True)))
    assert not is_transient(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))


class Halted(Exception):
    """Stands in for the process exit of `shopstream.halt.halt` in these tests."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.code = code


@pytest.fixture
def halts(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_halt(reason: str, code: int) -> NoReturn:
        raise Halted(reason, code)

    monkeypatch.setattr(processing, "halt", fake_halt)


@dataclass
class FlakyPublisher:
    """Fails the first `failures` writes with `error()`, then collects like CollectingPublisher."""

    failures: int
    error: Callable[[], Exception]
    attempts: int = 0
    published: list[Published] = field(default_factory=list)

    async def publish(self, topic: str, key: bytes | None, value: bytes | None,
                      headers: Headers | None = None) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error()
        self.published.append(Published(topic, key, value, header_map(headers)))


def test_dlq_write_that_heals_is_retried_until_parked(halts: None) -> None:
    publisher = FlakyPublisher(3, lambda: TimeoutError())
    handler, _ = handler_failing(100, lambda: KeyError("bug"))
    assert process_record(RECORD, handler, _writer(publisher), FAST) == "dlq"
    assert publisher.attempts == 4
    (parked,) = publisher.published
    assert parked.headers[PREFIX + "error.class"] == b"builtins.KeyError"  # the record's failure, not the DLQ's


def test_dlq_write_that_never_heals_halts_without_returning(halts: None) -> None:
    publisher = FlakyPublisher(10_000, lambda: ConnectionRefusedError("refused"))
    handler, _ = handler_failing(100, lambda: KeyError("bug"))
    started = time.monotonic()
    with pytest.raises(Halted) as halted:
        process_record(RECORD, handler, _writer(publisher), RetryPolicy(
            initial_s=0.001, max_backoff_s=0.01, max_elapsed_s=0.2))
    assert halted.value.code == EXIT_PARK_FAILED
    assert 0.2 <= time.monotonic() - started < 3.0
    assert publisher.attempts > 1 and publisher.published == []


def test_permanent_dlq_fault_halts_at_once(halts: None) -> None:
    publisher = FlakyPublisher(10_000, lambda: DeliveryError("t.dlq", KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)))
    handler, _ = handler_failing(100, lambda: KeyError("bug"))
    with pytest.raises(Halted) as halted:
        process_record(RECORD, handler, _writer(publisher), FAST)
    assert halted.value.code == EXIT_PARK_FAILED
    assert publisher.attempts == 1


def test_must_restart_halts_without_parking(halts: None, publisher: CollectingPublisher,
                                                  dlq: DeadLetterWriter) -> None:
    handler, calls = handler_failing(100, lambda: MustRestart("a changelog record was refused"))
    with pytest.raises(Halted) as halted:
        process_record(RECORD, handler, dlq, FAST)
    assert halted.value.code == EXIT_DELIVERY_FAILED
    assert len(calls) == 1 and publisher.published == []  # the record in hand is innocent: not parked


def test_halt_exits_the_process_with_its_code() -> None:
    # In a child: os._exit skips every finally/atexit, which is the point, and would end pytest here.
    code = "from shopstream.halt import halt; halt('test', 75)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 75
    assert b"stopping without committing offsets" in done.stderr


def test_a_stop_during_a_transient_fault_neither_parks_nor_acknowledges(publisher: CollectingPublisher,
                                                                       dlq: DeadLetterWriter) -> None:
    handler, calls = handler_failing(10_000, lambda: RegistryUnavailable("still down"))
    with pytest.raises(processing.StopRequested):
        process_record(RECORD, handler, dlq, FAST, stopping=lambda: len(calls) >= 2)
    assert len(calls) == 2 and publisher.published == []  # the fault was not the record's: not parked


def test_a_stop_does_not_save_a_poison_record_from_its_dlq(publisher: CollectingPublisher,
                                                           dlq: DeadLetterWriter) -> None:
    handler, _ = handler_failing(100, lambda: KeyError("bug"))
    assert process_record(RECORD, handler, dlq, FAST, stopping=lambda: True) == "dlq"
    assert len(publisher.published) == 1
