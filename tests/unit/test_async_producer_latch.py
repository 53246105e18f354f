"""`AsyncProducer`'s delivery latch, driven by fake delivery reports (no broker needed).

Once one queued record was refused, every `confirm` (the inventory worker's pre-commit flush) and
every `produce` must raise, so no offset is committed past a lost changelog record until restart.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError

from shopstream.config import Settings
from shopstream.halt import EXIT_DELIVERY_FAILED, MustRestart
from shopstream.kafka import AsyncProducer, DeliveryError, DeliveryLatched
from shopstream.processing import is_transient


class FakeMessage:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


@pytest.fixture
def producer() -> Iterator[AsyncProducer]:
    # Nothing listens on port 9: the client never connects, and nothing is ever queued here.
    p = AsyncProducer(Settings(kafka_bootstrap_servers="127.0.0.1:9"), queued_only=True)
    yield p
    p.close(timeout_s=0.1)


async def test_confirm_passes_while_every_report_is_a_success(producer: AsyncProducer) -> None:
    producer._on_queued_delivery(None, FakeMessage("t.inventory.atp"))  # type: ignore[arg-type]
    await producer.confirm(timeout_s=0.1)
    assert not producer.latched


async def test_one_failure_latches_every_later_confirm_and_produce(producer: AsyncProducer) -> None:
    reports: list[tuple[KafkaError | None, str]] = [
        (None, "t.inventory.atp"),
        (KafkaError(KafkaError._MSG_TIMED_OUT, "timed out", retriable=True), "t.inventory-atp-changelog"),
        (None, "t.inventory.atp"),  # later successes do not clear it
        (KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), "t.inventory.atp"),  # nor does a second failure replace it
    ]
    for err, topic in reports:
        producer._on_queued_delivery(err, FakeMessage(topic))  # type: ignore[arg-type]
    assert producer.latched
    for _ in range(3):  # not handed out once and forgotten: every caller hears it
        with pytest.raises(DeliveryLatched) as raised:
            await producer.confirm(timeout_s=0.1)
        assert raised.value.topic == "t.inventory-atp-changelog"
    with pytest.raises(DeliveryLatched):
        await producer.produce("t.inventory.atp", b"sku", b"v")


def test_latched_error_is_a_must_restart_not_a_parkable_error() -> None:
    error = DeliveryLatched("t.x", KafkaError(KafkaError._MSG_TIMED_OUT, retriable=True))
    # process_record halts on MustRestart before classifying, so the innocent record in hand is
    # neither retried nor parked; it is still a DeliveryError for callers that catch those.
    assert isinstance(error, MustRestart) and isinstance(error, DeliveryError)
    assert error.exit_code == EXIT_DELIVERY_FAILED
    assert is_transient(error)  # which is why MustRestart must be checked first
