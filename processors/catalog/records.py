"""What the catalog core publishes (pure): work items, their automatic resolution, UpdatePrice commands.

Ids are uuid5 of what decided them, so a re-run after a crash re-emits identical records. Work items are
ReviewItems on `review.queue` keyed by SKU whose details name `queue` (`catalog` or `pricing`),
`subject_type: product` and `subject_id` (the SKU), the rule/check ids, the rules version and the evidence.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from shopstream.schemas.models import EventMeta, Money, ReviewItem, UpdatePrice, WorkItemDecided

SOURCE = "shopstream.catalog"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:shopstream:processor:catalog")


def meta(record: str, identity: str, at: datetime, sku: str, cause: str | None = None) -> EventMeta:
    """Event metadata with a derived id."""
    return EventMeta(event_id=str(uuid.uuid5(NAMESPACE, f"{record}:{identity}")), event_type=record,
                     occurred_at=at, recorded_at=at, source=SOURCE, source_event_id=None,
                     correlation_id=f"product:{sku}", causation_id=cause)


def work_item(sku: str, kind: str, queue: str, reason: str, rule_ids: list[str], version: str,
              evidence: dict[str, str], at: datetime, identity: str, cause: str | None) -> ReviewItem:
    """A work item about a product."""
    details = {"queue": queue, "subject_type": "product", "subject_id": sku, "rule_ids": ",".join(rule_ids),
               "rules_version": version, **evidence}
    return ReviewItem(meta=meta("ReviewItem", f"{sku}:{kind}:{identity}", at, sku, cause), order_id="", kind=kind,
                      reason=reason, details=details, event_id=cause, rule="+".join(rule_ids) or None)


def resolved(sku: str, item_id: str, kind: str, note: str, at: datetime) -> WorkItemDecided:
    """The catalog closing its own item (the cause went away: every blocking check passes again)."""
    return WorkItemDecided(meta=meta("WorkItemDecided", f"{item_id}:resolved", at, sku), item_id=item_id,
                           subject_type="product", subject_id=sku, decision="approve", decided_by=SOURCE,
                           decided_at=at, note=note, kind=kind)


def money(value: dict[str, Any] | None) -> Money | None:
    """A stored price ({amount, currency}) as Money."""
    return Money(amount=Decimal(value["amount"]), currency=value["currency"]) if value else None


def update_price(sku: str, price: dict[str, Any], previous: dict[str, Any] | None, reason: str, at: datetime,
                 identity: str, *, rule_ids: list[str] | None = None, version: str | None = None,
                 work_item_id: str | None = None, approved_by: str | None = None,
                 promotion_id: str | None = None, cause: str | None = None) -> UpdatePrice:
    """The command setting the shop's price."""
    new = money(price)
    assert new is not None
    return UpdatePrice(meta=meta("UpdatePrice", f"{sku}:{identity}", at, sku, cause), sku=sku, price=new,
                       previous_price=money(previous), reason=reason, work_item_id=work_item_id,
                       approved_by=approved_by, promotion_id=promotion_id, rule_ids=rule_ids or [],
                       rules_version=version)
