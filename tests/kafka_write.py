"""Tests' Kafka writes that cannot lose a record silently, and the cleanup of a test's topics.

`make_producer` (the tests' drop-in for `shopstream.kafka.make_producer`): `flush` raises when the broker
refused any record since the last flush. A bare `flush() == 0` only says nothing is queued any more: a
record that timed out or was refused counts as gone too, and a test then waited minutes for input that
never arrived (the "restarted worker stopped consuming" of issue 10 was such a loss).

`Feed`: records produced from a thread at a steady pace (a broker or a worker is killed meanwhile);
`produce_all`: the same at once, confirmed.

`delete_topics(bootstrap, prefix)`: Tansu's idempotent produce slows with the number of topics on the
broker (2,300 single-record batches: 1.0 s on a fresh broker, 9.9 s with 3,000 topics, past a 30 s
message timeout at 5,000); the session broker of a whole test run collected thousands, so every test's
topics are deleted when it ends (tests/integration/conftest.py, tests/e2e/conftest.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from shopstream.config import Settings
from shopstream.kafka import producer_config


class CheckedProducer(Producer):
    """A confluent-kafka Producer whose `flush` fails the test on any refused record."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.refused: list[tuple[str, KafkaError]] = []

    def produce(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        given = kwargs.pop("on_delivery", None) or kwargs.pop("callback", None)

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self.refused.append((str(msg.topic()), err))
            if given is not None:
                given(err, msg)

        super().produce(*args, on_delivery=on_delivery, **kwargs)

    def flush(self, *args: Any, **kwargs: Any) -> int:  # type: ignore[override]
        left = super().flush(*args, **kwargs)
        refused, self.refused = self.refused, []
        if refused:
            raise AssertionError(f"the broker refused {len(refused)} record(s) of the test, e.g. to "
                                 f"{refused[0][0]}: {refused[0][1]}")
        return left


def make_producer(settings: Settings, **overrides: Any) -> CheckedProducer:
    """The project's producer settings, checked (see the module docstring)."""
    return CheckedProducer(producer_config(settings, **overrides))


Record = tuple[str, bytes, bytes]  # topic, key, value


class Feed:
    """Produce records from a thread at a steady pace, across a broker restart; every delivery must succeed."""

    def __init__(self, settings: Settings, records: Sequence[Record], seconds: float) -> None:
        self.records, self.pause = list(records), seconds / max(1, len(records))
        # Not idempotent on the durable broker (conftest.py); the product's own message timeout.
        self.producer = make_producer(settings)
        self.sent = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.errors.append(str(err))

    def _run(self) -> None:
        for topic, key, value in self.records:
            self.producer.produce(topic, key=key, value=value, on_delivery=self._delivered)
            self.producer.poll(0)
            self.sent += 1
            time.sleep(self.pause)

    def start(self) -> Feed:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join(timeout=300)
        assert not self.thread.is_alive(), "the feed did not finish"
        assert self.producer.flush(150) == 0, "records not confirmed after the restart"
        assert not self.errors, f"{len(self.errors)} records refused, e.g. {self.errors[:3]}"


def produce_all(settings: Settings, records: Sequence[Record]) -> None:
    """Produce and confirm every record (before the worker starts or with the broker up)."""
    feed = Feed(settings, records, 0.0)
    feed._run()
    assert feed.producer.flush(60) == 0 and not feed.errors, feed.errors[:3]


def delete_topics(bootstrap: str, prefix: str, timeout_s: float = 60.0) -> None:
    """Delete every topic whose name starts with `prefix` (a test's own, by its unique prefix)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [name for name in admin.list_topics(timeout=timeout_s).topics if name.startswith(prefix)]
    if not names:
        return
    for future in admin.delete_topics(names, operation_timeout=timeout_s).values():
        future.result(timeout_s)
