"""How every consumer handles one record: retry transient faults in place, park permanent ones.

- Transient (registry or Redis briefly away, broker timeouts): retried in place with exponential
  backoff and full jitter, for at most `RetryPolicy.max_elapsed_s`; the partition waits, so per-key
  order holds and no offset is committed past the record. Still failing after that: parked.
- Permanent (undecodable bytes, unknown schema, validation error, a bug raising in the handler):
  parked on the DLQ at once; the partition moves on. A poison record never blocks its partition.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import redis

from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.kafka import DeliveryError
from shopstream.metrics import PROCESSING_SECONDS, RECORDS_IN, RETRIES
from shopstream.serde import RegistryUnavailable, SerdeError

Outcome = Literal["ok", "dlq"]


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
    if isinstance(exc, redis.ResponseError):
        return str(exc).upper().startswith(_TRANSIENT_REDIS_REPLIES)
    return isinstance(exc, RegistryUnavailable | redis.ConnectionError | redis.TimeoutError
                      | ConnectionError | asyncio.TimeoutError)


async def process_record(record: FailedRecord, handler: Callable[[], Awaitable[None]], dlq: DeadLetterWriter,
                         policy: RetryPolicy = RetryPolicy(), topic_label: str | None = None) -> Outcome:
    """Run `handler` for `record` under the retry/park policy; returns what happened."""
    attempts = 0
    first_ms = int(time.time() * 1000)
    started = time.monotonic()
    label = topic_label or record.topic
    while True:
        attempts += 1
        try:
            await handler()
            RECORDS_IN.labels(dlq.processor, label, "ok").inc()
            PROCESSING_SECONDS.labels(dlq.processor).observe(time.monotonic() - started)
            return "ok"
        except Exception as exc:
            transient = is_transient(exc)
            if transient and time.monotonic() - started < policy.max_elapsed_s:
                RETRIES.labels(dlq.processor, type(exc).__name__).inc()
                await asyncio.sleep(policy.backoff(attempts))
                continue
            stage = "retry-exhausted" if transient else "deserialize" if isinstance(exc, SerdeError) else "process"
            await dlq.park(record, Failure(error=exc, stage=stage, attempts=attempts, first_failure_ms=first_ms))
            RECORDS_IN.labels(dlq.processor, label, "dlq").inc()
            return "dlq"
