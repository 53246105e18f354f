"""The thin I/O shell of `shopstream simulate`: seed the stock, send the plan on time, review, settle, check."""

from __future__ import annotations

import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shopstream.sim import chaos, check
from shopstream.sim.faces import Faces, api_get, api_post, post_step
from shopstream.sim.oracle import Oracle, build_oracle
from shopstream.sim.plan import Config, Plan, make_plan
from shopstream.sim.steps import Step
from shopstream.sim.traffic import iso
from shopstream.sim.traffic.stock import export_csv
from shopstream.sim.verdict import Row, Verdict
from shopstream.sim.world import make_world

# Parallel deliveries; one subject always goes through the same sender, in plan order. Each sender waits for
# its delivery's answer, so the senders keep the plan's schedule only while deliveries/s x answer time stays
# under their number (Little's law): size them for answers of up to ANSWER_BUDGET_S at the plan's rate.
# How late deliveries went out is measured and reported (`send_late_s`): a stack slower than that shows there.
MIN_SENDERS, MAX_SENDERS, ANSWER_BUDGET_S = 6, 256, 1.0
# A source system retries a delivery its receiver did not take (no answer, or a 5xx: the broker restarting);
# Shopify for 48 h, the simulator for this long. Each retry is counted in the stats.
RETRY_FOR_S = 180.0


@dataclass
class Timeline:
    """What happened when, for the report's charts."""

    started: float = 0.0
    sent: list[tuple[float, str, int, str]] = field(default_factory=list)  # (epoch s, source, HTTP status, fault)
    late: list[float] = field(default_factory=list)  # per delivery: s between its planned time and its first post
    queue: list[tuple[float, int]] = field(default_factory=list)  # (epoch s, open review items of the run)
    created: dict[str, float] = field(default_factory=dict)  # order id -> epoch s its create was accepted
    decided: dict[str, dict[str, Any]] = field(default_factory=dict)  # order id -> the item as decided
    retries: int = 0  # deliveries sent again after no answer or a 5xx
    disruptions: list[chaos.Disruption] = field(default_factory=list)
    chaos_errors: list[str] = field(default_factory=list)  # a process fault that could not be injected
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Result:
    """A finished run: the plan, the oracle, the verdict and the timeline."""

    plan: Plan
    oracle: Oracle
    verdict: Verdict
    timeline: Timeline
    observed: check.Observed


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def seed_stock(faces: Faces, cfg: Config, run_id: str, quiet: bool) -> None:
    """The opening stock through `shopstream ingest erp-stock`, then wait until the read API shows it."""
    world = make_world(cfg.seed, run_id, cfg.skus, cfg.customers, cfg.orders)
    as_of = iso(datetime.now(UTC) - timedelta(minutes=1))
    ingest_stock(faces, export_csv(world), as_of)
    _say(quiet, f"simulate: opening stock of {len(world.skus)} SKUs ingested (ERP export, as of {as_of})")
    want = {s.sku: s.on_hand for s in world.skus}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        levels = check.atp_levels(faces, list(want))
        if len(levels) == len(want) and all(doc.get("on_hand") == want[sku] for sku, doc in levels.items()):
            return
        time.sleep(1)
    raise RuntimeError("the opening stock did not show on the read API within 120 s")


def ingest_stock(faces: Faces, export: str, as_of: str) -> None:
    """An ERP stock export (`export_csv`'s CSV) through `shopstream ingest erp-stock`, the ERP's real face."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stock.csv"
        path.write_text(export, encoding="utf-8")
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": faces.bootstrap, "SCHEMA_REGISTRY_URL": faces.registry,
               "SHOPSTREAM_TOPIC_PREFIX": faces.prefix}
        done = subprocess.run([sys.executable, "-m", "shopstream.cli", "ingest", "erp-stock", str(path),
                               "--as-of", as_of], env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"ingest erp-stock failed ({done.returncode}): {done.stderr[-500:]}")


def senders_for(deliveries: int, duration_s: float) -> int:
    """How many senders keep a plan of `deliveries` over `duration_s` on time (see ANSWER_BUDGET_S)."""
    wanted = math.ceil(deliveries / max(duration_s, 1.0) * ANSWER_BUDGET_S)
    return max(MIN_SENDERS, min(MAX_SENDERS, wanted))


def _sender(faces: Faces, inbox: queue.Queue[Step | None], timeline: Timeline, wrong: Row) -> None:
    while (step := inbox.get()) is not None:
        late = time.time() - (timeline.started + step.at)
        with timeline.lock:
            timeline.late.append(max(0.0, late))
        status, body = post_step(faces, step)
        first = time.monotonic()
        while (status == 0 or status >= 500) and step.expect < 500 and time.monotonic() - first < RETRY_FOR_S:
            time.sleep(1.0)
            with timeline.lock:
                timeline.retries += 1
            status, body = post_step(faces, step)
        now = time.time()
        with timeline.lock:
            timeline.sent.append((now, step.source, status, step.fault))
            if step.kind == "orders/create" and not step.fault and status == 200:
                timeline.created.setdefault(step.subject, now)
            if status != step.expect:
                wrong.miss(f"{step.source} {step.kind} {step.subject}{' (' + step.fault + ')' if step.fault else ''}"
                           f": {status} {str(body)[:120]}")


def _reviewer(faces: Faces, plan: Plan, timeline: Timeline, stop: threading.Event) -> None:
    """A person working the review queue: decides each held order of the run as the plan says."""
    ours = {o.order_id: o for o in plan.orders}
    done: set[str] = set()  # work item ids decided
    while not stop.is_set():
        # Filtered walk to the end: the listing looks at 5,000 items per request, and a busy queue (oversold
        # items) can push the holds many pages back.
        items, cursor, pages = [], "", 0
        while pages < 500:
            code, body = api_get(faces, "/v1/work-items?status=open&queue=review&limit=500"
                                        + (f"&cursor={cursor}" if cursor else ""))
            if code != 200:
                break
            items += body.get("items", [])
            cursor, pages = body.get("next_cursor") or "", pages + 1
            if not cursor:
                break
        mine = [i for i in items if i.get("subject_id") in ours]
        with timeline.lock:
            timeline.queue.append((time.time(), len(mine)))
        for item in mine:
            order = ours[item["subject_id"]]
            # Every hold item of the order: an earlier order of the same email arriving late re-decides it
            # (velocity), which adds a second item with the new reason (README "Velocity").
            if item.get("kind") != "review_hold" or not order.decision or item["id"] in done:
                continue
            api_post(faces, f"/v1/work-items/{item['id']}/claim")
            code, _ = api_post(faces, f"/v1/work-items/{item['id']}/decision",
                               {"decision": order.decision, "note": f"simulated reviewer: {order.decision}"})
            if code in (200, 202):
                done.add(item["id"])
                with timeline.lock:
                    before = timeline.decided.get(order.order_id, {}).get("hold_reasons") or []
                    reasons = sorted(set(before) | set(item.get("hold_reasons") or []))
                    timeline.decided[order.order_id] = {**item, "hold_reasons": reasons, "decision": order.decision}
        stop.wait(1.0)


def _inject(faces: Faces, fault: str, target: str, cfg: Config, timeline: Timeline) -> None:
    """One process fault at its share of the traffic (chaos.py); each has its own thread, so a slow recovery
    of one does not push the other past the traffic."""
    delay = timeline.started + cfg.duration_s * chaos.AT_SHARE[fault] - time.time()
    if delay > 0:
        time.sleep(delay)
    try:
        hit = chaos.inject(fault, target, state_dir=Path(faces.state_dir), worker_port=faces.worker_port,
                           bootstrap=faces.bootstrap, started_epoch=timeline.started)
    except (RuntimeError, OSError) as exc:
        with timeline.lock:
            timeline.chaos_errors.append(f"{fault} on {target}: {exc}")
        return
    with timeline.lock:
        timeline.disruptions.append(hit)


def _report_disruptions(verdict: Verdict, timeline: Timeline) -> None:
    """A row per process fault (did it come back) and its report line: when, how long, what the oracle found."""
    found = ("the oracle found 0 mismatches afterwards" if verdict.clean
             else f"the oracle found {sum(r.mismatches for r in verdict.rows)} mismatch(es) afterwards")
    if timeline.chaos_errors:
        verdict.rows.insert(2, Row("process faults injected", len(timeline.disruptions) + len(timeline.chaos_errors),
                                   mismatches=len(timeline.chaos_errors), examples=timeline.chaos_errors[:5]))
    for i, d in enumerate(sorted(timeline.disruptions, key=lambda d: d.at_s)):
        until = d.injected_epoch + (d.recovered_after_s if d.recovered_after_s is not None else chaos.RECOVERY_LIMIT_S)
        during = sum(1 for t, *_ in timeline.sent if d.injected_epoch <= t <= until)
        row = Row(f"fault {d.fault}: {d.target} back", 1, note=d.describe())
        if d.recovered_after_s is None:
            row.mismatches = 1
        verdict.rows.insert(2 + i, row)
        verdict.disruptions.append({**d.to_json(), "deliveries_during": during,
                                    "text": f"{d.describe()}; {during} deliveries answered while it was down; {found}"})


def _progress(done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} deliveries, "
                     f"{time.time() - started:5.0f} s")
    sys.stderr.flush()


def simulate(faces: Faces, cfg: Config, *, settle_s: float = 180.0, quiet: bool = False,
             on_tick: Callable[[], None] | None = None) -> Result:
    """Run one simulated day against the stack behind `faces` and check it against the oracle."""
    run_id = uuid.uuid4().hex[:6]
    seed_stock(faces, cfg, run_id, quiet)
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    plan = make_plan(cfg, t0, run_id, order_base=int(time.time()) * 1_000_000)
    oracle = build_oracle(plan, stripe="stripe" in cfg.capabilities)
    timeline, wrong = Timeline(started=t0.timestamp()), Row("webhooks answered as expected", len(plan.steps))
    inboxes: list[queue.Queue[Step | None]] = [
        queue.Queue() for _ in range(senders_for(len(plan.steps), cfg.duration_s))]
    senders = [threading.Thread(target=_sender, args=(faces, q, timeline, wrong), daemon=True) for q in inboxes]
    stop = threading.Event()
    reviewer = threading.Thread(target=_reviewer, args=(faces, plan, timeline, stop), daemon=True)
    process_faults: list[tuple[str, str]] = []
    skipped: dict[str, str] = {}
    for fault in chaos.PROCESS_FAULTS:
        if fault in cfg.faults:
            reason = chaos.why_not(fault, Path(faces.state_dir))
            if reason is None:
                process_faults.append((fault, chaos.plan_target(fault, cfg.seed)))
            else:
                skipped[fault] = reason
    injectors = [threading.Thread(target=_inject, args=(faces, fault, target, cfg, timeline), daemon=True)
                 for fault, target in process_faults]
    for t in [*senders, reviewer, *injectors]:
        t.start()
    _say(quiet, f"simulate: run {run_id}, {len(plan.orders)} orders, {len(plan.steps)} deliveries over "
                f"{cfg.duration_s:.0f} s (seed {cfg.seed}, faults: {','.join(sorted(cfg.faults)) or 'none'})")
    tty = sys.stderr.isatty() and not quiet
    last_bar = 0.0
    for n, step in enumerate(plan.steps, 1):
        delay = t0.timestamp() + step.at - time.time()
        if delay > 0:
            time.sleep(delay)
        inboxes[zlib.crc32(step.subject.encode()) % len(inboxes)].put(step)
        if tty and time.time() - last_bar > 0.5:
            _progress(n, len(plan.steps), t0.timestamp())
            last_bar = time.time()
        if on_tick is not None:
            on_tick()
    for q in inboxes:
        q.put(None)
    for t in senders:
        t.join()
    for t in injectors:
        t.join(timeout=chaos.RECOVERY_LIMIT_S + cfg.duration_s)
    if tty:
        _progress(len(plan.steps), len(plan.steps), t0.timestamp())
        sys.stderr.write("\n")
    _say(quiet, "simulate: every delivery sent; waiting for the reviewer and the system to settle")
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline and any(
            set(timeline.decided.get(oid, {}).get("hold_reasons") or []) != set(reasons)
            for oid, reasons in oracle.holds.items()):
        time.sleep(1)
    settle_started = time.monotonic()
    agreed = False
    while time.monotonic() < deadline and not (agreed := check.settled(faces, oracle)):
        time.sleep(2)
    stop.set()
    reviewer.join(timeout=10)
    observed = check.observe(faces, plan)
    verdict = check.judge(plan, oracle, observed, timeline.decided, wrong)
    # A stack still behind at the deadline shows its backlog as mismatches below: say so first.
    caught_up = Row("system caught up within --settle", 1,
                    note=f"after {time.monotonic() - settle_started:.0f} s" if agreed
                    else f"NO: still behind after {settle_s:.0f} s; the rows below include backlog")
    if not agreed:
        caught_up.mismatches = 1
    verdict.rows.insert(1, caught_up)
    verdict.faults = _fault_counts(plan)
    for d in timeline.disruptions:
        verdict.faults[d.fault] = verdict.faults.get(d.fault, 0) + 1
    verdict.skipped.update(skipped)
    missing = {"stripe", "carrier", "returns", "erp"} - cfg.capabilities
    for source in sorted(missing):
        verdict.skipped[f"traffic:{source}"] = f"SHOPSTREAM_{source.upper()}_SECRET not set: its webhooks not sent"
    verdict.stats = check.stats(plan, timeline, observed)
    verdict.stats["delivery_retries"] = timeline.retries
    verdict.stats["senders"] = len(inboxes)
    _report_disruptions(verdict, timeline)
    return Result(plan=plan, oracle=oracle, verdict=verdict, timeline=timeline, observed=observed)


def _fault_counts(plan: Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in plan.steps:
        if step.fault:
            counts[step.fault] = counts.get(step.fault, 0) + 1
    reordered = sum(1 for o in plan.orders if "reorder" in o.faults)
    if reordered:
        counts["reorder"] = reordered
    return counts
