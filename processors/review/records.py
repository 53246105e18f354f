"""What a verdict publishes: an OrderReviewed for the orders worker and, when a person is needed, a work item (pure).

Every verdict becomes an `OrderReviewed` on `review.decisions` (keyed by order id): the orders worker
adds its hold reasons and, with `review.await_verdict`, releases a passed order only then. A verdict
that needs a person (hold, flag, block) also becomes a `ReviewItem` on `review.queue`, kind
`review_<action>`, whose details carry the hold reasons, the rule ids, the rules version and the
evidence (`<rule-id>.<fact>` -> the value that rule saw); shadow rules that would have fired are named
in `shadow_rule_ids`.

Ids are derived (uuid5) so a re-run after a crash re-emits identical records: the verdict's from the
order, its action, rules, rules version and the snapshot's source time; the work item's from the
order, action, rules and rules version only, so re-deciding a newer snapshot the same way raises no
second item.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from shopstream.schemas.models import EventMeta, OrderReviewed, ReviewItem
from shopstream.topology import names

from .evaluate import Verdict

SOURCE = "shopstream.review"
REVIEW_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:shopstream:processor:review")


def _meta(record: str, identity: str, at: datetime, correlation_id: str | None) -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid5(REVIEW_NAMESPACE, f"{record}:{identity}")), event_type=record,
                     occurred_at=at, recorded_at=at, source=SOURCE, source_event_id=None,
                     correlation_id=correlation_id, causation_id=None)


def work_item(verdict: Verdict, at: datetime) -> ReviewItem | None:
    """The work item of a verdict that needs a person; None for allow / pass."""
    if not verdict.needs_person:
        return None
    identity = f"{verdict.order_id}:{verdict.action}:{','.join(verdict.rule_ids)}@{verdict.rules_version}"
    fired = ", ".join(f"{f.rule_id} ({f.description})" for f in verdict.fired if f.action != "allow")
    details = {"hold_reasons": ",".join(verdict.hold_reasons), "rule_ids": ",".join(verdict.rule_ids),
               "rules_version": verdict.rules_version, "action": verdict.action,
               "shadow_rule_ids": ",".join(f.rule_id for f in verdict.shadow), **verdict.evidence()}
    return ReviewItem(meta=_meta("ReviewItem", identity, at, f"order:{verdict.order_id}"), order_id=verdict.order_id,
                      kind=f"review_{verdict.action}", reason=f"order {verdict.order_id}: {verdict.action} by {fired}",
                      details=details, rule="+".join(verdict.rule_ids) or None)


def order_reviewed(verdict: Verdict, at: datetime, item: ReviewItem | None) -> OrderReviewed:
    """The verdict for the orders worker (naming the work item when there is one)."""
    identity = (f"{verdict.order_id}:{verdict.action}:{','.join(verdict.rule_ids)}@{verdict.rules_version}"
                f":{verdict.facts_as_of}")
    return OrderReviewed(meta=_meta("OrderReviewed", identity, at, f"order:{verdict.order_id}"),
                         order_id=verdict.order_id, action=verdict.action, hold_reasons=list(verdict.hold_reasons),
                         rule_ids=list(verdict.rule_ids), shadow_rule_ids=[f.rule_id for f in verdict.shadow],
                         rules_version=verdict.rules_version, evidence=verdict.evidence(),
                         work_item_id=item.meta.event_id if item is not None else None,
                         facts_as_of=datetime.fromisoformat(verdict.facts_as_of) if verdict.facts_as_of else None)


def outputs(verdict: Verdict, at: datetime) -> list[tuple[str, OrderReviewed | ReviewItem]]:
    """(logical topic, record) to publish for one verdict, keyed by its order id: the item first."""
    item = work_item(verdict, at)
    out: list[tuple[str, OrderReviewed | ReviewItem]] = [(names.REVIEW_QUEUE, item)] if item is not None else []
    out.append((names.REVIEW_DECISIONS, order_reviewed(verdict, at, item)))
    return out
