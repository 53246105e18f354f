"""`worker orders` on the real broker: what waits too long reaches `review.queue` without another event.

A payment for an order that never arrives is parked in the order's table entry; the worker's sweep
(every `SHOPSTREAM_ORDERS_SWEEP_INTERVAL_S`, here 1 s) sends it to review once it waited the
policy's `parking.expire_after` (here 3 s, from a policy file given by `SHOPSTREAM_ORDERS_POLICY`).
A payment whose order does arrive in time is applied instead and never reviewed. After a restart
the entry (rebuilt from the changelog) is not swept again: the review item exists once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.processors.orders.policy import default_orders_policy_path
from shopstream.schemas.models import ReviewItem
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import latest_order_states, read_all
from tests.kafka_write import make_producer
from tests.unit.order_events import captured, placed
from tests.workers import start_worker, stop, wait_for

pytestmark = pytest.mark.broker


def _policy(tmp_path: Path) -> Path:
    text = default_orders_policy_path().read_text().replace("expire_after: 24h", "expire_after: 3s")
    assert "expire_after: 3s" in text
    path = tmp_path / "orders_policy.yaml"
    path.write_text(text)
    return path


def _reviews(settings: Settings, serde: AvroSerde) -> list[ReviewItem]:
    items = [serde.decode(m.value()) for m in read_all(settings.kafka_bootstrap_servers,
                                                        settings.topic("review.queue"), idle_s=0.5)]
    return [i for i in items if isinstance(i, ReviewItem)]


def test_parked_payment_of_a_missing_order_expires_to_review(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    orphan = captured(5).model_copy(update={"order_id": "sweep-orphan"})
    matched_payment = captured(5, key="matched").model_copy(update={"order_id": "1001"})
    producer = make_producer(settings)
    for topic, event in (("payments", orphan), ("payments", matched_payment), ("shop.orders", placed())):
        name = settings.topic(topic)
        producer.produce(name, key=event.order_id.encode(), value=serde.encode(name, event))
    assert producer.flush(30) == 0

    log = tmp_path / "worker.log"
    env = {"SHOPSTREAM_ORDERS_POLICY": str(_policy(tmp_path)), "SHOPSTREAM_ORDERS_SWEEP_INTERVAL_S": "1"}
    worker = start_worker("orders", settings, log, **env)
    try:
        states = wait_for(lambda: latest_order_states(settings.kafka_bootstrap_servers, settings.topic("orders.state"),
                                                   serde).get("1001"), 90, log, "order 1001")
        assert states.order_id == "1001"
        reviews = wait_for(lambda: [r for r in _reviews(settings, serde) if r.kind == "parked_expired"], 60, log,
                        "the expired payment on review.queue")
        assert [(r.order_id, r.event_id, r.event_type) for r in reviews] == [
            ("sweep-orphan", orphan.meta.event_id, "PaymentCaptured")]
        assert "did not arrive within" in reviews[0].reason
        # The matched payment was applied (the order is paid), not reviewed.
        paid = wait_for(lambda: latest_order_states(settings.kafka_bootstrap_servers, settings.topic("orders.state"),
                                                 serde)["1001"].payment_status == "paid", 30, log, "1001 paid")
        assert paid
    finally:
        stop(worker)
    assert worker.returncode == 0, log.read_text(errors="replace")[-3000:]

    # Restarted, the worker rebuilds the entry from the changelog: nothing is waiting any more.
    worker = start_worker("orders", settings, log, **env)
    try:
        # Once it processes a new order it has joined and recovered; then let it sweep a few times.
        later = placed().model_copy(update={"order_id": "1002"})
        name = settings.topic("shop.orders")
        producer.produce(name, key=b"1002", value=serde.encode(name, later))
        assert producer.flush(30) == 0
        wait_for(lambda: "1002" in latest_order_states(settings.kafka_bootstrap_servers, settings.topic("orders.state"),
                                                    serde), 90, log, "order 1002 after the restart")
        time.sleep(4)
        assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        stop(worker)
    assert [r.kind for r in _reviews(settings, serde)].count("parked_expired") == 1
