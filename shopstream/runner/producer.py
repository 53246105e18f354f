"""The one confirming producer of the runner: queue records, flush, and latch on any refused one.

One librdkafka producer from `shopstream.kafka.make_producer` (murmur2, idempotent, acks=all) with
`delivery.report.only.error`: librdkafka calls back only for failed records, so a batch of a million
confirmed records costs no Python call each (the measured bulk path). `confirm` waits until every
queued record was confirmed; a record the broker refused (after librdkafka's own retries, up to
`message.timeout.ms`) latches the producer for the life of the process: `latched` stays true and the
runner commits nothing any more (`shopstream.halt`, exit 76), so a restart re-reads whatever might
depend on it. `publish` (the DLQ writer's path) waits for its own record and raises `DeliveryError`
for it alone: a DLQ fault is retried or halts (exit 75) by the retry policy, it does not latch.

`too_large` tells a record librdkafka would refuse at produce time (MSG_SIZE_TOO_LARGE: over
`message.max.bytes`) before it is queued, so the runner can attribute it (runner/loop.py): produce
raises for it after the records before it in the same call were queued, which could not be taken back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from shopstream.config import Settings
from shopstream.kafka import MESSAGE_MAX_BYTES, DeliveryError, Headers, RecordTooLarge, make_producer, record_size

log = logging.getLogger("shopstream.runner")

#: (topic, key, value, partition or None) of a record to queue.
OutRecord = tuple[str, bytes | None, bytes | None, int | None]
#: (topic, key, value, headers or None) of a record to `send`.
SendRecord = tuple[str, bytes | None, bytes | None, Headers | None]


class ConfirmingProducer:
    """Queue records, `confirm` them all at once; a refused record latches (see the module docstring)."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self.failures: list[tuple[str, KafkaError]] = []  # (topic, error) of refused queued records
        self._refused: list[tuple[Message, KafkaError]] = []  # the refused records themselves (for `send`)
        self._producer = make_producer(settings, **{
            "delivery.report.only.error": True, "on_delivery": self._on_delivery,
            "message.timeout.ms": int(settings.kafka_producer_timeout_s * 1000), **overrides})
        self._timeout_s = settings.kafka_producer_timeout_s
        #: the producer's `message.max.bytes` (librdkafka's default unless overridden)
        self.max_bytes = int(overrides.get("message.max.bytes", MESSAGE_MAX_BYTES))

    def too_large(self, topic: str, key: bytes | None, value: bytes | None) -> RecordTooLarge | None:
        """The error producing this record would raise for its size, or None when it fits."""
        size = record_size(key, value)
        return RecordTooLarge(topic, key, size, self.max_bytes) if size > self.max_bytes else None

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failures.append((str(msg.topic()), err))
            self._refused.append((msg, err))

    @property
    def latched(self) -> bool:
        """True once any queued record was refused: nothing may be committed by this process any more."""
        return bool(self.failures)

    def produce(self, records: Sequence[OutRecord]) -> None:
        """Queue records (no wait for the broker; `confirm` waits)."""
        produce, poll = self._producer.produce, self._producer.poll
        for topic, key, value, partition in records:
            while True:
                try:
                    if partition is None:
                        produce(topic, value, key)
                    else:
                        produce(topic, value, key, partition)
                    break
                except BufferError:  # local queue full: serve delivery reports, then try again
                    poll(0.05)
                except KafkaException as exc:
                    raise DeliveryError(topic, exc.args[0]) from exc

    def confirm(self, timeout_s: float | None = None, since: int | None = None) -> list[tuple[str, KafkaError]]:
        """Wait until every queued record is confirmed or refused; returns the refusals since the call
        (or since `failures` was `since` long: records queued earlier, refused while queueing later ones).

        Raises TimeoutError (transient) when records are still unconfirmed after `timeout_s`."""
        seen = len(self.failures) if since is None else since
        left = self._producer.flush(self._timeout_s + 5 if timeout_s is None else timeout_s)
        if left:
            raise TimeoutError(f"{left} records not confirmed by the broker")
        return self.failures[seen:]

    def send(self, records: Sequence[SendRecord], timeout_s: float = 60.0) -> list[tuple[Message, KafkaError]]:
        """Produce records (with headers), wait for the broker; the refused ones, to re-send (DeliveryError
        when some are still unconfirmed after `timeout_s`). For loops that re-send what failed themselves."""
        self._refused = []
        produce, poll = self._producer.produce, self._producer.poll
        for topic, key, value, headers in records:
            while True:
                try:
                    if headers:
                        produce(topic, value, key, headers=list(headers))
                    else:
                        produce(topic, value, key)
                    break
                except BufferError:  # local queue full: serve delivery reports, then try again
                    poll(0.05)
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise DeliveryError(records[0][0] if records else "?",
                                f"{remaining} records unconfirmed after {timeout_s} s")
        return self._refused

    async def publish(self, topic: str, key: bytes | None, value: bytes | None,
                      headers: Headers | None = None) -> None:
        """Write one record and wait for the broker (the DLQ writer's `Publisher`); DeliveryError if refused."""
        failed: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failed.append(err)

        try:
            self._producer.produce(topic, value, key, headers=list(headers or []), on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            raise DeliveryError(topic, exc.args[0] if isinstance(exc, KafkaException) else str(exc)) from exc
        left = await asyncio.to_thread(self._producer.flush, self._timeout_s + 5)
        if failed:
            raise DeliveryError(topic, failed[0])
        if left:
            raise TimeoutError(f"dlq write to {topic} not confirmed by the broker")

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued (best effort) and let the client go."""
        self._producer.flush(timeout_s)
