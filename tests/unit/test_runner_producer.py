"""The runner's `ConfirmingProducer` latch, driven by fake delivery reports (no broker needed).

Once one queued record was refused, `latched` stays true for the life of the process (the runner
then commits nothing and halts, exit 76); `confirm` hands each refusal to the batch that queued it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError

from shopstream.config import Settings
from shopstream.runner.producer import ConfirmingProducer


class FakeMessage:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


@pytest.fixture
def producer() -> Iterator[ConfirmingProducer]:
    # Nothing listens on port 9: the client never connects, and nothing is ever queued here.
    p = ConfirmingProducer(Settings(kafka_bootstrap_servers="127.0.0.1:9"))
    yield p
    p.close(timeout_s=0.1)


def test_confirm_passes_while_every_report_is_a_success(producer: ConfirmingProducer) -> None:
    producer._on_delivery(None, FakeMessage("t.inventory.atp"))  # type: ignore[arg-type]
    assert producer.confirm(timeout_s=0.1) == []
    assert not producer.latched


def test_one_failure_latches_for_good_and_is_reported_to_the_batch_that_waits(producer: ConfirmingProducer) -> None:
    error = KafkaError(KafkaError._MSG_TIMED_OUT, "timed out", retriable=True)
    producer._on_delivery(error, FakeMessage("t.inventory-atp-changelog"))  # type: ignore[arg-type]
    producer._on_delivery(None, FakeMessage("t.inventory.atp"))  # type: ignore[arg-type]
    assert producer.latched
    assert [topic for topic, _ in producer.failures] == ["t.inventory-atp-changelog"]
    # A refusal reported before this confirm belongs to an earlier batch: not reported again ...
    assert producer.confirm(timeout_s=0.1) == []
    assert producer.latched  # ... but the latch stays
    producer._on_delivery(None, FakeMessage("t.inventory.atp"))  # type: ignore[arg-type]
    assert producer.latched


def test_producer_places_keys_with_murmur2_and_confirms() -> None:
    from shopstream.kafka import producer_config

    conf = producer_config(Settings(kafka_bootstrap_servers="127.0.0.1:9"))
    assert conf["partitioner"] == "murmur2_random" and conf["acks"] == "all" and conf["enable.idempotence"] is True
