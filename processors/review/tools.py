"""`shopstream rules test` and `shopstream rules backtest`: what a rules file does to sample or past orders.

`test FILE [--orders SAMPLES.json]` validates the file and decides each sample order in file order (so
velocity rules see the earlier samples), printing per order the action, the rules that fired with the
facts they saw, and the shadow rules that would have. The samples default to the shipped
`topology/rules/samples.json`: a JSON list whose entries are canonical OrderPlaced / OrderUpdated
documents (with `meta`) or compact ones, `{"id", "placed_at", "total", "currency", "email",
"orders_count", "billing": {address}, "shipping": {address}, "skus": [...]}`.

`backtest --since T [--until T] [--rules FILE]` reads the whole `shop.orders` topic (its retention),
decides every order placed in [since, until) with the file — orders before `since` still count for
velocity windows — and prints, per rule and whatever its mode, how many orders it would hold / flag /
block / allow and a few examples, then the verdicts the file as written gives. Pruning is off, so a
long period costs memory (about 1 KB per order).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopstream.schemas.models import Address, Customer, EventMeta, Money, OrderLine, OrderPlaced, OrderUpdated

from .evaluate import Verdict, matches
from .rules import RuleSet
from .velocity import ReviewState, decide, step

if TYPE_CHECKING:
    from shopstream.config import Settings

DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "topology" / "rules" / "samples.json"
_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:shopstream:rules:samples")


def _address(raw: dict[str, Any] | None) -> Address | None:
    return Address.model_validate(raw) if raw else None


def sample_event(raw: dict[str, Any]) -> OrderPlaced | OrderUpdated:
    """One sample order as an event (canonical documents as they are, compact ones converted)."""
    if "meta" in raw:
        kind = OrderUpdated if raw["meta"].get("event_type") == "OrderUpdated" else OrderPlaced
        return kind.model_validate(raw)
    at = datetime.fromisoformat(str(raw.get("placed_at", "2026-12-01T10:00:00+00:00")))
    currency = str(raw.get("currency", "EUR"))
    skus = raw.get("skus") or ["SAMPLE"]
    amount = Decimal(str(raw["total"]))
    lines = [OrderLine(line_id=str(i), sku=str(sku), quantity=1,
                       unit_price=Money(amount=amount if i == 0 else Decimal(0), currency=currency))
             for i, sku in enumerate(skus)]
    meta = EventMeta(event_id=str(uuid.uuid5(_NS, str(raw["id"]))), event_type="OrderPlaced", occurred_at=at,
                     recorded_at=at, source="sample")
    return OrderPlaced(meta=meta, order_id=str(raw["id"]), placed_at=at, currency=currency,
                       total=Money(amount=amount, currency=currency), lines=lines,
                       customer=Customer(email=raw.get("email"), orders_count=raw.get("orders_count")),
                       billing_address=_address(raw.get("billing")), shipping_address=_address(raw.get("shipping")))


def load_samples(path: Path) -> list[OrderPlaced | OrderUpdated]:
    """The sample orders of a JSON file (ValueError naming the entry that is wrong)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of orders")
    out = []
    for i, raw in enumerate(data):
        try:
            out.append(sample_event(raw))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: order {i}: {exc}") from None
    return out


def describe(verdict: Verdict) -> list[str]:
    """Lines saying what a verdict is and why."""
    lines = [f"order {verdict.order_id}: {verdict.action.upper()}"
             + (f" (hold reasons {', '.join(verdict.hold_reasons)})" if verdict.hold_reasons else "")]
    for fired in verdict.fired:
        seen = ", ".join(f"{k}={v}" for k, v in sorted(fired.evidence.items()))
        lines.append(f"  {fired.action:<5} {fired.rule_id}: {fired.description} [{seen}]")
    for shadow in verdict.shadow:
        seen = ", ".join(f"{k}={v}" for k, v in sorted(shadow.evidence.items()))
        lines.append(f"  shadow {shadow.rule_id} would {shadow.action} [{seen}]")
    return lines


def try_rules(rules: RuleSet, events: list[OrderPlaced | OrderUpdated]) -> list[Verdict]:
    """Every order's final verdict after feeding the samples in order (no pruning)."""
    rules = replace(rules, retention=timedelta(days=36500))
    state = ReviewState()
    last: dict[str, Verdict] = {}
    for event in events:
        for verdict in step(state, rules, event):
            last[verdict.order_id] = verdict
    return [last[oid] for oid in dict.fromkeys(e.order_id for e in events) if oid in last]


@dataclass
class Backtest:
    """What a rules file would have done to the orders of a period."""

    orders: int = 0
    events: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    per_rule: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def render(self, rules: RuleSet, seconds: float) -> str:
        """The report as text."""
        out = [f"backtest of rules {rules.version} ({rules.source}): {self.orders} orders from {self.events} "
               f"events in {seconds:.1f} s"]
        for rule in rules.rules:
            hits = sum(self.per_rule[rule.id].values())
            examples = ", ".join(self.examples[rule.id]) or "-"
            out.append(f"  {rule.id:<24} mode {rule.mode:<6} would {rule.action:<5} {hits:>6} orders "
                       f"({100 * hits / max(1, self.orders):.1f} %)  e.g. {examples}")
        out.append("verdicts with the file as written: " + ", ".join(
            f"{a} {self.verdicts[a]}" for a in ("block", "hold", "flag", "allow", "pass")))
        return "\n".join(out)


def backtest(rules: RuleSet, events: list[OrderPlaced | OrderUpdated], since: datetime,
             until: datetime | None = None, examples: int = 3) -> Backtest:
    """Decide every order placed in [since, until) (earlier ones still count for velocity)."""
    rules = replace(rules, retention=timedelta(days=36500))
    state = ReviewState()
    report = Backtest(events=len(events))
    for event in events:
        step(state, rules, event)
    velocities = rules.velocities()
    for oid, facts in sorted(state.facts.items(), key=lambda kv: (kv[1].placed_at, kv[0])):
        if facts.placed_at < since or (until is not None and facts.placed_at >= until):
            continue
        report.orders += 1
        state.sent.pop(oid, None)
        verdict = decide(state, rules, oid, velocities)
        assert verdict is not None
        report.verdicts[verdict.action] += 1
        measures = {v.name: state.measure(oid, v) for v in velocities}
        merged = state.facts_of(oid)
        assert merged is not None
        for rule in rules.rules:
            if matches(rule, rules, merged, measures):
                report.per_rule[rule.id][rule.action] += 1
                if len(report.examples[rule.id]) < examples:
                    report.examples[rule.id].append(oid)
    return report


def read_orders(settings: Settings, timeout_s: float = 600.0) -> list[OrderPlaced | OrderUpdated]:
    """Every OrderPlaced / OrderUpdated on `shop.orders` (all partitions, from the start, until quiet)."""
    import time

    from confluent_kafka import TopicPartition

    from shopstream.kafka import fetched_end, make_consumer
    from shopstream.serde import AvroSerde, SerdeError, make_registry_client
    from shopstream.topology import names

    topic = settings.topic(names.SHOP_ORDERS)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    consumer = make_consumer(settings, f"rules-backtest-{uuid.uuid4().hex[:8]}")
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out: list[OrderPlaced | OrderUpdated] = []
    done = {p for p, end in ends.items() if end <= 0}
    # Tansu's reported end is the last batch's base offset + 1; a fetch response carries the exact one
    exact: set[int] = set()
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while len(done) < len(ends) and time.monotonic() < deadline and time.monotonic() - quiet_since < 5:
        for msg in consumer.consume(1000, 0.5):
            quiet_since = time.monotonic()
            if msg.error():
                continue
            part = msg.partition() or 0
            if part not in exact:
                exact.add(part)
                ends[part] = fetched_end(consumer, topic, part, ends[part])
            if (msg.offset() or 0) + 1 >= ends[part]:
                done.add(part)
            try:
                event = serde.decode(msg.value())
            except SerdeError:
                continue
            if isinstance(event, OrderPlaced | OrderUpdated):
                out.append(event)
    consumer.close()
    return out


def parse_time(text: str) -> datetime:
    """An ISO-8601 time (naive means UTC) or a duration back from now such as 7d or 12h."""
    text = text.strip()
    units = {"d": 86400, "h": 3600, "m": 60}
    if text[:-1].isdigit() and text[-1] in units:
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)
