"""`shopstream bench orders`: open-loop order traffic through the whole stack, webhook → order state visible.

Against the stack the environment names (as `shopstream simulate`: `shopstream dev` in another terminal,
its ports, secrets, prefix and state dir), or its own `shopstream dev` with `--spawn`. Per run, for
`--duration` seconds, order i is posted at t0 + i/`--rate` (orders_load.py) and `--stripe-share` of the
orders are followed by a Stripe capture. Reported per run (orders_watch.py, orders_baseline.py):
- webhook latency from the scheduled time (coordinated omission accounted for) and the round trip;
- accepted (the 200) → visible on `orders.state` (the orders worker's output) and in the Redis order
  view (what the read API serves), for the orders and, separately, for the captures (state says paid);
  p50/p95/p99/max; scheduled → view, the figure a shopper would feel;
- offered rate and achieved rate (orders visible in the view per second of the run);
- consumer lag per group: at the start and end of the load, its peak, and its slope over the load;
- peak RSS and CPU seconds per stack process (from /proc, the pids `shopstream dev` records);
- baselines of the same invocation: the webhook round trip alone, and a plain confluent-kafka
  consume → produce loop over the records the run wrote to `shop.orders`; ratios against both.
`--find-max` runs short steps, doubling the rate, then bisecting, and reports the highest rate whose
lag did not grow (`sustained`). Figures are printed (or `--json`), never asserted.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shopstream.bench.common import BenchError, spawn_dev, work_dir
from shopstream.bench.orders_baseline import end_offsets, kafka_loop, summary_ms, webhook_round_trips
from shopstream.bench.orders_load import Delivery, captured, offer, order_ids, stock_skus
from shopstream.bench.orders_watch import LagSample, Sampler, StateWatch, ViewWatch, stack_pids
from shopstream.config import Settings, load_settings
from shopstream.sim.faces import Faces

BENCH_SHOPIFY_SECRET = "bench-orders-shopify"
BENCH_STRIPE_SECRET = "whsec_bench_orders"
BASELINE_WEBHOOKS = 50
# A step sustains its rate when no group's lag rises faster than this share of the offered orders/s.
LAG_SLOPE_SHARE = 0.1


@dataclass
class Target:
    """The stack measured: its faces (URLs, secrets) and settings (broker, registry, prefix, Redis, state dir)."""

    faces: Faces
    settings: Settings


def running_target(settings: Settings) -> Target:
    """The stack the environment names, exactly as `shopstream simulate` finds it."""
    from shopstream.sim.cli import faces_from_settings

    faces: Faces = faces_from_settings(settings, token="")
    return Target(faces, settings.model_copy(update={"kafka_bootstrap_servers": faces.bootstrap,
                                                     "schema_registry_url": faces.registry}))


@contextmanager
def spawned_target() -> Iterator[Target]:
    """A `shopstream dev` of its own (embedded broker and registry unless the environment names real ones)."""
    with work_dir("shopstream-bench-orders-") as tmp:
        token = uuid.uuid4().hex[:8]
        dev = spawn_dev(tmp, SHOPSTREAM_TOPIC_PREFIX=f"bench{token}.", SHOPSTREAM_REDIS_PREFIX=f"bench:{token}:",
                        SHOPSTREAM_SHOPIFY_SECRET=BENCH_SHOPIFY_SECRET, SHOPSTREAM_STRIPE_SECRET=BENCH_STRIPE_SECRET,
                        SHOPSTREAM_LOG_LEVEL="WARNING")
        try:
            dev.wait_ready()
            env = dev.client_env()
            settings = load_settings(kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
                                     schema_registry_url=env["SCHEMA_REGISTRY_URL"], topic_prefix=f"bench{token}.",
                                     redis_key_prefix=f"bench:{token}:", state_dir=str(tmp))
            faces = Faces(connectors=dev.connectors_url, api=dev.api_url, token="",
                          secrets={"shopify": BENCH_SHOPIFY_SECRET, "stripe": BENCH_STRIPE_SECRET},
                          bootstrap=settings.kafka_bootstrap_servers, registry=settings.schema_registry_url,
                          prefix=settings.topic_prefix, state_dir=str(tmp))
            yield Target(faces, settings)
        finally:
            dev.stop()


def _ms(pairs: list[tuple[float, float]]) -> list[float]:
    # A sighting can precede the client's reading of the 200 (the worker is faster than the answer's way
    # back); that is a latency of zero, not a negative one.
    return [max(0.0, (b - a) * 1000) for a, b in pairs]


def _slope(samples: list[LagSample], group: str) -> float:
    """Least-squares slope (records/s) of one group's lag over the samples; NaN with fewer than 2 (unknown)."""
    points = [(s.at, s.lag.get(group, 0)) for s in samples]
    if len(points) < 2:
        return math.nan
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var if var else 0.0


def _lag_report(samples: list[LagSample], load_end: float) -> dict[str, dict[str, float]]:
    if not samples:  # every count failed (the errors are reported beside)
        return {}
    during = [s for s in samples if s.at <= load_end] or samples[:1]
    groups = sorted({g for s in samples for g in s.lag})
    return {g: {"start": during[0].lag.get(g, 0), "end_of_load": during[-1].lag.get(g, 0),
                "after_settle": samples[-1].lag.get(g, 0), "peak": max(s.lag.get(g, 0) for s in samples),
                "slope_per_s": round(_slope(during, g), 2)} for g in groups}


def one_run(target: Target, rate: float, duration: float, stripe_share: float, connections: int,
            settle_s: float) -> dict[str, Any]:
    """One open-loop run at `rate` for `duration` s; the report as a JSON-ready dict."""
    count = max(1, round(rate * duration))
    ids = order_ids(count)
    capture_ids = {i for n, i in enumerate(ids) if captured(n, stripe_share)}
    state = StateWatch(target.settings, set(ids), capture_ids)
    view = ViewWatch(target.settings)
    sampler = Sampler(target.settings, stack_pids(target.settings.state_dir))
    state.start()
    view.start()
    sampler.start()
    deliveries, t0, offered_until = offer(target.faces, ids, rate, stripe_share, connections,
                                          lambda order_id, kind: view.accepted.put((order_id, kind)))
    load_end = max((d.answered for d in deliveries), default=t0)
    _settle(state, view, deliveries, settle_s)
    state.stop()
    view.stop()
    cpu = sampler.stop()
    report = _report(deliveries, state, view, t0, offered_until, rate, duration)
    report["lag"] = _lag_report(sampler.samples, load_end)
    report["lag_errors"] = sampler.errors[:3]
    report["processes"] = {name: {"cpu_s": round(cpu[name], 2), "peak_rss_mb": round(sampler.peak_rss_mb[name], 1)}
                           for name in sorted(cpu)}
    slopes = [g["slope_per_s"] for g in report["lag"].values()]
    report["lag_samples"] = sum(1 for x in sampler.samples if x.at <= load_end)
    # Not sampled (too short a run for the sampler, or every count failed): not shown to keep up either.
    report["lag_grows"] = not slopes or any(math.isnan(x) or x > LAG_SLOPE_SHARE * rate for x in slopes)
    report["sustained"] = (not report["lag_grows"] and report["missing"] == 0 and report["rejected"] == 0
                           and report["offered_rate"] >= 0.95 * rate)
    return report


def _settle(state: StateWatch, view: ViewWatch, deliveries: list[Delivery], settle_s: float) -> None:
    """Wait until every accepted order (and capture) is visible on orders.state and in the view, or `settle_s`."""
    creates = {d.order_id for d in deliveries if d.kind == "create" and d.accepted}
    paid = {d.order_id for d in deliveries if d.kind == "capture" and d.accepted}
    deadline = time.perf_counter() + settle_s
    while time.perf_counter() < deadline:
        if (creates <= state.sightings.seen.keys() and paid <= state.sightings.paid.keys()
                and creates <= view.sightings.seen.keys() and paid <= view.sightings.paid.keys()):
            return
        if state.error or view.error:
            raise BenchError(f"watching the results failed: {state.error or view.error}")
        time.sleep(0.05)


def _report(deliveries: list[Delivery], state: StateWatch, view: ViewWatch, t0: float, offered_until: float,
            rate: float, duration: float) -> dict[str, Any]:
    creates = [d for d in deliveries if d.kind == "create"]
    captures = [d for d in deliveries if d.kind == "capture"]
    ok_creates = [d for d in creates if d.accepted]
    ok_captures = [d for d in captures if d.accepted]
    seen_s, seen_v = state.sightings.seen, view.sightings.seen
    paid_s, paid_v = state.sightings.paid, view.sightings.paid
    visible = [seen_v[d.order_id] for d in ok_creates if d.order_id in seen_v]
    missing = (sum(d.order_id not in seen_s or d.order_id not in seen_v for d in ok_creates)
               + sum(d.order_id not in paid_s or d.order_id not in paid_v for d in ok_captures))
    offered_span = offered_until - t0
    span = (max(visible) - min(visible)) if len(visible) > 1 else math.nan
    rejected = [d for d in deliveries if not d.accepted]
    return {
        "rate": rate, "duration_s": duration, "orders": len(creates), "captures": len(captures),
        "accepted": len(ok_creates) + len(ok_captures), "rejected": len(rejected),
        "rejections": sorted({f"{d.status} {d.error}".strip() for d in rejected})[:5],
        "missing": missing,
        # orders handed to the connection pool per second of the schedule: the generator's own rate
        "offered_rate": round(len(creates) / offered_span, 1) if offered_span > 0 else math.nan,
        # orders made visible in the view per second, first to last: the offered rate when the stack keeps
        # up, its own pace when a backlog builds (counted from t0, a short run's tail latency would weigh in)
        "achieved_rate": round((len(visible) - 1) / span, 1) if span and span > 0 else math.nan,
        "webhook_from_schedule_ms": summary_ms([(d.answered - d.due) * 1000 for d in ok_creates]),
        "webhook_round_trip_ms": summary_ms([(d.answered - d.sent) * 1000 for d in ok_creates]),
        "accepted_to_state_ms": summary_ms(_ms([(d.answered, seen_s[d.order_id]) for d in ok_creates
                                               if d.order_id in seen_s])),
        "accepted_to_view_ms": summary_ms(_ms([(d.answered, seen_v[d.order_id]) for d in ok_creates
                                              if d.order_id in seen_v])),
        "scheduled_to_view_ms": summary_ms(_ms([(d.due, seen_v[d.order_id]) for d in ok_creates
                                               if d.order_id in seen_v])),
        "capture_to_paid_state_ms": summary_ms(_ms([(d.answered, paid_s[d.order_id]) for d in ok_captures
                                                   if d.order_id in paid_s])),
        "capture_to_paid_view_ms": summary_ms(_ms([(d.answered, paid_v[d.order_id]) for d in ok_captures
                                                  if d.order_id in paid_v])),
    }


LATENCY_ROWS = [("webhook, from the scheduled time", "webhook_from_schedule_ms"),
                ("webhook round trip (under load)", "webhook_round_trip_ms"),
                ("accepted → orders.state", "accepted_to_state_ms"),
                ("accepted → Redis order view", "accepted_to_view_ms"),
                ("scheduled → Redis order view", "scheduled_to_view_ms"),
                ("capture accepted → paid on orders.state", "capture_to_paid_state_ms"),
                ("capture accepted → paid in the view", "capture_to_paid_view_ms")]


def _fmt(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.1f}"


def render(report: dict[str, Any]) -> str:
    """The human table of one invocation's report."""
    out = []
    for n, run in enumerate(report["runs"], 1):
        out.append(f"run {n}: {run['orders']} orders + {run['captures']} captures at {run['rate']:g}/s for "
                   f"{run['duration_s']:g} s: offered {_fmt(run['offered_rate'])}/s, achieved "
                   f"{_fmt(run['achieved_rate'])}/s, {run['missing']} not visible, {run['rejected']} rejected "
                   f"{' '.join(run['rejections'])}; lag {'GROWS' if run['lag_grows'] else 'does not grow'}")
    med = report["median"]
    out.append(f"\nmedian of {len(report['runs'])} run(s) (ms)" if len(report["runs"]) > 1 else "\n(ms)")
    out.append(f"{'':42} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for label, key in LATENCY_ROWS:
        row = med[key]
        out.append(f"{label:42} " + " ".join(f"{_fmt(row[q]):>8}" for q in ("p50", "p95", "p99", "max")))
    base = report["baselines"]
    out.append(f"{'baseline: webhook round trip alone':42} " + " ".join(
        f"{_fmt(base['webhook_round_trip_ms'][q]):>8}" for q in ("p50", "p95", "p99", "max")))
    out.append(f"\nbaseline: plain confluent-kafka consume → produce over the run's {base['kafka_loop_records']} "
               f"shop.orders records: {_fmt(base['kafka_loop_per_s'])} records/s")
    ratios = report["ratios"]
    out.append(f"ratios: accepted → view p50 = {_fmt(ratios['view_p50_over_webhook_p50'])}x the webhook round "
               f"trip p50; achieved rate = {_fmt(ratios['achieved_over_kafka_loop'] * 100)}% of the plain loop")
    last = report["runs"][-1]
    out.append("\nconsumer lag (last run; records): group, start, end of load, peak, after settle, slope/s")
    for group, lag in last["lag"].items():
        out.append(f"  {group:40} {lag['start']:>7} {lag['end_of_load']:>7} {lag['peak']:>7} "
                   f"{lag['after_settle']:>7} {lag['slope_per_s']:>8}")
    out.append("processes (last run): CPU seconds, peak RSS MB")
    for name, proc in last["processes"].items():
        out.append(f"  {name:40} {proc['cpu_s']:>7} {proc['peak_rss_mb']:>8}")
    return "\n".join(out)


def _median_rows(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _label, key in LATENCY_ROWS:
        out[key] = {q: statistics.median(r[key][q] for r in runs) for q in ("p50", "p95", "p99", "max")}
    for key in ("offered_rate", "achieved_rate"):
        out[key] = statistics.median(r[key] for r in runs)
    return out


def _baselines_and_ratios(target: Target, hooks: list[float], start: dict[int, int],
                          median: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    records, per_s = kafka_loop(target.settings, "shop.orders", start, end_offsets(target.settings, "shop.orders"))
    hook = summary_ms(hooks)
    baselines = {"webhook_round_trip_ms": hook, "kafka_loop_records": records, "kafka_loop_per_s": round(per_s, 1)}
    ratios = {"view_p50_over_webhook_p50": median["accepted_to_view_ms"]["p50"] / hook["p50"],
              "achieved_over_kafka_loop": median["achieved_rate"] / per_s if per_s else math.nan}
    return baselines, ratios


def _find_max(target: Target, start_rate: float, step_s: float, stripe_share: float, connections: int,
              settle_s: float, max_rate: float, bisections: int) -> tuple[list[dict[str, Any]], float]:
    """Steps: double from `start_rate` until a step does not sustain, then bisect; (steps, best rate)."""
    steps: list[dict[str, Any]] = []

    def step(rate: float) -> bool:
        report = one_run(target, rate, step_s, stripe_share, connections, settle_s)
        steps.append(report)
        print(_step_line(report), file=sys.stderr, flush=True)
        if report["missing"]:  # not drained within settle_s: later steps would measure this backlog
            raise _Undrained()
        return bool(report["sustained"])

    good, bad = 0.0, math.inf
    rate = start_rate
    try:
        while rate <= max_rate:
            if not step(rate):
                bad = rate
                break
            good, rate = rate, rate * 2
        for _ in range(bisections if bad < math.inf else 0):
            mid = round((good + bad) / 2) if good else round(bad / 2)
            if mid in (good, bad) or mid <= 0:
                break
            good, bad = (mid, bad) if step(mid) else (good, mid)
    except _Undrained:
        pass
    return steps, good


class _Undrained(Exception):
    pass


def _step_line(r: dict[str, Any]) -> str:
    return (f"step {r['rate']:g}/s: offered {_fmt(r['offered_rate'])}/s, achieved {_fmt(r['achieved_rate'])}/s, "
            f"accepted → view p50 {_fmt(r['accepted_to_view_ms']['p50'])} ms p99 "
            f"{_fmt(r['accepted_to_view_ms']['p99'])} ms, max lag slope "
            f"{_max_slope(r):g}/s over {r['lag_samples']} samples, missing {r['missing']}: "
            f"{'sustained' if r['sustained'] else 'NOT sustained'}")


def _max_slope(r: dict[str, Any]) -> float:
    slopes = [g["slope_per_s"] for g in r["lag"].values()]
    return math.nan if not slopes or any(math.isnan(x) for x in slopes) else max(slopes)


def render_steps(steps: list[dict[str, Any]], best: float) -> str:
    """The find-max table."""
    out = [f"{'rate/s':>8} {'offered':>8} {'achieved':>9} {'view p50':>9} {'view p99':>9} {'lag slope':>10} "
           f"{'missing':>8}  verdict"]
    for r in steps:
        slope = _max_slope(r)
        out.append(f"{r['rate']:>8g} {_fmt(r['offered_rate']):>8} {_fmt(r['achieved_rate']):>9} "
                   f"{_fmt(r['accepted_to_view_ms']['p50']):>9} {_fmt(r['accepted_to_view_ms']['p99']):>9} "
                   f"{slope:>10g} {r['missing']:>8}  {'sustained' if r['sustained'] else 'lag grows / lost'}")
    out.append(f"highest rate sustained: {best:g} orders/s" if best else "no step sustained its rate")
    return "\n".join(out)


def run_orders_bench(settings: Settings, *, rate: float, duration: float, runs: int, stripe_share: float,
                     connections: int, settle_s: float, find_max: bool, max_rate: float, spawn: bool,
                     as_json: bool) -> int:
    """Run `bench orders` and print its report; returns the exit code."""
    with (spawned_target() if spawn else _running(settings)) as target:
        if stripe_share > 0 and "stripe" not in target.faces.secrets:
            print("shopstream bench orders: --stripe-share needs the stack's Stripe secret "
                  "(SHOPSTREAM_STRIPE_SECRET, for the stack and this command); or --stripe-share 0", file=sys.stderr)
            return 2
        if not _answers(target):
            raise BenchError(f"no stack answers at {target.faces.connectors}: start `shopstream dev` (with this "
                             "environment) or pass --spawn")
        stock_skus(target.faces, target.settings)
        start = end_offsets(target.settings, "shop.orders")
        hooks = webhook_round_trips(target.faces, BASELINE_WEBHOOKS)
        report: dict[str, Any] = {"command": "bench orders", "spawned": spawn, "stripe_share": stripe_share,
                                  "connections": connections}
        if find_max:
            steps, best = _find_max(target, rate, duration, stripe_share, connections, settle_s, max_rate, 3)
            # the run table, the ratios and the lag/process detail are the best sustained step's
            best_steps = [r for r in steps if r["rate"] == best and r["sustained"]]
            report.update(steps=steps, max_sustained_rate=best, runs=best_steps[-1:] or steps[-1:])
        else:
            results = []
            for _ in range(runs):
                results.append(one_run(target, rate, duration, stripe_share, connections, settle_s))
                if not as_json:
                    print(_step_line(results[-1]), flush=True)
            report["runs"] = results
        report["median"] = _median_rows(report["runs"])
        report["baselines"], report["ratios"] = _baselines_and_ratios(target, hooks, start, report["median"])
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render(report))
        if find_max:
            print("\n" + render_steps(report["steps"], report["max_sustained_rate"]))
    missing = sum(r["missing"] for r in report["runs"])
    if missing and not find_max:
        print(f"shopstream bench orders: {missing} accepted orders/captures never became visible within "
              f"{settle_s:g} s", file=sys.stderr)
        return 1
    return 0


@contextmanager
def _running(settings: Settings) -> Iterator[Target]:
    yield running_target(settings)


def _answers(target: Target) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{target.faces.connectors}/healthz", timeout=5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False
