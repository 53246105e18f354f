"""`shopstream rules backtest` over a few thousand orders on a real broker: per-rule counts equal the pure run."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from shopstream.config import Settings
from shopstream.processors.review.rules import load_rules
from shopstream.processors.review.tools import backtest
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_write import make_producer
from tests.unit.review_events import ELSEWHERE, order

pytestmark = pytest.mark.broker
ORDERS = 3000


def test_backtest_of_a_few_thousand_orders(settings: Settings) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    rng = random.Random(5)
    events = [order(f"B{i}", minute=i * 0.5, email=f"c{rng.randrange(300)}@example.com",
                    total=rng.choice(["19.90", "49", "99", "180", "409.94"]),
                    currency=rng.choice(["EUR", "USD", "GBP"]),
                    orders_count=rng.choice([1, 3, 9]), shipping=ELSEWHERE if rng.random() < 0.05 else None,
                    billing=None) for i in range(ORDERS)]
    producer = make_producer(settings)
    topic = settings.topic("shop.orders")
    for event in events:
        producer.produce(topic, key=event.order_id.encode(), value=serde.encode(topic, event))
        producer.poll(0)
    assert producer.flush(60) == 0
    since = events[100].placed_at.isoformat()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "SCHEMA_REGISTRY_URL": settings.schema_registry_url, "SHOPSTREAM_TOPIC_PREFIX": settings.topic_prefix}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "shopstream.cli", "rules", "backtest", "--since", since,
                           "--rules", "topology/rules/review.yaml"], env=env, capture_output=True, text=True,
                          timeout=300)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout, f"(whole command {took:.1f} s)")
    expected = backtest(load_rules(), events, events[100].placed_at)
    assert f"{expected.orders} orders from {ORDERS} events" in done.stdout
    for rule_id, counts in expected.per_rule.items():
        line = next(x for x in done.stdout.splitlines() if x.strip().startswith(rule_id + " "))
        assert f" {sum(counts.values())} orders" in line, line
