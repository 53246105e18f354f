"""Synthetic histories for the anomaly and KPI tests: plain `Fact`s in event-time order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from shopstream.processors.anomalies.alerts import AlertEvent
from shopstream.processors.anomalies.engine import Engine
from shopstream.processors.anomalies.facts import Fact
from shopstream.processors.anomalies.rules import AnomalyRules, load_rules

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp() * 1000)  # a Monday, 00:00 UTC


class Ids:
    """Deterministic event and order ids."""

    def __init__(self, prefix: str = "e") -> None:
        self.prefix = prefix
        self.n = 0

    def next(self) -> str:
        """The next id."""
        self.n += 1
        return f"{self.prefix}{self.n}"


def hour_of_orders(ids: Ids, start: int, sku: str, orders: int, cancelled: int, *, spread_ms: int = HOUR,
                   gateway: str = "shopify_payments") -> list[Fact]:
    """`orders` orders of `sku` spread over the hour from `start`, the first `cancelled` of them cancelled
    a minute after being placed (still inside the hour when spread over it)."""
    facts: list[Fact] = []
    step = max(1, (spread_ms - 120_000) // max(orders, 1))
    for i in range(orders):
        at = start + i * step
        order_id = f"{sku}-{ids.next()}"
        facts.append(Fact("order", ids.next(), at, order_id=order_id, lines=((sku, 1),), gateway=gateway))
        if i < cancelled:
            facts.append(Fact("cancel", ids.next(), at + 60_000, order_id=order_id))
    return facts


def normal_week(ids: Ids, sku: str = "A", days: int = 7, per_hour: int = 8, cancel_each: int = 1,
                start: int = T0) -> list[Fact]:
    """`days` of hourly orders of one SKU with `cancel_each` cancellation per hour."""
    out: list[Fact] = []
    for h in range(days * 24):
        out.extend(hour_of_orders(ids, start + h * HOUR, sku, per_hour, cancel_each))
    return sorted(out, key=lambda f: f.at_ms)


def run(facts: Iterable[Fact], rules: AnomalyRules | None = None, engine: Engine | None = None) -> list[AlertEvent]:
    """Every alert change an engine emits over `facts`."""
    engine = engine or Engine(rules or load_rules())
    out: list[AlertEvent] = []
    for fact in facts:
        out.extend(engine.apply(fact))
    return out


def of(alerts: Iterable[AlertEvent], detector: str, subject: str | None = None) -> list[AlertEvent]:
    """The alert changes of one detector (and subject)."""
    return [a for a in alerts if a.detector == detector and (subject is None or a.subject == subject)]


def ticks(start: int, hours: int) -> Iterator[int]:
    """Hourly clock values, for `Engine.advance`."""
    return (start + h * HOUR for h in range(hours))
