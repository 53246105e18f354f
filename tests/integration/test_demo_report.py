"""The demo's HTML report: self-contained, and its four charts render in headless Chromium with data in them.

No broker needed: the report is rendered from a synthetic finished run (the plan's own expectations as
what the stack showed). Chromium comes from Debian's `chromium` package (.ci/run installs it when missing);
without it, outside CI, only the parsed HTML is checked.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

from scripts.demo_screenshot import chromium, screenshot
from shopstream.sim.check import Observed, judge, stats
from shopstream.sim.driver import Result, Timeline
from shopstream.sim.html import render_html
from shopstream.sim.oracle import build_oracle
from shopstream.sim.plan import Config, make_plan, parse_faults
from shopstream.sim.report import render_text, sections
from shopstream.sim.verdict import Row

CHARTS = ("chart-events", "chart-latency", "chart-atp", "chart-queue")


def _finished_run() -> Result:
    t0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    start = t0.timestamp()
    plan = make_plan(Config(seed=7, duration_s=40, faults=parse_faults("all")), t0, "rep001", 10**15)
    oracle = build_oracle(plan)
    seen = Observed(orders={oid: {**want, "hold_reasons": []} for oid, want in oracle.orders.items()},
                    atp={sku: {"sku": sku, "on_hand": 50, "reserved": 50 - v, "available": v}
                         for sku, v in oracle.atp.items()},
                    commands={kind: Counter(dict.fromkeys(ids, 1)) for kind, ids in oracle.once.items()},
                    parked=Counter(dict.fromkeys(oracle.parked, 1)),
                    other_dlq=Counter({"shop.orders.dlq": 0}))
    seen.first_state = {o.order_id: start + i / 2 + 0.03 for i, o in enumerate(plan.orders)}
    seen.atp_series = {s.sku: [(start + t, 40.0 - t / 4) for t in range(0, 40, 3)] for s in plan.world.skus[:3]}
    tl = Timeline(started=start)
    tl.sent = [(start + s.at, s.source, s.expect, s.fault) for s in plan.steps]
    tl.created = {o.order_id: start + i / 2 for i, o in enumerate(plan.orders)}
    tl.queue = [(start + t, t % 7) for t in range(40)]
    tl.decided = {oid: {"hold_reasons": list(r), "decision": oracle.decisions[oid]} for oid, r in oracle.holds.items()}
    verdict = judge(plan, oracle, seen, tl.decided, Row("webhooks answered as expected", len(plan.steps)))
    verdict.stats = stats(plan, tl, seen)
    return Result(plan=plan, oracle=oracle, verdict=verdict, timeline=tl, observed=seen)


class _Charts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.svg: str | None = None
        self.points: dict[str, list[int]] = {}
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg" and a.get("class") == "chart":
            self.svg = a.get("id") or "?"
            self.points[self.svg] = []
        elif tag == "polyline" and self.svg:
            self.points[self.svg].append(len((a.get("points") or "").split()))
        if tag in ("script", "link", "img") and (a.get("src") or a.get("href")):
            self.external.append(f"{tag} {a}")


def _check_charts(page: str) -> None:
    parser = _Charts()
    parser.feed(page)
    assert not parser.external, f"the report must be self-contained: {parser.external}"
    assert sorted(parser.points) == sorted(CHARTS)
    for chart, series in parser.points.items():
        assert series and all(n >= 2 for n in series), f"{chart}: empty series {series}"


def test_report_renders_four_charts_with_data_in_headless_chromium(tmp_path: Path) -> None:
    result = _finished_run()
    assert result.verdict.clean, result.verdict.render()
    sec = sections(result, "KAFKA_BOOTSTRAP_SERVERS=… SCHEMA_REGISTRY_URL=…")
    text = render_text(result, sec)
    assert "Orders by status" in text and "shopstream dlq redrive connectors.dlq --dry-run" in text
    page = render_html(result, sec)
    _check_charts(page)
    exe = chromium()
    if exe is None:
        assert not os.environ.get("CI"), "CI needs Debian's chromium (.ci/run installs it)"
        return
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    dom = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'p'}",
                          "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120, check=True)
    _check_charts(dom.stdout)  # what the browser built from the page, not only the bytes we wrote
    png = tmp_path / "report.png"
    screenshot(report, png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000, "an empty page compresses to a few KB"


def test_report_without_dead_letters_or_a_queue_still_renders() -> None:
    result = _finished_run()
    result.observed.parked.clear()
    result.timeline.queue = []
    page = render_html(result, sections(result, ""))
    assert page.count('class="chart"') == 4
