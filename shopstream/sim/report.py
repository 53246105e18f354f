"""The demo's report for a shop owner: what happened to the orders, the stock, the holds, the dead letters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from shopstream.sim.driver import Result

STATUS_WORDS = {
    "delivered": "delivered to the customer", "ready_to_fulfill": "paid, waiting to be packed",
    "pending_payment": "waiting for payment", "cancelled": "cancelled", "on_hold": "on hold",
    "return_requested": "being returned", "shipped": "on the way", "refunded": "refunded",
}
REASON_WORDS = {
    "review:high-value": "order above 150 EUR", "review:address-mismatch": "ships elsewhere than it bills",
    "review:email-velocity": "4th+ order of one email within an hour",
}


@dataclass
class Sections:
    """The report's content, shared by the text and the HTML page."""

    orders_by_status: list[tuple[str, int]]
    holds: list[tuple[str, str, str]]  # (order id, why, decision)
    atp: list[tuple[str, str, int, int, int]]  # (sku, title, on_hand, reserved, available)
    commands: list[tuple[str, int]]
    alerts: list[tuple[str, int]]
    dlq: list[tuple[str, int, str]]  # (topic, records, the command to look at / redrive them)


def sections(result: Result, cli_env: str) -> Sections:
    """Gather what the report shows from a finished run; `cli_env` prefixes the operator commands."""
    seen, plan = result.observed, result.plan
    by_status = Counter((doc or {}).get("status", "missing") for doc in seen.orders.values())
    holds = [(oid, ", ".join(REASON_WORDS.get(r, r) for r in reasons),
              (result.timeline.decided.get(oid) or {}).get("decision", "not decided"))
             for oid, reasons in result.oracle.holds.items()]
    titles = {s.sku: s.title for s in plan.world.skus}
    atp = [(s.sku, titles[s.sku], int(doc.get("on_hand", 0)), int(doc.get("reserved", 0)),
            int(doc.get("available", 0))) for s in plan.world.skus[:8] if (doc := seen.atp.get(s.sku))]
    parked = sum(seen.parked.values())
    dlq = [("connectors.dlq", parked, f"{cli_env} shopstream dlq redrive connectors.dlq --dry-run")] if parked else []
    dlq += [(name, n, f"{cli_env} shopstream dlq replay {name}") for name, n in seen.other_dlq.items() if n]
    return Sections(
        orders_by_status=by_status.most_common(), holds=holds, atp=atp,
        commands=sorted(((k, sum(v.values())) for k, v in seen.commands.items()), key=lambda kv: -kv[1]),
        alerts=Counter(kind for kind, _, _ in seen.alerts).most_common(), dlq=dlq)


def render_text(result: Result, sec: Sections) -> str:
    """The plain report printed at the end of `shopstream demo`."""
    stats: dict[str, Any] = result.verdict.stats
    lat = stats.get("latency_ms", {})
    out = [f"== What happened: {stats.get('orders')} orders, {stats.get('deliveries')} webhooks "
           f"({stats.get('deliveries_per_s')}/s of {stats.get('planned_deliveries_per_s')}/s planned), order "
           f"visible after p50 {lat.get('p50')} ms / p95 {lat.get('p95')} ms", "", "Orders by status:"]
    out += [f"  {n:>5}  {status:<17} {STATUS_WORDS.get(status, '')}" for status, n in sec.orders_by_status]
    out += ["", f"Held for review ({len(sec.holds)}), why, and what the reviewer decided:"]
    out += [f"  order {oid}: {why} -> {decision}" for oid, why, decision in sec.holds[:12]]
    if len(sec.holds) > 12:
        out.append(f"  … and {len(sec.holds) - 12} more")
    out += ["", "Stock of the best sellers (available to promise = on hand - reserved; negative = oversold):"]
    out += [f"  {sku:<20} {title:<14} on hand {oh:>4}  reserved {rs:>4}  available {av:>4}"
            for sku, title, oh, rs, av in sec.atp]
    out += ["", "Commands sent to other systems:"]
    out += [f"  {n:>5}  {kind}" for kind, n in sec.commands] or ["  none"]
    out += ["", "Alerts:"]
    out += [f"  {n:>5}  {kind}" for kind, n in sec.alerts] or ["  none"]
    out += ["", "Dead letters (input the system refused and kept):"]
    out += [f"  {n:>5}  {topic}\n         look / resend: {cmd}" for topic, n, cmd in sec.dlq] or ["  none"]
    out += ["", "Simulator's verdict (its own oracle against the read API and the output topics):",
            result.verdict.render()]
    return "\n".join(out)
