"""The one retry policy (the runner's, per record): retry transient faults in place, park permanent ones.

- Transient (registry or Redis briefly away, broker timeouts): retried in place with exponential
  backoff and full jitter, for at most `RetryPolicy.max_elapsed_s`; the partition waits, so per-key
  order holds and no offset is committed past the record. Still failing after that: parked.
- Permanent (undecodable bytes, unknown schema, validation error, a bug raising in the handler):
  parked on the DLQ at once; the partition moves on. A poison record never blocks its partition.
- Broker faults count as transient when the client says they may heal: confluent-kafka's
  `DeliveryError.retriable` and a `KafkaException` carrying a retriable `KafkaError`, plus timeouts
  (a send or a flush that ran out of time). Parking those would break per-key order over a blip.
- Parking itself failing (the DLQ write was not confirmed): `process_record` never returns then, so
  the record is never acknowledged. A transient DLQ fault is retried in place with the same policy;
  a permanent one, or one still failing after `max_elapsed_s` (counted from the first park
  attempt), stops the process without committing (`shopstream.halt`, exit code 75): a restart reads
  the record again. The same holds for `MustRestart` raised by the handler (the worker's producer
  lost a record it cannot attribute): the process halts at once (exit code 76), nothing is parked.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import redis
from confluent_kafka import KafkaError, KafkaException

from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.halt import EXIT_PARK_FAILED, MustRestart, halt
from shopstream.kafka import DeliveryError, RecordTooLarge
from shopstream.metrics import RECORDS_IN, RETRIES
from shopstream.serde import RegistryUnavailable, SerdeError

Outcome = Literal["ok", "dlq"]


class StopRequested(Exception):
    """The process is stopping while a transient fault is retried: the record is neither parked nor
    acknowledged (its consumer stops without committing it, and the next owner reads it again)."""
log = logging.getLogger("shopstream.processing")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in total time (and optionally in attempts)."""

    initial_s: float = 0.1
    max_backoff_s: float = 5.0
    max_elapsed_s: float = 120.0
    max_attempts: int | None = None

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based): uniform(0, min(cap, initial·2^(n-1)))."""
        return random.uniform(0, min(self.max_backoff_s, self.initial_s * 2 ** (attempt - 1)))


# Redis replies that mean "not now" rather than "never" (failover, loading, memory pressure).
_TRANSIENT_REDIS_REPLIES = ("OOM", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY", "READONLY")


def is_transient(exc: BaseException) -> bool:
    """Faults expected to heal by themselves: worth a retry, not a dead letter."""
    if isinstance(exc, DeliveryError):
        return exc.retriable
    if isinstance(exc, KafkaException):
        error = exc.args[0] if exc.args else None
        return isinstance(error, KafkaError) and bool(error.retriable())
    if isinstance(exc, redis.ResponseError):
        return str(exc).upper().startswith(_TRANSIENT_REDIS_REPLIES)
    return isinstance(exc, RegistryUnavailable | redis.ConnectionError | redis.TimeoutError
                      | ConnectionError | asyncio.TimeoutError)


def fault_kind(exc: BaseException) -> str:
    """What a transient fault was about (the `operation` label of `shopstream_retries_total`)."""
    if isinstance(exc, redis.RedisError):
        return "redis"
    if isinstance(exc, RegistryUnavailable):
        return "registry"
    if isinstance(exc, DeliveryError | KafkaException):
        return "broker"
    return type(exc).__name__


def process_record(record: FailedRecord, handler: Callable[[], None], dlq: DeadLetterWriter,
                   policy: RetryPolicy = RetryPolicy(), topic_label: str | None = None,
                   stopping: Callable[[], bool] = lambda: False) -> Outcome:
    """Run `handler` for `record` under the retry/park policy; returns what happened ("ok": the caller
    counts it once its effects are confirmed). `stopping`: a stop was asked; a transient fault then
    raises StopRequested instead of waiting out the budget (never a park: the fault was not the record's)."""
    attempts = 0
    first_ms = int(time.time() * 1000)
    started = time.monotonic()
    label = topic_label or record.topic
    while True:
        attempts += 1
        try:
            handler()
            return "ok"
        except MustRestart as exc:
            halt(f"{dlq.processor}: {record.topic}[{record.partition}]@{record.offset}: {exc}", exc.exit_code)
        except Exception as exc:
            transient = is_transient(exc)
            if transient and stopping():
                raise StopRequested(f"{record.topic}[{record.partition}]@{record.offset}") from exc
            if transient and time.monotonic() - started < policy.max_elapsed_s:
                RETRIES.labels(dlq.processor, type(exc).__name__).inc()
                time.sleep(policy.backoff(attempts))
                continue
            stage = ("retry-exhausted" if transient else "deserialize" if isinstance(exc, SerdeError)
                     else "produce" if isinstance(exc, RecordTooLarge) else "process")
            park(record, Failure(error=exc, stage=stage, attempts=attempts, first_failure_ms=first_ms), dlq, policy)
            RECORDS_IN.labels(dlq.processor, label, "dlq").inc()
            return "dlq"


def park(record: FailedRecord, failure: Failure, dlq: DeadLetterWriter, policy: RetryPolicy = RetryPolicy()) -> None:
    """`park_or_halt` for synchronous callers (the runner's thread has no running event loop)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(park_or_halt(record, failure, dlq, policy))
    finally:
        loop.close()


async def park_or_halt(record: FailedRecord, failure: Failure, dlq: DeadLetterWriter,
                       policy: RetryPolicy = RetryPolicy()) -> None:
    """Park `record`, retrying a transient DLQ fault in place; returns only once the broker confirmed it.

    A permanent DLQ fault, or a transient one outlasting `policy.max_elapsed_s`, halts the process
    (exit code 75) so that the record is never acknowledged: see the module docstring."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            await dlq.park(record, failure)
            return
        except Exception as exc:
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            if is_transient(exc) and time.monotonic() - started < policy.max_elapsed_s:
                RETRIES.labels(dlq.processor, "dlq").inc()
                log.warning("dlq write failed, retrying", extra={
                    "processor": dlq.processor, "record": where, "attempt": attempt,
                    "error_class": type(exc).__name__})
                await asyncio.sleep(policy.backoff(attempt))
                continue
            halt(f"{dlq.processor}: {where} could be neither applied nor parked: "
                 f"{type(exc).__name__}: {exc}", EXIT_PARK_FAILED)
