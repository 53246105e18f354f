"""SIGKILL the orders worker mid-stream, restart it, and every order ends exactly as the oracle computes.

The input is the order lifecycle feed of tests/orders_feed.py (creates, updates, cancels, captures,
dispatches, duplicates, payments and dispatches often before their order) and its oracle, the pure
canonical core over each order's events in production order; the comparison is on what an order *is*
(`essence`), not on how many steps it took. The worker is the real `shopstream worker orders` process
on the real broker.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.schemas.models import OrderState
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import latest_order_states
from tests.orders_feed import diagnose, differences, essence, lifecycle_events, oracle, produce_events
from tests.workers import start_worker

pytestmark = pytest.mark.broker

ORDERS = 2500


def _latest_states(settings: Settings, serde: AvroSerde) -> dict[str, OrderState]:
    return latest_order_states(settings.kafka_bootstrap_servers, settings.topic("orders.state"), serde)


def _start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return start_worker("orders", settings, log)


def test_sigkill_mid_stream_then_restart_matches_oracle(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    events = lifecycle_events(ORDERS)
    expected = oracle(events)
    half = len(events) // 2
    produce_events(settings, serde, events[:half])

    log = tmp_path / "worker.log"
    worker = _start_worker(settings, log)
    try:
        # Kill it once it is visibly mid-stream: some states out, far from all.
        deadline = time.monotonic() + 120
        while len(_latest_states(settings, serde)) < ORDERS // 10:
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "worker produced nothing:\n" + log.read_text()[-3000:]
            time.sleep(0.5)
        produce_events(settings, serde, events[half:])  # more arrive while it is down
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert len(_latest_states(settings, serde)) < len(expected), "worker finished before the kill"

        worker = _start_worker(settings, log)
        deadline = time.monotonic() + 240
        latest: dict[str, OrderState] = {}
        while time.monotonic() < deadline:
            latest = _latest_states(settings, serde)
            if not differences(latest, expected):
                break
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(2)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()

    missing = set(expected) - set(latest)
    assert not missing, f"{len(missing)} of {len(expected)} orders have no state; worker log: {log}"
    wrong = differences(latest, expected)
    if wrong:
        diagnose(settings, wrong[:3])
    assert not wrong, (f"{len(wrong)} orders differ from the oracle, e.g. {essence(latest[wrong[0]])} != "
                       f"{essence(expected[wrong[0]])}")
