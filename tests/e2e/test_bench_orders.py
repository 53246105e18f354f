"""`shopstream bench orders` against the shared e2e `shopstream dev`: a short low-rate run gives a sane report.

Sanity only, never a timing assertion: every accepted order and capture became visible, percentiles are
ordered, the offered rate is the rate asked for (the schedule does not depend on the stack at 5/s), and
the lag, process and baseline fields are filled.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.e2e.conftest import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

QUANTILES = ("p50", "p95", "p99", "max")


def test_a_short_open_loop_run_reports_every_order_visible(stack: RunningStack) -> None:
    done = stack.cli("bench", "orders", "--rate", "5", "--duration", "4", "--runs", "1", "--stripe-share", "0.5",
                     "--json")
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}\n{stack.log_tail()}"
    report = json.loads(done.stdout)
    (run,) = report["runs"]
    assert run["orders"] == 20 and run["captures"] == 10
    assert run["accepted"] == 30 and run["rejected"] == 0 and run["missing"] == 0, run
    # every latency row has all its orders' figures, ordered
    for key in ("webhook_from_schedule_ms", "webhook_round_trip_ms", "accepted_to_state_ms", "accepted_to_view_ms",
                "scheduled_to_view_ms", "capture_to_paid_state_ms", "capture_to_paid_view_ms"):
        row = [run[key][q] for q in QUANTILES]
        assert all(not math.isnan(v) and v >= 0 for v in row) and row == sorted(row), (key, row)
    # The schedule never runs ahead (order 19 is due 3.8 s after order 0: at most 20/3.8 per second) and
    # does not wait for the stack's answers (only a bench process starved for seconds would halve it).
    assert 2.5 <= run["offered_rate"] <= 20 / 3.8 + 0.05, run["offered_rate"]
    assert run["achieved_rate"] > 0, run["achieved_rate"]  # NaN fails too
    # the orders worker's and the views sink's groups were sampled, with every lag field
    groups = run["lag"]
    assert {"orders", "views", "inventory"} <= groups.keys(), groups
    for lag in groups.values():
        assert {"start", "end_of_load", "peak", "after_settle", "slope_per_s"} <= lag.keys()
        assert lag["peak"] >= max(lag["start"], lag["end_of_load"], lag["after_settle"])
    assert isinstance(run["lag_grows"], bool) and run["lag_samples"] >= 1
    # dev's processes, read from its pid file: the workers used CPU and memory
    assert run["processes"]["worker-orders"]["cpu_s"] > 0 and run["processes"]["worker-orders"]["peak_rss_mb"] > 0
    # baselines of the same invocation and the ratios against them
    base = report["baselines"]
    assert base["kafka_loop_records"] >= 20 and base["kafka_loop_per_s"] > 0
    assert base["webhook_round_trip_ms"]["p50"] > 0
    assert report["ratios"]["view_p50_over_webhook_p50"] > 0 and report["ratios"]["achieved_over_kafka_loop"] > 0
