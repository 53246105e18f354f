"""Per-event detectors: stock drift, impossible ERP figures, repeated oversold, price anomalies (pure).

Stock drift: between two ERP snapshots of a SKU at one location, on-hand may fall by what left the
warehouse. "Explained" is generous on purpose: units ordered plus units dispatched in between (an ERP
books an order's units at order or at dispatch, never twice, so the sum is an upper bound), plus
negative adjustments, minus goods received and positive adjustments. What falls beyond that by
`min_units` and `min_ratio` of the earlier figure opens `stock_drift`; an explained snapshot resolves it.
"""

from __future__ import annotations

from typing import Any

from .alerts import AlertBook, AlertEvent
from .facts import Fact
from .rules import AnomalyRules, PriceDetector, RepeatedOversoldDetector, StockDriftDetector, StockImpossibleDetector

#: movements older than this behind the newest snapshot of the SKU are dropped
MOVEMENT_MEMORY_MS = 7 * 24 * 3_600_000


def movement(state: dict[str, Any], fact: Fact) -> None:
    """Remember units leaving (orders, dispatches, negative adjustments) or arriving per SKU."""
    moves = state.setdefault("moves", {})
    if fact.type in ("order", "dispatched"):
        for sku, qty in fact.lines:
            moves.setdefault(sku, []).append([fact.at_ms, qty, 0])
    elif fact.type == "stock_adjusted" and fact.sku and fact.value is not None:
        out, into = (-fact.value, 0) if fact.value < 0 else (0, fact.value)
        moves.setdefault(fact.sku, []).append([fact.at_ms, out, into])
    elif fact.type == "goods_received" and fact.sku and fact.value is not None:
        moves.setdefault(fact.sku, []).append([fact.at_ms, 0, fact.value])


def snapshot(state: dict[str, Any], rules: AnomalyRules, book: AlertBook, fact: Fact) -> list[AlertEvent]:
    """An ERP on-hand figure: impossible values and unexplained drops."""
    assert fact.sku is not None and fact.value is not None
    out: list[AlertEvent] = []
    subject = f"sku:{fact.sku}"
    impossible = False
    for det in rules.of_type(StockImpossibleDetector):
        if fact.value < 0 or fact.value > det.max_on_hand:
            impossible = True
            out.append(book.abnormal(det, subject, fact.at_ms,
                                     f"ERP reports on-hand {fact.value} for {fact.sku} at {fact.location}",
                                     {"on_hand": str(fact.value), "location": str(fact.location),
                                      "max_on_hand": str(det.max_on_hand), "event_id": fact.event_id}))
        else:
            ok = book.normal(det, subject, fact.at_ms, {"on_hand": str(fact.value)}, at_once=True)
            out.extend([ok] if ok else [])
    snaps = state.setdefault("snaps", {})
    key = f"{fact.sku}|{fact.location}"
    previous = snaps.get(key)
    if previous is not None and fact.at_ms <= previous[0]:
        return out  # an older or repeated snapshot: ordered by its as-of time
    if impossible:
        return out  # an impossible figure is no base for a drift
    snaps[key] = [fact.at_ms, fact.value]
    moves = state.setdefault("moves", {}).get(fact.sku, [])
    if previous is not None:
        out.extend(_drift(rules, book, fact, previous, moves, subject))
    horizon = fact.at_ms - MOVEMENT_MEMORY_MS
    moves[:] = [m for m in moves if m[0] > horizon]
    return out


def _drift(rules: AnomalyRules, book: AlertBook, fact: Fact, previous: list[int], moves: list[list[int]],
           subject: str) -> list[AlertEvent]:
    assert fact.value is not None
    since, before = previous
    left = sum(m[1] for m in moves if since < m[0] <= fact.at_ms)
    arrived = sum(m[2] for m in moves if since < m[0] <= fact.at_ms)
    unexplained = (before - fact.value) - left + arrived
    out: list[AlertEvent] = []
    for det in rules.of_type(StockDriftDetector):
        evidence = {"on_hand_before": str(before), "on_hand_after": str(fact.value), "units_out": str(left),
                    "units_in": str(arrived), "unexplained": str(unexplained), "location": str(fact.location)}
        if unexplained >= det.min_units and unexplained >= det.min_ratio * max(before, 0):
            out.append(book.abnormal(det, subject, fact.at_ms,
                                     f"on-hand of {fact.sku} fell by {unexplained} more than orders and "
                                     f"shipments explain", evidence))
        else:
            ok = book.normal(det, subject, fact.at_ms, evidence, at_once=True)
            out.extend([ok] if ok else [])
    return out


def atp(state: dict[str, Any], rules: AnomalyRules, book: AlertBook, fact: Fact) -> tuple[list[AlertEvent], bool]:
    """An ATP level: counts an oversold episode when available turns negative; (alerts, newly oversold)."""
    assert fact.sku is not None and fact.value is not None
    entry = state.setdefault("oversold", {}).setdefault(fact.sku, {"neg": False, "times": [], "last": 0})
    if fact.at_ms < entry["last"]:
        return [], False  # an older level than one already seen
    entry["last"] = fact.at_ms
    newly = fact.value < 0 and not entry["neg"]
    entry["neg"] = fact.value < 0
    if newly:
        entry["times"].append(fact.at_ms)
    out: list[AlertEvent] = []
    subject = f"sku:{fact.sku}"
    longest = max((d.within_ms for d in rules.of_type(RepeatedOversoldDetector)), default=0)
    entry["times"] = [t for t in entry["times"] if t > fact.at_ms - longest]
    for det in rules.of_type(RepeatedOversoldDetector):
        recent = [t for t in entry["times"] if t > fact.at_ms - det.within_ms]
        if newly and len(recent) >= det.count:
            out.append(book.abnormal(det, subject, fact.at_ms,
                                     f"{fact.sku} oversold {len(recent)} times within {det.within_ms // 3_600_000}h",
                                     {"episodes": str(len(recent)), "available": str(fact.value)}))
        elif not entry["neg"]:
            ok = book.normal(det, subject, fact.at_ms, {"available": str(fact.value)})
            out.extend([ok] if ok else [])
    return out, newly


def price(state: dict[str, Any], rules: AnomalyRules, book: AlertBook, fact: Fact) -> list[AlertEvent]:
    """A catalog price: zero, below cost, or changed beyond the threshold against the last known price."""
    assert fact.sku is not None
    prices = state.setdefault("prices", {})
    last = prices.get(fact.sku)
    if fact.amount is None or (last is not None and fact.at_ms <= last[0]):
        return []
    prices[fact.sku] = [fact.at_ms, fact.amount]
    out: list[AlertEvent] = []
    subject = f"sku:{fact.sku}"
    for det in rules.of_type(PriceDetector):
        evidence = {"price": str(fact.amount), "event_id": fact.event_id}
        bad = False
        if det.check == "zero":
            bad = fact.amount == 0
        elif det.check == "below_cost":
            if fact.cost is None:
                continue  # no cost known: neither evidence of a problem nor of its end
            bad = fact.amount < fact.cost
            evidence["cost"] = str(fact.cost)
        elif det.check == "change" and last is not None and last[1] > 0:
            ratio = abs(fact.amount - last[1]) / last[1]
            bad = ratio > det.max_change_ratio
            evidence.update({"previous_price": str(last[1]), "change_ratio": f"{ratio:.4f}"})
        if bad:
            out.append(book.abnormal(det, subject, fact.at_ms, f"{det.kind} for {fact.sku}: price {fact.amount}",
                                     evidence))
        else:
            ok = book.normal(det, subject, fact.at_ms, evidence, at_once=True)
            out.extend([ok] if ok else [])
    return out
