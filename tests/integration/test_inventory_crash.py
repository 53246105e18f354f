"""SIGKILL the inventory worker while a large snapshot and a stream of orders are in flight, restart it,
and every SKU's ATP equals the oracle (issue 3).

The feed and the oracle are tests/stock_feed.py's: three exports of 3,000 SKUs through the real ingest
(the third repeating the second's figures an hour later) and reservations for 600 orders streaming at
the same time. The worker is killed once it has emitted part of the ATP records, restarted, and the
latest AtpLevel of every SKU must carry the figures the pure core computes over that SKU's events.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.connectors.ingest import ingest_erp_stock
from shopstream.processors.inventory.config import load_inventory_config
from shopstream.processors.inventory.figures import levels
from shopstream.schemas.models import AtpLevel
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.stock_feed import AS_OFS, SKUS, export, figures, latest_levels, matches, mismatch, oracle, reservations
from tests.workers import start_worker, stop

pytestmark = pytest.mark.broker


def test_sigkill_during_snapshot_and_orders_then_restart_matches_oracle(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    events = reservations(random.Random(7))
    expected = oracle(events, AS_OFS)
    config = load_inventory_config()

    log = tmp_path / "worker.log"
    worker = start_worker("inventory", settings, log)
    topic = settings.topic("inventory.reservations")
    producer = make_producer(settings)
    try:
        report = ingest_erp_stock(settings, export(0), file_name="first.csv", as_of=AS_OFS[0])
        assert report.published == SKUS
        # Orders stream in while the worker works through the snapshot; the kill comes mid-way.
        half = len(events) // 2
        for ev in events[:half]:
            producer.produce(topic, key=ev.sku.encode(), value=serde.encode(topic, ev))
        assert producer.flush(10) == 0
        deadline = time.monotonic() + 120
        while len(read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.atp"), idle_s=0.3)) < SKUS // 3:
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.3)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        report = ingest_erp_stock(settings, export(1), file_name="second.csv", as_of=AS_OFS[1])
        assert report.published == SKUS
        for ev in events[half:]:
            producer.produce(topic, key=ev.sku.encode(), value=serde.encode(topic, ev))
        assert producer.flush(10) == 0
        worker = start_worker("inventory", settings, log)
        report = ingest_erp_stock(settings, export(2), file_name="third.csv", as_of=AS_OFS[2])
        assert (report.published, report.unchanged) == (SKUS, SKUS)

        def settled() -> dict[str, AtpLevel] | None:
            latest = latest_levels(settings, serde)
            return latest if len(latest) == len(expected) and matches(latest, expected) else None

        deadline = time.monotonic() + 240
        latest = settled()
        while latest is None:
            assert time.monotonic() < deadline, mismatch(latest_levels(settings, serde), expected, log)
            time.sleep(2)
            latest = settled()
        for sku, state in expected.items():
            assert figures(latest[sku]) == figures(levels(state, config.policy(sku).online_locations)), sku
    finally:
        stop(worker)
