"""Builders of order events and rule sets for the review core's unit tests (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from shopstream.processors.review.rules import RuleSet, compile_rules, parse_rules
from shopstream.schemas.models import Address, Customer, EventMeta, Money, OrderLine, OrderPlaced, OrderUpdated

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
_NS = uuid.UUID("0b7a9c52-52a5-4a55-b0a4-6b0f3f7e2d11")
RULES_DIR = Path(__file__).resolve().parents[2] / "topology" / "rules"
HOME = Address(name="Eva", line1="Hauptstr. 1", city="Berlin", postal_code="10115", country_code="DE")
ELSEWHERE = Address(name="Eva", line1="Rue 2", city="Paris", postal_code="75001", country_code="FR")


def meta(event_type: str, key: str, when: datetime) -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid5(_NS, f"{event_type}:{key}")), event_type=event_type,
                     occurred_at=when, recorded_at=when + timedelta(seconds=1), source="shopify",
                     source_event_id=key, correlation_id=f"order:{key}")


def order(order_id: str = "o1", *, total: str = "40", currency: str = "EUR", email: str | None = "eva@example.com",
          orders_count: int | None = 5, minute: float = 0, billing: Address | None = HOME,
          shipping: Address | None = HOME, skus: tuple[str, ...] = ("SKU-1",)) -> OrderPlaced:
    when = T0 + timedelta(minutes=minute)
    lines = [OrderLine(line_id=f"l{i}", sku=sku, quantity=1, unit_price=Money(amount=Decimal(total), currency=currency))
             for i, sku in enumerate(skus)]
    return OrderPlaced(meta=meta("OrderPlaced", order_id, when), order_id=order_id, placed_at=when, currency=currency,
                       total=Money(amount=Decimal(total), currency=currency), lines=lines,
                       customer=Customer(email=email, orders_count=orders_count), billing_address=billing,
                       shipping_address=shipping)


def update(placed: OrderPlaced, minute: float, **changes: object) -> OrderUpdated:
    when = T0 + timedelta(minutes=minute)
    data = placed.model_dump(exclude={"meta", "placed_at"})
    data.update(changes)
    return OrderUpdated(meta=meta("OrderUpdated", f"{placed.order_id}@{minute}", when), updated_at=when, **data)


def ruleset(text: str, folder: Path = RULES_DIR) -> RuleSet:
    """A RuleSet from YAML text (lists and rates relative to `folder`)."""
    return compile_rules(parse_rules(text, "test.yaml"), folder, "test.yaml", text)
