"""`shopstream simulate` against the shared e2e `shopstream dev`: a short day with every fault, a clean verdict."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def test_a_short_simulated_day_with_all_faults_is_clean(stack: RunningStack) -> None:
    env = {**stack.dev.env, "SCHEMA_REGISTRY_URL": stack.registry}
    done = subprocess.run([sys.executable, "-m", "shopstream.cli", "simulate", "--duration", "20", "--faults", "all",
                           "--orders-per-second", "2", "--settle", "120", "--json"],
                          env=env, capture_output=True, text=True, timeout=400)
    assert done.stdout.strip(), done.stderr[-3000:]
    verdict = json.loads(done.stdout)
    bad = [r for r in verdict["rows"] if r["mismatches"]]
    assert done.returncode == 0 and verdict["clean"], f"{bad}\n{done.stderr[-2000:]}"
    checked = {r["check"]: r["checked"] for r in verdict["rows"]}
    assert checked["orders: canonical status"] >= 40 and checked["ATP: available per SKU"] == 40
    assert checked["holds: rules fired and decided"] > 0
    assert {"dup", "malformed", "badsig", "reorder"} <= set(verdict["faults"])
    # Never silent: the fault it cannot inject is named with its reason, and so is the traffic it cannot send.
    assert "kill-worker" in verdict["skipped"] and "traffic:erp" in verdict["skipped"]
