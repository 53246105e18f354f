"""The seeds' KPIs from the events already flowing, per event-time hour (pure).

Hourly buckets (kept `KEEP_HOURS`) sum what happened in each hour; a report sums the buckets of a
window that ends at the newest event time seen (not the wall clock: a replayed history reports the same
figures). Definitions (README "KPI definitions"):

- orders: OrderPlaced (each order id once); cancellations, returns (ReturnRequested), tickets
  (TicketCreated), refunds (RefundIssued, count and amount in major units), oversold (ATP available
  turning negative), payment attempts (PaymentAuthorized + PaymentFailed) and failures;
- Stornoquote = cancellations / orders, Retourenquote = returns / orders, Tickets pro 100 Orders =
  100 x tickets / orders (null until a ticket was ever seen: support not fed), payment failure rate =
  failures / attempts — each over the same window, null without a denominator;
- fulfilment lead time = placed -> first dispatch, Durchlaufzeit Fulfillment (delivery time) = placed
  -> first delivery, per order, in seconds: p50 / p90 (nearest rank) of the orders shipped/delivered
  in the window (at most `MAX_SAMPLES` per hour, the first ones: bounded state); return-to-refund time =
  first ReturnRequested -> the first RefundIssued after it, per order, the same way.
"""

from __future__ import annotations

import math
from typing import Any

from .alerts import iso
from .facts import Fact

HOUR_MS = 3_600_000
KEEP_HOURS = 35 * 24
MAX_SAMPLES = 5000
#: the per-hour sample lists (each at most MAX_SAMPLES long)
SAMPLES = ("lead", "delivery", "refund_after_return")
COUNTERS = ("orders", "cancellations", "returns", "tickets", "refunds", "refund_amount", "oversold",
            "payment_attempts", "payment_failures")
WINDOWS = {"1h": HOUR_MS, "24h": 24 * HOUR_MS, "7d": 7 * 24 * HOUR_MS}


def _bucket(kpis: dict[str, Any], at_ms: int) -> dict[str, Any]:
    start = at_ms - at_ms % HOUR_MS
    return kpis.setdefault("hours", {}).setdefault(str(start), {})


def record(kpis: dict[str, Any], fact: Fact, order: list[Any] | None, *, first: bool = True,
           oversold: bool = False) -> dict[str, Any]:
    """Count one fact (already deduplicated; `first`: the first of its kind for its order); the hour buckets
    it pruned (start -> bucket: the engine deletes their changelog records)."""
    kpis["newest"] = max(kpis.get("newest", 0), fact.at_ms)
    b = _bucket(kpis, fact.at_ms)

    def inc(name: str, by: float = 1) -> None:
        b[name] = b.get(name, 0) + by

    t = fact.type
    if t == "order" and first:
        inc("orders")
    elif t == "cancel" and first:
        inc("cancellations")
    elif t == "return" and first:
        inc("returns")
    elif t == "ticket":
        kpis["tickets_fed"] = True
        inc("tickets")
    elif t == "refund":
        inc("refunds")
        inc("refund_amount", fact.amount or 0.0)
        if order is not None and len(order) == 6 and order[5] == fact.at_ms:
            _sample(b, "refund_after_return", (order[5] - order[4]) // 1000)
    elif t in ("payment_ok", "payment_failed"):
        inc("payment_attempts")
        if t == "payment_failed":
            inc("payment_failures")
    elif t == "atp" and oversold:
        inc("oversold")
    elif t in ("dispatched", "delivered") and first and order is not None:
        _sample(b, "lead" if t == "dispatched" else "delivery", (fact.at_ms - order[0]) // 1000)
    return _prune(kpis, fact.at_ms)


def _sample(bucket: dict[str, Any], name: str, seconds: int) -> None:
    samples = bucket.setdefault(name, [])
    if len(samples) < MAX_SAMPLES:  # bounded state: the first ones of the hour
        samples.append(max(0, seconds))


def _prune(kpis: dict[str, Any], at_ms: int) -> dict[str, Any]:
    hours = kpis.get("hours", {})
    if len(hours) <= KEEP_HOURS:
        return {}
    horizon = max(kpis.get("newest", at_ms), at_ms) - KEEP_HOURS * HOUR_MS
    return {key: hours.pop(key) for key in [k for k in hours if int(k) < horizon]}


def percentile(values: list[int], q: float) -> int | None:
    """Nearest-rank percentile (q in 0..100) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _ratio(num: float, den: float, scale: float = 1.0) -> float | None:
    return round(scale * num / den, 6) if den else None


def report(kpis: dict[str, Any], window: str, end_ms: int | None = None) -> dict[str, Any]:
    """The KPIs over `window` (1h, 24h, 7d) ending at `end_ms` (default: the newest event time seen)."""
    length = WINDOWS[window]
    end = end_ms if end_ms is not None else kpis.get("newest", 0)
    end = end - end % HOUR_MS + HOUR_MS  # the newest event's hour counts whole
    start = end - length
    sums = dict.fromkeys(COUNTERS, 0.0)
    lead: list[int] = []
    delivery: list[int] = []
    refund_after_return: list[int] = []
    for key, bucket in kpis.get("hours", {}).items():
        if start <= int(key) < end:
            for name in COUNTERS:
                sums[name] += bucket.get(name, 0)
            lead.extend(bucket.get("lead", ()))
            delivery.extend(bucket.get("delivery", ()))
            refund_after_return.extend(bucket.get("refund_after_return", ()))
    orders = sums["orders"]
    counts = {name: (round(v, 4) if name == "refund_amount" else int(v)) for name, v in sums.items()}
    return {
        "window": window, "from": iso(start), "to": iso(end), **counts,
        "orders_per_hour": round(orders / (length / HOUR_MS), 4),
        "cancellation_rate": _ratio(sums["cancellations"], orders),
        "return_rate": _ratio(sums["returns"], orders),
        "tickets_per_100_orders": _ratio(sums["tickets"], orders, 100.0) if kpis.get("tickets_fed") else None,
        "payment_failure_rate": _ratio(sums["payment_failures"], sums["payment_attempts"]),
        "fulfilment_lead_time_s": {"p50": percentile(lead, 50), "p90": percentile(lead, 90), "count": len(lead)},
        "delivery_time_s": _latency(delivery),
        "return_to_refund_time_s": _latency(refund_after_return),
    }


def _latency(samples: list[int]) -> dict[str, int | None]:
    return {"p50": percentile(samples, 50), "p90": percentile(samples, 90), "count": len(samples)}
