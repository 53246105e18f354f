"""The demo's report as one self-contained HTML page: inline CSS and SVG charts, nothing fetched from anywhere."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence

from shopstream.sim.driver import Result
from shopstream.sim.report import STATUS_WORDS, Sections

COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")
Series = dict[str, list[tuple[float, float]]]


def line_chart(chart_id: str, title: str, series: Series, y_label: str, width: int = 560, height: int = 220) -> str:
    """An SVG line chart (x: seconds since the start) with axes, a legend, a polyline and dots per series."""
    pad_l, pad_r, pad_t, pad_b = 52, 12, 28, 34
    points = [p for values in series.values() for p in values]
    x_max = max((x for x, _ in points), default=1.0) or 1.0
    y_lo = min(0.0, *(y for _, y in points)) if points else 0.0
    y_hi = max((y for _, y in points), default=1.0)
    y_hi = y_hi if y_hi > y_lo else y_lo + 1.0

    def sx(x: float) -> float:
        return pad_l + (width - pad_l - pad_r) * x / x_max

    def sy(y: float) -> float:
        return height - pad_b - (height - pad_t - pad_b) * (y - y_lo) / (y_hi - y_lo)

    parts = [f'<svg id="{chart_id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{pad_l}" y="18" class="title">{html.escape(title)}</text>',
             f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" class="axis"/>',
             f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" class="axis"/>']
    for frac in (0.0, 0.5, 1.0):
        y = y_lo + (y_hi - y_lo) * frac
        parts.append(f'<text x="{pad_l - 6}" y="{sy(y) + 4:.1f}" class="tick" text-anchor="end">{y:.0f}</text>')
        x = x_max * frac
        parts.append(f'<text x="{sx(x):.1f}" y="{height - pad_b + 16}" class="tick" text-anchor="middle">'
                     f'{x:.0f} s</text>')
    parts.append(f'<text x="12" y="{pad_t - 8}" class="tick">{html.escape(y_label)}</text>')
    for i, (name, values) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        parts.append(f'<polyline class="series" data-name="{html.escape(name)}" fill="none" stroke="{color}" '
                     f'stroke-width="2" points="{coords}"/>')
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2" fill="{color}"/>' for x, y in values[-60:]]
        parts.append(f'<text x="{width - pad_r - 150}" y="{pad_t + 14 * i + 4}" class="legend" fill="{color}">'
                     f'{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body or '<tr><td colspan=9>none</td></tr>'}</table>"


def charts(result: Result) -> dict[str, str]:
    """The four charts: webhooks/s, latency percentiles, ATP of the best sellers, the open work queue."""
    tl, start = result.timeline, result.timeline.started
    per_second = Counter(int(at - start) for at, *_ in tl.sent)
    rate = [(float(s), float(per_second.get(s, 0))) for s in range(0, max(per_second, default=0) + 1)]
    lat = result.verdict.stats.get("latency_over_time", [])
    latency: Series = {q: [(float(b["t"]), float(b[q])) for b in lat] for q in ("p50", "p95", "p99")}
    atp: Series = {sku: [(max(0.0, t - start), float(v)) for t, v in values]
                   for sku, values in result.observed.atp_series.items()}
    work: Series = {"holds + flags open": [(max(0.0, t - start), float(n)) for t, n in tl.queue]}
    return {
        "chart-events": line_chart("chart-events", "Webhooks per second", {"webhooks/s": rate}, "per s"),
        "chart-latency": line_chart("chart-latency", "Webhook accepted → order state (per 10 s)", latency, "ms"),
        "chart-atp": line_chart("chart-atp", "Available to promise, best sellers", atp, "units"),
        "chart-queue": line_chart("chart-queue", "Review queue: items waiting for a person", work, "items"),
    }


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#111;max-width:1200px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:left}
.chart{border:1px solid #e5e7eb;border-radius:6px;background:#fafafa}.title{font-size:13px;font-weight:600}
.tick,.legend{font-size:11px}.axis{stroke:#999}pre{background:#f4f4f5;padding:10px;font-size:12px;overflow:auto}
.clean{color:#15803d}.dirty{color:#b91c1c}code{background:#f4f4f5;padding:1px 4px}"""


def render_html(result: Result, sec: Sections) -> str:
    """The whole report page."""
    stats = result.verdict.stats
    lat = stats.get("latency_ms", {})
    verdict_cls = "clean" if result.verdict.clean else "dirty"
    chart_svgs = charts(result)
    return "".join([
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>shopstream demo report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>shopstream demo: a simulated shop day</h1>",
        f"<p>{stats.get('orders')} orders, {stats.get('deliveries')} webhooks ({stats.get('deliveries_per_s')}/s of "
        f"{stats.get('planned_deliveries_per_s')}/s planned); "
        f"an accepted order shows in the order state after p50 {lat.get('p50')} ms, p95 {lat.get('p95')} ms, "
        f"p99 {lat.get('p99')} ms. Verdict: <b class={verdict_cls}>"
        f"{'clean' if result.verdict.clean else 'MISMATCHES'}</b>.</p>",
        '<div class="grid">', *chart_svgs.values(), "</div>",
        "<h2>Orders by status</h2>",
        _table(("status", "orders", "meaning"), [(s, n, STATUS_WORDS.get(s, "")) for s, n in sec.orders_by_status]),
        "<h2>Held for review: why, and what the reviewer decided</h2>",
        _table(("order", "why", "decision"), sec.holds),
        "<h2>Stock of the best sellers</h2>",
        _table(("SKU", "article", "on hand", "reserved", "available"), sec.atp),
        "<h2>Commands sent to other systems</h2>", _table(("command", "count"), sec.commands),
        "<h2>Alerts</h2>", _table(("kind", "count"), sec.alerts),
        "<h2>Dead letters</h2>", _table(("topic", "records", "look / resend with"), sec.dlq),
        "<h2>Simulator's verdict</h2>", f"<pre>{html.escape(result.verdict.render())}</pre>",
        "</body></html>"])
