"""Per-event detectors: stock drift, impossible ERP figures, repeated oversold, price anomalies (pure).

State per SKU, kept apart so the changelog can hold one small record per SKU (`changelog.py`):
- the SKU's entry `skus[sku]`: `snaps` (location -> [as-of, on-hand]), `oversold` ({neg, times, last}),
  `price` ([at, amount]) and `category` (from the catalog);
- its movements `moves[sku]`: hour start (str) -> [[at, units out, units in], ...], chunked by the hour of
  the movement so that a busy SKU's record stays small and a batch rewrites only the hour it added to.

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
from .rules import (
    HOUR_MS,
    AnomalyRules,
    PriceDetector,
    RepeatedOversoldDetector,
    StockDriftDetector,
    StockImpossibleDetector,
)

#: movements older than this behind the newest snapshot of the SKU are dropped
MOVEMENT_MEMORY_MS = 7 * 24 * 3_600_000

#: a SKU's movements: hour start -> [[at, units out, units in], ...]
Moves = dict[str, list[list[int]]]


def entry(skus: dict[str, Any], sku: str) -> dict[str, Any]:
    """The SKU's entry (created empty)."""
    found = skus.get(sku)
    if found is None:
        found = skus[sku] = {}
    return found


def movement(moves: dict[str, Moves], fact: Fact) -> list[tuple[str, str]]:
    """Remember units leaving (orders, dispatches, negative adjustments) or arriving per SKU; the (sku, hour)
    chunks added to."""
    added: list[tuple[str, str]] = []

    def add(sku: str, out: int, into: int) -> None:
        hour = str(fact.at_ms - fact.at_ms % HOUR_MS)
        moves.setdefault(sku, {}).setdefault(hour, []).append([fact.at_ms, out, into])
        added.append((sku, hour))

    if fact.type in ("order", "dispatched"):
        for sku, qty in fact.lines:
            add(sku, qty, 0)
    elif fact.type == "stock_adjusted" and fact.sku and fact.value is not None:
        add(fact.sku, *((-fact.value, 0) if fact.value < 0 else (0, fact.value)))
    elif fact.type == "goods_received" and fact.sku and fact.value is not None:
        add(fact.sku, 0, fact.value)
    return added


def snapshot(state: dict[str, Any], moves: Moves, rules: AnomalyRules, book: AlertBook,
             fact: Fact) -> tuple[list[AlertEvent], list[str]]:
    """An ERP on-hand figure: impossible values and unexplained drops; (alerts, the movement hours pruned or
    emptied). `state` is the SKU's entry, `moves` its movements (a chunk left empty is removed)."""
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
    key = str(fact.location)
    previous = snaps.get(key)
    if previous is not None and fact.at_ms <= previous[0]:
        return out, []  # an older or repeated snapshot: ordered by its as-of time
    if impossible:
        return out, []  # an impossible figure is no base for a drift
    snaps[key] = [fact.at_ms, fact.value]
    if previous is not None:
        out.extend(_drift(rules, book, fact, previous, [m for chunk in moves.values() for m in chunk], subject))
    horizon = fact.at_ms - MOVEMENT_MEMORY_MS
    pruned: list[str] = []
    for hour in [h for h in moves if int(h) <= horizon]:  # only chunks starting before the horizon hold old moves
        kept = [m for m in moves[hour] if m[0] > horizon]
        if len(kept) < len(moves[hour]):
            pruned.append(hour)
            if kept:
                moves[hour] = kept
            else:
                del moves[hour]
    return out, pruned


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
    """An ATP level: counts an oversold episode when available turns negative; (alerts, newly oversold).
    `state` is the SKU's entry."""
    assert fact.sku is not None and fact.value is not None
    entry = state.setdefault("oversold", {"neg": False, "times": [], "last": 0})
    # ATP levels are deduplicated here, not by event id (engine.py): by version, since levels of one SKU
    # can share a time (`updated_at` is the newest event time) and a crash re-sends a run of them
    if fact.version is not None:
        if fact.version <= entry.get("version", -1):
            return [], False  # applied already, or older than one applied
        entry["version"] = fact.version
    elif fact.at_ms < entry["last"]:
        return [], False  # an older level than one already seen (a fact without a version)
    entry["last"] = max(entry["last"], fact.at_ms)
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
    """A catalog price: zero, below cost, or changed beyond the threshold against the last known price.
    `state` is the SKU's entry."""
    assert fact.sku is not None
    last = state.get("price")
    if fact.amount is None or (last is not None and fact.at_ms <= last[0]):
        return []
    state["price"] = [fact.at_ms, fact.amount]
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
