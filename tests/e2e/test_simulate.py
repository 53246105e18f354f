"""`shopstream simulate` against its own `shopstream dev --durable-broker`: one short day with every fault.

Every fault in one run (the CI budget): duplicates, reordering, malformed bodies, bad signatures, a
stateful worker SIGKILLed mid-traffic (dev starts it again) and the broker SIGKILLed mid-traffic (dev
starts the S3-backed Tansu again with its data). The verdict must be clean, and each process fault
must be reported with when it was injected and how long the recovery took.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopstream.dev.runtime import DevProcess, spawn_dev
from tests.e2e.conftest import CARRIER_SECRET, RETURNS_SECRET, SHOPIFY_SECRET, STRIPE_SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


@pytest.fixture(scope="module")
def durable_dev(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    """Its own dev on the durable embedded broker (a restart keeps the data), registry embedded too."""
    token = uuid.uuid4().hex[:8]
    dev = spawn_dev(tmp_path_factory.mktemp("dev-durable"), "--durable-broker", KAFKA_BOOTSTRAP_SERVERS="",
                    SCHEMA_REGISTRY_URL="", REDIS_URL=redis_url, SHOPSTREAM_REDIS_PREFIX=f"test:sim{token}:",
                    SHOPSTREAM_MAPPINGS_DIR=str(tmp_path_factory.mktemp("mappings")),
                    SHOPSTREAM_SHOPIFY_SECRET=SHOPIFY_SECRET, SHOPSTREAM_STRIPE_SECRET=STRIPE_SECRET,
                    SHOPSTREAM_CARRIER_SECRET=CARRIER_SECRET, SHOPSTREAM_RETURNS_SECRET=RETURNS_SECRET,
                    KAFKA_SESSION_TIMEOUT_S="6")
    dev.wait_ready(180)
    try:
        yield dev
    finally:
        dev.stop()


def test_a_short_simulated_day_with_all_faults_is_clean(durable_dev: DevProcess) -> None:
    done = subprocess.run([sys.executable, "-m", "shopstream.cli", "simulate", "--duration", "30", "--faults", "all",
                           "--orders-per-second", "2", "--settle", "180", "--json"],
                          env=durable_dev.client_env(), capture_output=True, text=True, timeout=700)
    assert done.stdout.strip(), done.stderr[-3000:] + durable_dev.log_tail()
    verdict = json.loads(done.stdout)
    bad = [r for r in verdict["rows"] if r["mismatches"]]
    assert done.returncode == 0 and verdict["clean"], f"{bad}\n{done.stderr[-2000:]}\n{durable_dev.log_tail()}"
    checked = {r["check"]: r["checked"] for r in verdict["rows"]}
    assert checked["orders: canonical status"] >= 60 and checked["ATP: available per SKU"] == 40
    assert checked["holds: rules fired and decided"] > 0
    assert {"dup", "malformed", "badsig", "reorder", "kill-worker", "restart-broker"} <= set(verdict["faults"])
    # Each process fault: what was hit, when, a new process, and how long until it was back.
    hits = {d["fault"]: d for d in verdict["disruptions"]}
    assert set(hits) == {"kill-worker", "restart-broker"}, verdict["disruptions"]
    for d in hits.values():
        assert d["recovered_after_s"] is not None and d["new_pid"] != d["pid"] and 0 < d["at_s"] < 30, d
    assert hits["kill-worker"]["target"] in ("worker-orders", "worker-inventory")
    # dev said it restarted both (its own log, not the simulator's word)
    log = Path(durable_dev.log_path).read_text(errors="replace")
    assert f"{hits['kill-worker']['target']} was killed by signal 9; started again" in log
    assert "the broker exited (-9); started again" in log
    # Never silent: the traffic it cannot send is named with its reason.
    assert "traffic:erp" in verdict["skipped"] and not {"kill-worker", "restart-broker"} & set(verdict["skipped"])
