"""The anomaly engine: facts in, alert changes out, state as one JSON-able dict (pure, deterministic).

`Engine.apply(fact)` deduplicates (event ids within the open horizon; an order id is placed, cancelled,
shipped once), keeps a cancellation, return or shipment whose order was not read yet until it is (other
topics are read at other speeds), updates the order index (to attribute cancellations, returns and lead
times to SKUs and categories), the KPIs, the per-event detectors and the open windows, then closes the windows the new
watermark (newest event time minus `lateness`) has passed. The outputs depend only on the sequence of
facts, never on the wall clock: replaying a history gives the same alerts with the same ids, and
applying a fact twice changes nothing. `advance(now_ms)` lets a live worker close windows when no
events come at all (a dead checkout sends nothing), which only a caller with a clock can decide.

The state is shaped like a key-value store (`changelog.py` maps it to one small changelog record per
key): seen event ids, the order index, facts waiting for their order, per-SKU entries and movements,
window cells and baselines per detector and subject, open alerts and KPI hours each sit in their own
map, and a few scalars form the core. The engine records every key it changed or deleted in `changed`
(a set of key tuples such as `("seen", event_id)` or `("cell", detector, window start, subject)`,
`changelog.py` names them all); `take_changes()` hands them over, so a caller writes what a fact or a
tick touched — and deletes what pruning forgot — without guessing from the fact.
"""

from __future__ import annotations

import copy
from typing import Any

from . import kpis, stock, windows
from .alerts import AlertBook, AlertEvent
from .facts import Fact
from .rules import DAY_MS, HOUR_MS, AnomalyRules

_CANCELLED, _RETURNED, _DISPATCHED, _DELIVERED = 1, 2, 4, 8
_FLAG = {"cancel": _CANCELLED, "return": _RETURNED, "dispatched": _DISPATCHED, "delivered": _DELIVERED}
#: facts that need their order: kept aside until the order is read (or forgotten after `order_memory`)
_FOLLOWERS = frozenset({"cancel", "return", "dispatched", "delivered"})
#: the per-SKU facts ordered by their own time: not subject to the lateness horizon
_ORDERED_BY_TIME = frozenset({"stock_snapshot", "atp", "product"})


#: a key of the state (see the module docstring and `changelog.py`)
Key = tuple[str, ...]
CORE: Key = ("core",)


def empty_state() -> dict[str, Any]:
    """The state of an engine that has seen nothing."""
    return {"max_at": None, "watermark": None, "late": 0, "seen": {}, "orders": {}, "orphans": {}, "skus": {},
            "moves": {}, "win": {}, "alerts": {}, "kpis": {"hours": {}}}


class Engine:
    """Detectors of one rules file over one state dict (the adapter stores `state` as it is)."""

    def __init__(self, rules: AnomalyRules, state: dict[str, Any] | None = None, *,
                 order_sources: int | None = None) -> None:
        self.rules = rules
        self.state = state if state is not None else empty_state()
        #: the keys changed or deleted since the last `take_changes`
        self.changed: set[Key] = set()
        self.book = AlertBook(self.state["alerts"], lambda key: self.changed.add(("alert", key)))
        #: partitions of the order topic: with it, event time advances with the slowest of them
        self.order_sources = order_sources

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the state (for comparisons and changelog writes)."""
        return copy.deepcopy(self.state)

    def take_changes(self) -> set[Key]:
        """The keys changed or deleted since the last call (then forgotten)."""
        changed, self.changed = self.changed, set()
        return changed

    def apply(self, fact: Fact) -> list[AlertEvent]:
        """Apply one fact; the alert changes it causes, in a deterministic order."""
        s = self.state
        if fact.event_id in s["seen"]:
            return []
        horizon = self._horizon()
        if horizon is not None and fact.at_ms < horizon and not self._idempotent(fact):
            s["late"] += 1
            self.changed.add(CORE)
            return []
        if fact.type != "atp":  # an ATP level is deduplicated by its time per SKU (stock.atp), not by its id
            s["seen"][fact.event_id] = fact.at_ms
            self.changed.add(("seen", fact.event_id))
        if fact.type == "dispatched":  # units left the warehouse, whatever order they belong to (partial shipments too)
            self._moved(stock.movement(s["moves"], fact))
        if fact.type in _FOLLOWERS and fact.order_id is not None and fact.order_id not in s["orders"]:
            # its order has not been read yet (another topic, read at another speed): wait for it
            s["orphans"].setdefault(fact.order_id, []).append(fact.to_list())
            self.changed.add(("orphans", fact.order_id))
            return []
        out = self._apply(fact)
        if fact.type == "order" and fact.order_id is not None and fact.order_id in s["orphans"]:
            self.changed.add(("orphans", fact.order_id))
            for raw in s["orphans"].pop(fact.order_id):
                out.extend(self._apply(Fact.from_list(raw)))
        return out

    def _idempotent(self, fact: Fact) -> bool:
        """Whether applying `fact` twice is a no-op without its event id (so it may be older than the seen ids):
        per-SKU facts ordered by their time, and an order's placement, cancellation, return and shipments,
        once per order while the order is remembered."""
        if fact.type in _ORDERED_BY_TIME:
            return True
        return (fact.type == "order" or fact.type in _FOLLOWERS) and \
            fact.at_ms >= self.state["watermark"] - self.rules.order_memory_ms

    def _untracked_level(self, fact: Fact) -> bool:
        """An ATP level at or above zero of a SKU never seen oversold: nothing to track (no entry, no record).
        Most levels of a stock export are such: 1M SKUs would otherwise make 1M `sku:` records."""
        if fact.type != "atp" or fact.value is None or fact.value < 0 or fact.sku is None:
            return False
        return "oversold" not in self.state["skus"].get(fact.sku, {})

    def _moved(self, chunks: list[tuple[str, str]]) -> None:
        self.changed.update(("moves", hour, sku) for sku, hour in chunks)

    def _category(self, sku: str) -> str | None:
        entry = self.state["skus"].get(sku)
        return None if entry is None else entry.get("category")

    def _apply(self, fact: Fact) -> list[AlertEvent]:
        """Apply a deduplicated fact whose order (if it needs one) is known."""
        s = self.state
        changed = self.changed
        changed.add(CORE)  # max_at, the clock's sources, the KPIs' newest time
        out: list[AlertEvent] = []
        order, first = self._index(fact)
        newly_oversold = False
        if fact.type in ("order", "stock_adjusted", "goods_received") and first:
            self._moved(stock.movement(s["moves"], fact))
        if fact.type in ("stock_snapshot", "atp", "product") and fact.sku and not self._untracked_level(fact):
            sku = fact.sku
            entry = stock.entry(s["skus"], sku)
            changed.add(("sku", sku))
            if fact.type == "product" and fact.category:
                entry["category"] = fact.category
            if fact.type == "stock_snapshot":
                moves = s["moves"].get(sku, {})
                found, pruned = stock.snapshot(entry, moves, self.rules, self.book, fact)
                changed.update(("moves", hour, sku) for hour in pruned)
                if not moves:
                    s["moves"].pop(sku, None)
                out.extend(found)
            elif fact.type == "atp":
                found, newly_oversold = stock.atp(entry, self.rules, self.book, fact)
                out.extend(found)
            else:
                out.extend(stock.price(entry, self.rules, self.book, fact))
        self._count(fact, order, first, newly_oversold)
        if first:
            for det in self.rules.windowed():
                parts = windows.contributions(det, fact, order, self._category)
                if not parts:
                    continue
                if windows.add(windows.table(s["win"], det.id), det, fact, parts, self.rules.evidence_orders):
                    start = str(fact.at_ms - fact.at_ms % det.window_ms)
                    changed.update(("cell", det.id, start, subject) for subject, _, _ in parts)
                else:
                    s["late"] += 1
        if s["max_at"] is None or fact.at_ms > s["max_at"]:
            s["max_at"] = fact.at_ms
        clock = self._clock(fact)
        if clock is not None:
            out.extend(self.advance(clock))
        return out

    def _count(self, fact: Fact, order: list[Any] | None, first: bool, oversold: bool) -> None:
        """The fact into the KPIs; the hour it counted in (and its sample lists that grew) and the hours
        pruned are changed."""
        hours = self.state["kpis"]["hours"]
        hour = str(fact.at_ms - fact.at_ms % HOUR_MS)
        bucket = hours.get(hour)
        before = [len(bucket.get(name, ())) if bucket else 0 for name in kpis.SAMPLES]
        gone = kpis.record(self.state["kpis"], fact, order, first=first, oversold=oversold)
        changed = self.changed
        changed.add(("kpi", hour))
        bucket = hours.get(hour)
        if bucket is not None:
            changed.update(("samples", hour, name) for name, n in zip(kpis.SAMPLES, before, strict=True)
                           if len(bucket.get(name, ())) != n)
        for old, dropped in gone.items():
            changed.add(("kpi", old))
            changed.update(("samples", old, name) for name in kpis.SAMPLES if name in dropped)

    def _clock(self, fact: Fact) -> int | None:
        """The event time the watermark follows: the newest fact's, or with `order_sources` the slowest order
        partition's newest (none until every partition was heard from). Partitions of the order topic are
        read at different speeds (a backfill may read hours of one before another): the newest event alone
        would close windows the slower partitions still feed."""
        if self.order_sources is None:
            return fact.at_ms
        sources = self.state.setdefault("sources", {})
        if fact.src is not None and fact.at_ms > sources.get(fact.src, -1):
            sources[fact.src] = fact.at_ms
        if len(sources) < self.order_sources:
            return None
        return min(sources.values())

    def advance(self, now_ms: int) -> list[AlertEvent]:
        """Move the watermark to `now_ms - lateness` (never back) and close the windows it passed."""
        s = self.state
        mark = now_ms - self.rules.lateness_ms
        if s["watermark"] is not None and mark <= s["watermark"]:
            return []
        s["watermark"] = mark
        changed = self.changed
        changed.add(CORE)
        out: list[AlertEvent] = []
        for det in self.rules.windowed():
            st = windows.table(s["win"], det.id)
            before = st["next"]
            if before is None or before + det.window_ms > mark:
                continue  # no window of it ends by the new watermark: closing would change nothing
            # what closing changes: the closed windows' cells go, their subjects' baselines grow
            closing = [(start, list(cells)) for start, cells in st["open"].items()
                       if int(start) + det.window_ms <= mark]
            out.extend(windows.close(st, det, mark, self.book))
            for start, subjects in closing:
                changed.update(("cell", det.id, start, subject) for subject in subjects)
                changed.update(("hist", det.id, subject) for subject in subjects)
            if det.type == "count" and st["next"] != before:  # a count closes with every known subject
                changed.update(("hist", det.id, subject) for subject in st["hist"])
        self._prune()
        return out

    def _horizon(self) -> int | None:
        mark = self.state["watermark"]
        return None if mark is None else mark - DAY_MS

    def _index(self, fact: Fact) -> tuple[list[Any] | None, bool]:
        """The order's index entry and whether this fact is the first of its kind for the order."""
        orders = self.state["orders"]
        if fact.order_id is None:
            return None, True
        key = ("orders", fact.order_id)
        entry = orders.get(fact.order_id)
        if fact.type == "order":
            if entry is not None:
                return entry, False
            # placed at, SKUs, gateway, flags (+ returned at, first refund after it: appended when they happen)
            entry = [fact.at_ms, sorted({s for s, _ in fact.lines}), fact.gateway, 0]
            orders[fact.order_id] = entry
            self.changed.add(key)
            return entry, True
        if fact.type == "refund" and entry is not None and len(entry) == 5:
            entry.append(fact.at_ms)  # the first refund after the return: return-to-refund time (KPI)
            self.changed.add(key)
        flag = _FLAG.get(fact.type)
        if flag is None or entry is None:
            return entry, True
        if entry[3] & flag:
            return entry, False
        entry[3] |= flag
        if fact.type == "return" and len(entry) == 4:
            entry.append(fact.at_ms)
        self.changed.add(key)
        return entry, True

    def _prune(self) -> None:
        s = self.state
        horizon = self._horizon()
        if horizon is None:
            return
        # at most once per event-time hour: the cost stays flat however many events come
        if horizon - s.get("pruned", horizon - HOUR_MS) < HOUR_MS:
            return
        s["pruned"] = horizon
        changed = self.changed
        seen = s["seen"]
        for event_id in [k for k, v in seen.items() if v < horizon]:
            del seen[event_id]
            changed.add(("seen", event_id))
        forget = s["watermark"] - self.rules.order_memory_ms
        orders = s["orders"]
        for order_id in [k for k, v in orders.items() if v[0] < forget]:
            del orders[order_id]
            changed.add(("orders", order_id))
        orphans = s["orphans"]
        for order_id in [k for k, v in orphans.items() if v[-1][2] < forget]:
            s["late"] += len(orphans.pop(order_id))  # their order never came
            changed.add(("orphans", order_id))

    def kpis(self, window: str, end_ms: int | None = None) -> dict[str, Any]:
        """The KPI report over `window` (see `kpis.report`)."""
        return kpis.report(self.state["kpis"], window, end_ms)
