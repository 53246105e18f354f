"""The review worker on a real broker: verdicts and work items, and a SIGKILL mid-stream that changes nothing.

`shopstream worker review` (the real process) reads OrderPlaced / OrderUpdated from `shop.orders` and
publishes an OrderReviewed per changed verdict on `review.decisions` and a ReviewItem per verdict that
needs a person on `review.queue`. The oracle is the pure core fed every event in production order; the
worker sees them per partition, is SIGKILLed with velocity state in flight, restarts (rebuilding its
state from the topic up to its committed offsets) and must end with the oracle's last verdict for every
order.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.processors.review.rules import load_rules
from shopstream.processors.review.velocity import ReviewState, step
from shopstream.schemas.models import OrderPlaced, OrderReviewed, OrderUpdated, ReviewItem
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import committed_offsets, read_all
from tests.kafka_write import make_producer
from tests.unit.review_events import ELSEWHERE, order, update
from tests.workers import start_worker

pytestmark = pytest.mark.broker
ORDERS = 600


def _events() -> list[OrderPlaced | OrderUpdated]:
    rng = random.Random(11)
    events: list[OrderPlaced | OrderUpdated] = []
    for i in range(ORDERS):
        placed = order(f"R{i}", minute=i * 0.7, email=f"c{rng.randrange(40)}@example.com",
                       total=rng.choice(["20", "60", "160", "409.94"]), currency=rng.choice(["EUR", "USD"]),
                       orders_count=rng.choice([1, 2, 7]), shipping=ELSEWHERE if rng.random() < 0.1 else None,
                       billing=None)
        events.append(placed)
        if rng.random() < 0.2:
            events.append(update(placed, i * 0.7 + 3, total={"amount": "12", "currency": placed.currency}))
    # Late arrivals: some events move up to 40 places later (within the velocity retention).
    for _ in range(ORDERS // 5):
        j = rng.randrange(len(events))
        events.insert(min(len(events), j + rng.randrange(40)), events.pop(j))
    return events


def _oracle(events: list[OrderPlaced | OrderUpdated]) -> dict[str, tuple[str, tuple[str, ...]]]:
    state, last = ReviewState(), {}
    rules = load_rules()
    for event in events:
        for verdict in step(state, rules, event):
            last[verdict.order_id] = (verdict.action, verdict.rule_ids)
    return last


def _verdicts(settings: Settings, serde: AvroSerde) -> dict[str, tuple[str, tuple[str, ...]]]:
    last = {}
    for msg in read_all(settings.kafka_bootstrap_servers, settings.topic("review.decisions"), 4, idle_s=0.5):
        record = serde.decode(msg.value())
        if isinstance(record, OrderReviewed):
            last[record.order_id] = (record.action, tuple(record.rule_ids))
    return last


def test_verdicts_after_a_sigkill_mid_stream_equal_the_oracle(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    events = _events()
    expected = _oracle(events)
    assert {a for a, _ in expected.values()} >= {"pass", "flag", "hold"}  # the stream exercises the rules
    assert any("email-velocity" in r for _, r in expected.values())
    producer = make_producer(settings)
    topic = settings.topic("shop.orders")

    def produce(batch: list[OrderPlaced | OrderUpdated]) -> None:
        for event in batch:
            producer.produce(topic, key=event.order_id.encode(), value=serde.encode(topic, event))
            producer.poll(0)
        assert producer.flush(30) == 0

    half = len(events) // 2
    produce(events[:half])
    log = tmp_path / "review.log"
    worker = start_worker("review", settings, log)
    try:
        deadline = time.monotonic() + 120
        # verdicts out AND a commit made: the restart must rebuild the velocity state from the committed
        # history (a kill before the first commit re-reads everything: right, but not what this tests)
        group = settings.topic("review")  # group ids carry the topic prefix too
        while (len(_verdicts(settings, serde)) < ORDERS // 8
               or max(committed_offsets(settings.kafka_bootstrap_servers, group, topic).values()) <= 0):
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "worker produced nothing:\n" + log.read_text()[-3000:]
            time.sleep(0.5)
        produce(events[half:])
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert len(_verdicts(settings, serde)) < len(expected), "worker finished before the kill"
        worker = start_worker("review", settings, log)
        deadline = time.monotonic() + 240
        got: dict[str, tuple[str, tuple[str, ...]]] = {}
        while time.monotonic() < deadline:
            got = _verdicts(settings, serde)
            if got == expected:
                break
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(2)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert not wrong, f"{len(wrong)} of {len(expected)} verdicts differ from the oracle, e.g. {list(wrong.items())[:3]}"
    assert "review state rebuilt from" in log.read_text()
    items = [serde.decode(m.value()) for m in read_all(settings.kafka_bootstrap_servers,
                                                       settings.topic("review.queue"), 4, idle_s=0.5)]
    held = {i.order_id for i in items if isinstance(i, ReviewItem) and i.kind == "review_hold"}
    assert held >= {k for k, (a, _) in expected.items() if a == "hold"}


def test_a_poison_record_is_parked_and_the_partition_moves_on(settings: Settings) -> None:
    import threading

    from shopstream.dlq import header_map
    from shopstream.processors.review.worker import run_review

    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    producer = make_producer(settings)
    topic = settings.topic("shop.orders")
    good = order("P-2", total="409.94", currency="USD", orders_count=1)
    producer.produce(topic, key=b"P-1", value=b"definitely not avro")
    producer.produce(topic, key=b"P-2", value=serde.encode(topic, good))
    assert producer.flush(30) == 0
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_review(settings, stop)
        except BaseException as exc:  # the worker's crash fails the test
            errors.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while "P-2" not in _verdicts(settings, serde):
            assert time.monotonic() < deadline and not errors, errors
            time.sleep(0.5)
        assert _verdicts(settings, serde)["P-2"] == ("hold", ("high-value", "first-order"))
        parked = read_all(settings.kafka_bootstrap_servers, settings.topic("shop.orders.dlq"), 1, idle_s=0.5)
        [msg] = [m for m in parked if m.key() == b"P-1"]
        headers = header_map(msg.headers())
        assert msg.value() == b"definitely not avro" and b"review" in headers["shopstream.dlq.processor"]
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not errors, errors
