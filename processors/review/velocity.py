"""The review state: order facts and velocity windows on event time, and `step` that decides (pure).

Velocity measures count, for the evaluated order X, the orders Y that share X's email / shipping
address / IP and were placed in the window ending at X: `X.placed_at - window < Y.placed_at <=
X.placed_at`, ties broken by order id (Y counts when `(Y.placed_at, Y.order_id) <= (X.placed_at,
X.order_id)`; X counts itself). So "more than 3 orders per email within 1 h" holds the fourth order,
not the ones before it, whichever arrives first.

Arrival order does not matter: the state is a set of per-order facts (two snapshots of one order
merge commutatively, `facts.newer`), every measure is a function of that set, and when an event
arrives every order whose window it falls into is decided again (`step` returns the verdicts that
changed). Hence after any arrival order of the same events the last verdict of every order is the
same (tests/unit/test_review_velocity.py checks it as a property). The one limit: orders placed more
than `velocity.retention` before the newest order seen are dropped (`prune`); an event older than that
is decided against what is left.

`to_dict` / `from_dict` give a JSON-compatible form; the adapter persists it (velocity state survives
a restart) or rebuilds it by re-reading `shop.orders` for the retention period.
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shopstream.schemas.models import OrderPlaced, OrderUpdated

from .evaluate import Verdict, evaluate
from .facts import OrderFacts, newer, order_facts
from .rules import Per, RuleSet, Velocity

PERS: tuple[Per, ...] = ("email", "shipping_address", "ip")
#: Stripe Radar's levels, least risky first (other providers' values rank with `normal`).
RISK_RANK = {"normal": 0, "elevated": 1, "highest": 2}
_DECIMALS = frozenset({"total", "total_eur"})
_TIMES = frozenset({"placed_at", "as_of"})


def _key_of(facts: OrderFacts, per: Per) -> str | None:
    return getattr(facts, per)


@dataclass
class ReviewState:
    """Per-order facts within the retention, their velocity index, and the last verdict sent per order."""

    facts: dict[str, OrderFacts] = field(default_factory=dict)
    risk: dict[str, str] = field(default_factory=dict)
    index: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    sent: dict[str, tuple[str, ...]] = field(default_factory=dict)
    watermark: datetime | None = None
    #: (placed_at, order id) of every fact as stored, oldest first (entries of replaced facts linger until
    #: popped): `prune` pops what fell out of the retention instead of scanning every order per event
    expiry: list[tuple[datetime, str]] = field(default_factory=list, repr=False, compare=False)

    def observe(self, new: OrderFacts, max_window: timedelta, pers: tuple[Per, ...] = PERS) -> set[str]:
        """Merge one snapshot's facts; the ids of the orders whose measures may have changed.

        `pers`: the keys some velocity counts per (`step` passes the rules'); orders sharing only another
        key cannot change a measure, so they are not looked at (every order of one shop can share a
        shipping address or an IP: scanning them made each event cost O(orders in the retention))."""
        old = self.facts.get(new.order_id)
        merged = newer(old, new)
        if merged == old:
            return set()
        affected = {new.order_id}
        for facts in (old, merged):
            if facts is not None:
                affected |= self._neighbours(facts, max_window, pers)
        if old is not None:
            self._unindex(old)
        self.facts[new.order_id] = merged
        self._index(merged)
        heapq.heappush(self.expiry, (merged.placed_at, merged.order_id))
        affected |= self._neighbours(merged, max_window, pers)
        if self.watermark is None or merged.placed_at > self.watermark:
            self.watermark = merged.placed_at
        return affected

    def observe_risk(self, order_id: str, level: str) -> bool:
        """Record the provider's risk level of an order (the riskiest seen is kept, so arrival order does not
        matter); whether it changed."""
        current = self.risk.get(order_id)
        best = level if current is None else max(current, level, key=lambda v: (RISK_RANK.get(v, 0), v))
        self.risk[order_id] = best
        return best != current

    def facts_of(self, order_id: str) -> OrderFacts | None:
        """The merged facts of an order with its provider risk level."""
        facts = self.facts.get(order_id)
        if facts is None:
            return None
        risk = self.risk.get(order_id)
        return facts if risk is None else _with(facts, risk_level=risk)

    def measure(self, order_id: str, velocity: Velocity) -> int:
        """The value of one velocity measure for one order (see the module docstring)."""
        me = self.facts[order_id]
        value = _key_of(me, velocity.per)
        if value is None:
            return 0
        peers = [self.facts[o] for o in self.index.get((velocity.per, value), ())]
        inside = [p for p in peers if me.placed_at - velocity.window < p.placed_at <= me.placed_at
                  and (p.placed_at, p.order_id) <= (me.placed_at, me.order_id)]
        if velocity.measure == "orders":
            return len(inside)
        attr = "shipping_address" if velocity.measure == "distinct_shipping_addresses" else "card"
        return len({getattr(p, attr) for p in inside} - {None})

    def prune(self, retention: timedelta) -> None:
        """Forget orders placed more than `retention` before the newest order seen."""
        if self.watermark is None:
            return
        horizon = self.watermark - retention
        expiry = self.expiry
        while expiry and expiry[0][0] < horizon:
            _, oid = heapq.heappop(expiry)
            facts = self.facts.get(oid)
            if facts is None or facts.placed_at >= horizon:
                continue  # gone already, or stored again with a later time (its own entry comes later)
            self._unindex(self.facts.pop(oid))
            self.risk.pop(oid, None)
            self.sent.pop(oid, None)

    def _neighbours(self, facts: OrderFacts, max_window: timedelta, pers: tuple[Per, ...] = PERS) -> set[str]:
        out: set[str] = set()
        for per in pers:
            value = _key_of(facts, per)
            if value is None:
                continue
            for oid in self.index.get((per, value), ()):
                other = self.facts[oid]
                if facts.placed_at <= other.placed_at < facts.placed_at + max_window:
                    out.add(oid)
        return out

    def _index(self, facts: OrderFacts) -> None:
        for per in PERS:
            value = _key_of(facts, per)
            if value is not None:
                self.index.setdefault((per, value), set()).add(facts.order_id)

    def _unindex(self, facts: OrderFacts) -> None:
        for per in PERS:
            value = _key_of(facts, per)
            if value is None:
                continue
            bucket = self.index.get((per, value))
            if bucket is not None:
                bucket.discard(facts.order_id)
                if not bucket:
                    del self.index[(per, value)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (facts, risk levels, last verdict per order, watermark)."""
        return {"format": 1, "facts": [_facts_dict(f) for _, f in sorted(self.facts.items())],
                "risk": dict(sorted(self.risk.items())), "sent": {k: list(v) for k, v in sorted(self.sent.items())},
                "watermark": self.watermark.isoformat() if self.watermark else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReviewState:
        """Inverse of `to_dict`."""
        state = cls(risk=dict(data.get("risk") or {}), sent={k: tuple(v) for k, v in (data.get("sent") or {}).items()},
                    watermark=datetime.fromisoformat(data["watermark"]) if data.get("watermark") else None)
        for raw in data.get("facts") or []:
            facts = _facts_from(raw)
            state.facts[facts.order_id] = facts
            state._index(facts)
            state.expiry.append((facts.placed_at, facts.order_id))
        heapq.heapify(state.expiry)
        return state


def step(state: ReviewState, rules: RuleSet, event: OrderPlaced | OrderUpdated) -> list[Verdict]:
    """Apply one order event to the state; the verdicts that changed (the event's order and late-touched ones)."""
    known = state.facts.get(event.order_id)
    facts = order_facts(event, rules.rates, placed_at=known.placed_at if known is not None and
                        isinstance(event, OrderUpdated) else None)
    velocities = rules.velocities()
    max_window = max((v.window for v in velocities), default=timedelta(0))
    affected = state.observe(facts, max_window, tuple(dict.fromkeys(v.per for v in velocities)))
    out = [v for v in (decide(state, rules, oid, velocities) for oid in sorted(affected)) if v is not None]
    state.prune(rules.retention)
    return out


def step_risk(state: ReviewState, rules: RuleSet, order_id: str, level: str) -> list[Verdict]:
    """Record a payment provider's risk level for an order; its verdict when that changed it."""
    if not state.observe_risk(order_id, level):
        return []
    verdict = decide(state, rules, order_id)
    return [verdict] if verdict is not None else []


def decide(state: ReviewState, rules: RuleSet, order_id: str,
           velocities: tuple[Velocity, ...] | None = None) -> Verdict | None:
    """Decide one order again; the verdict when it differs from the last one sent, else None."""
    facts = state.facts_of(order_id)
    if facts is None:
        return None
    measures = {v.name: state.measure(order_id, v) for v in (velocities or rules.velocities())}
    verdict = evaluate(rules, facts, measures)
    signature = (verdict.action, rules.version, *verdict.rule_ids, "|", *(f.rule_id for f in verdict.shadow))
    if state.sent.get(order_id) == signature:
        return None
    state.sent[order_id] = signature
    return verdict


def _with(facts: OrderFacts, **changes: Any) -> OrderFacts:
    from dataclasses import replace

    return replace(facts, **changes)


def _facts_dict(facts: OrderFacts) -> dict[str, Any]:
    out = asdict(facts)
    for name in _DECIMALS:
        out[name] = None if out[name] is None else str(out[name])
    for name in _TIMES:
        out[name] = out[name].isoformat()
    out["skus"], out["categories"] = list(facts.skus), list(facts.categories)
    return out


def _facts_from(raw: dict[str, Any]) -> OrderFacts:
    known = {f.name for f in fields(OrderFacts)}
    data = {k: v for k, v in raw.items() if k in known}
    for name in _DECIMALS:
        data[name] = None if data.get(name) is None else Decimal(data[name])
    for name in _TIMES:
        data[name] = datetime.fromisoformat(data[name])
    data["skus"], data["categories"] = tuple(data.get("skus") or ()), tuple(data.get("categories") or ())
    return OrderFacts(**data)
