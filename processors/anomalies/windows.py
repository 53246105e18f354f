"""Windowed detectors: a value per event-time window and subject, judged against its baseline (pure).

Per detector the state holds the open windows' sums (`open`: start -> subject -> [numerator,
denominator, evidence order ids]), the first window not yet closed (`next`) and per subject the values
of its last closed windows (`hist`, the baseline). A window closes when the engine's watermark (newest
event time minus `lateness`) passes its end; events for a closed window are late and not counted.

Rates: a window's numerator over its denominator (cancellations / orders placed, returns requested /
orders placed, failed / attempted payments), both by event time. A window below `baseline.min_volume`
does not enter the baseline; one below `min_volume` is never judged (no alert on two orders).
Counts: every window closes with a value, zero included (a silent hour is exactly what an order-rate
drop is), for `overall` and for every subject seen before. For a drop, `min_volume` applies to the
baseline's median (a quiet night hour with 2 orders usually is not a broken checkout).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .alerts import AlertBook, AlertEvent, iso
from .facts import Fact
from .rules import HOUR_MS, WindowedDetector
from .stats import judge

OVERALL = "shop"


def table(win: dict[str, Any], detector_id: str) -> dict[str, Any]:
    """The detector's windows in the engine's `win` (created with every part, so the state has one shape)."""
    st = win.get(detector_id)
    if st is None:
        st = win[detector_id] = {"next": None, "open": {}, "hist": {}}
    return st


def _order_subjects(per: str, order: list[Any] | None, category: Callable[[str], str | None],
                    skus: tuple[str, ...] = ()) -> list[str]:
    if per == "overall":
        return [OVERALL]
    line_skus = sorted(set(skus or (order[1] if order else ())))
    if per == "sku":
        return [f"sku:{s}" for s in line_skus]
    if per == "category":
        return sorted({f"category:{c}" for s in line_skus if (c := category(s))})
    return []


def contributions(det: WindowedDetector, fact: Fact, order: list[Any] | None,
                  category: Callable[[str], str | None]) -> list[tuple[str, float, float]]:
    """(subject, numerator, denominator) a fact adds to the detector's window (none when unrelated);
    `category` gives a SKU's category (None when unknown)."""
    m, t = det.measure, fact.type
    if m in ("cancellation_rate", "return_rate", "orders"):
        if t == "order":
            subjects = _order_subjects(det.per, None, category, tuple(s for s, _ in fact.lines))
            return [(s, 0.0, 1.0) if m != "orders" else (s, 1.0, 1.0) for s in subjects]
        if (m, t) == ("cancellation_rate", "cancel"):
            return [(s, 1.0, 0.0) for s in _order_subjects(det.per, order, category)]
        if (m, t) == ("return_rate", "return"):
            skus = tuple(s for s, _ in fact.lines)
            return [(s, 1.0, 0.0) for s in _order_subjects(det.per, order, category, skus)]
        return []
    if m == "payment_failure_rate" and t in ("payment_ok", "payment_failed"):
        failed = 1.0 if t == "payment_failed" else 0.0
        return [(s, failed, 1.0) for s in _payment_subjects(det.per, fact, order)]
    if m in ("refunds", "refund_amount") and t == "refund":
        value = 1.0 if m == "refunds" else float(fact.amount or 0.0)
        subject = OVERALL if det.per == "overall" else f"gateway:{fact.gateway or 'unknown'}"
        return [(subject, value, 1.0)]
    return []


def _payment_subjects(per: str, fact: Fact, order: list[Any] | None) -> list[str]:
    if per == "overall":
        return [OVERALL]
    if per == "gateway":
        return [f"gateway:{fact.gateway or 'unknown'}"]
    # a failure rarely names its method: fall back to the order's payment gateway name
    method = fact.method or (order[2] if order and order[2] else None)
    return [f"method:{method or 'unknown'}"]


def add(st: dict[str, Any], det: WindowedDetector, fact: Fact, parts: list[tuple[str, float, float]],
        keep_ids: int) -> bool:
    """Add a fact's contributions to its window; False when the window is already closed (late)."""
    start = fact.at_ms - fact.at_ms % det.window_ms
    if st.get("next") is None:
        st["next"] = start
    if start < st["next"]:
        return False
    window = st.setdefault("open", {}).setdefault(str(start), {})
    for subject, num, den in parts:
        cell = window.setdefault(subject, [0.0, 0.0, []])
        cell[0] += num
        cell[1] += den
        if num and fact.order_id and fact.order_id not in cell[2] and keep_ids:
            # the smallest ids, not the first ones: the same evidence whatever order partitions are read in
            cell[2] = sorted([*cell[2], fact.order_id])[:keep_ids]
    return True


def close(st: dict[str, Any], det: WindowedDetector, watermark: int, book: AlertBook) -> list[AlertEvent]:
    """Close every window of the detector that ends at or before `watermark`; the alert changes in order."""
    out: list[AlertEvent] = []
    hist: dict[str, list[list[float]]] = st.setdefault("hist", {})
    while st.get("next") is not None and st["next"] + det.window_ms <= watermark:
        start = st["next"]
        end = start + det.window_ms
        cells = st.setdefault("open", {}).pop(str(start), {})
        if det.type == "count":
            for subject in sorted(set(hist) | {OVERALL} if det.per == "overall" else set(hist)):
                cells.setdefault(subject, [0.0, 0.0, []])
        judged: set[str] = set()
        for subject in sorted(cells):
            num, den, ids = cells[subject]
            event = _judge(det, hist.setdefault(subject, []), subject, start, num, den, ids, book)
            if event is not None:
                out.append(event)
                judged.add(subject)
        for subject in book.open_subjects(det.id):
            if subject not in judged:
                resolved = book.normal(det, subject, end)
                if resolved is not None:
                    out.append(resolved)
        st["next"] = end
    return out


def _judge(det: WindowedDetector, history: list[list[float]], subject: str, start: int, num: float, den: float,
           ids: list[str], book: AlertBook) -> AlertEvent | None:
    end = start + det.window_ms
    if det.type == "rate" and den <= 0:  # e.g. returns of a SKU that sold nothing that day: no rate
        return None
    value = num / den if det.type == "rate" else num
    past = [v for s, v in history if not det.baseline.same_hour or (s - start) % (24 * HOUR_MS) == 0]
    past = past[-det.baseline.windows:]
    # the window enters the baseline after it was judged (a rate only with enough volume)
    if det.type == "count" or den >= det.baseline.min_volume:
        history.append([start, value])
        limit = det.baseline.windows * (24 if det.baseline.same_hour else 1)
        del history[:-limit]
    if len(past) < det.baseline.min_windows:
        return None
    t = det.threshold
    verdict = judge(value, past, mad_factor=t.mad_factor, min_delta=t.min_delta, min_ratio=t.min_ratio,
                    direction=det.direction)
    volume_ok = (den >= det.min_volume if det.type == "rate"
                 else verdict.baseline >= det.min_volume if verdict.direction == "down"
                 else value >= det.min_volume)
    evidence = {"observed": _num(value), "baseline": _num(verdict.baseline), "mad": _num(verdict.spread),
                "limit": _num(verdict.limit), "window": "1h" if det.window_ms == HOUR_MS else "1d",
                "window_start": iso(start), "window_end": iso(end), "baseline_windows": str(len(past))}
    if det.type == "rate":
        evidence.update({"events": _num(num), "volume": _num(den)})
    if not (verdict.abnormal and volume_ok):
        return book.normal(det, subject, end, evidence)
    if ids:
        evidence["orders"] = ",".join(ids)
    kind = det.kind_down if verdict.direction == "down" and det.kind_down else det.kind
    summary = (f"{kind} for {subject}: {_num(value)} in the {evidence['window']} window from {iso(start)} "
               f"(baseline {_num(verdict.baseline)})")
    return book.abnormal(det, subject, end, summary, evidence, kind)


def _num(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
