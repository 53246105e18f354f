"""`shopstream simulate` against the shared e2e `shopstream dev`: a short day with every fault, a clean verdict.

One run (the CI budget): duplicates, reordering, malformed bodies, bad signatures, and a stateful worker
SIGKILLed mid-traffic, which dev starts again. The shared stack runs on the session's broker, so the
broker restart is reported as skipped with its reason (it needs `shopstream dev --durable-broker`; see
README "Prove it under load and faults" for what a run on the durable broker found).
"""

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
    assert done.returncode == 0 and verdict["clean"], f"{bad}\n{done.stderr[-2000:]}\n{stack.dev.log_tail()}"
    checked = {r["check"]: r["checked"] for r in verdict["rows"]}
    assert checked["orders: canonical status"] >= 40 and checked["ATP: available per SKU"] == 40
    assert checked["holds: rules fired and decided"] > 0
    assert {"dup", "malformed", "badsig", "reorder", "kill-worker"} <= set(verdict["faults"])
    # The killed worker: which, when, a new process, and how long until its /readyz answered again.
    (hit,) = verdict["disruptions"]
    assert hit["fault"] == "kill-worker" and hit["target"] in ("worker-orders", "worker-inventory")
    assert hit["recovered_after_s"] is not None and hit["new_pid"] != hit["pid"] and 0 < hit["at_s"] < 20, hit
    assert "the oracle found 0 mismatches afterwards" in hit["text"]
    # dev says it restarted it (its own log, not the simulator's word)
    assert f"{hit['target']} was killed by signal 9; started again" in stack.dev.log_path.read_text(errors="replace")
    # Never silent: what it cannot inject or send is named with the reason.
    assert "external broker" in verdict["skipped"]["restart-broker"] and "traffic:erp" in verdict["skipped"]
