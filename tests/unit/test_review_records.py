"""What a verdict publishes: derived ids, the work item's details, the verdict naming its item."""

from __future__ import annotations

from decimal import Decimal

from shopstream.processors.review.evaluate import evaluate
from shopstream.processors.review.facts import order_facts
from shopstream.processors.review.records import outputs
from shopstream.processors.review.rules import load_rules
from shopstream.schemas.models import OrderReviewed, ReviewItem

from .review_events import T0, order

RULES = load_rules()


def verdict(**changes: object):  # type: ignore[no-untyped-def]
    return evaluate(RULES, order_facts(order(**changes), {"USD": Decimal("0.95")}))  # type: ignore[arg-type]


def test_a_hold_publishes_a_work_item_then_the_verdict_naming_it() -> None:
    [(q_topic, item), (d_topic, reviewed)] = outputs(verdict(total="409.94", currency="USD", orders_count=1), T0)
    assert (q_topic, d_topic) == ("review.queue", "review.decisions")
    assert isinstance(item, ReviewItem) and isinstance(reviewed, OrderReviewed)
    assert item.kind == "review_hold" and item.order_id == "o1"
    assert item.details["hold_reasons"] == "review:high-value" and item.details["rule_ids"] == "high-value,first-order"
    assert item.details["high-value.total_eur"] == "389.44" and item.details["rules_version"] == RULES.version
    assert reviewed.work_item_id == item.meta.event_id and reviewed.hold_reasons == ["review:high-value"]
    assert reviewed.action == "hold" and reviewed.meta.source == "shopstream.review"


def test_ids_are_derived_so_a_rerun_is_a_duplicate() -> None:
    first = outputs(verdict(total="409.94", currency="USD"), T0)
    again = outputs(verdict(total="409.94", currency="USD"), T0)
    assert [r.meta.event_id for _, r in first] == [r.meta.event_id for _, r in again]
    newer = outputs(verdict(total="409.94", currency="USD", minute=5), T0)
    assert newer[0][1].meta.event_id == first[0][1].meta.event_id  # same decision: the same work item
    assert newer[1][1].meta.event_id != first[1][1].meta.event_id  # a verdict per snapshot


def test_a_pass_publishes_only_the_verdict() -> None:
    [(topic, reviewed)] = outputs(verdict(), T0)
    assert topic == "review.decisions" and isinstance(reviewed, OrderReviewed) and reviewed.work_item_id is None
