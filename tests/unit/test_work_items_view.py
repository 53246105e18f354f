"""The work-queue view's documents: item shape, queues and subjects, and merges in any arrival order."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from shopstream.schemas.models import EventMeta, ReviewItem, WorkItemDecided
from shopstream.views.work_items import (
    decision_fields,
    index_member,
    item_document,
    matches,
    merge_claim,
    merge_decision,
    merge_item,
)

AT = datetime(2026, 12, 6, 9, 30, 0, 123000, tzinfo=UTC)


def meta(kind: str, n: int = 1) -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}{n}")), event_type=kind, occurred_at=AT,
                     recorded_at=AT, source="x", correlation_id="stripe:payment:pi_5")


ITEM = ReviewItem(meta=meta("ReviewItem"), order_id="1001", kind="review_hold", reason="held",
                  details={"hold_reasons": "review:a,review:b", "rule_ids": "a,b", "rules_version": "r9"})


def decision(kind: str, n: int = 1) -> WorkItemDecided:
    return WorkItemDecided(meta=meta("WorkItemDecided", n), item_id=ITEM.meta.event_id, subject_type="order",
                           subject_id="1001", decision=kind, decided_by=f"p{n}", decided_at=AT, note=None)


def test_an_item_document_names_queue_subject_reasons_and_evidence() -> None:
    doc = item_document(ITEM)
    assert (doc["queue"], doc["subject_type"], doc["subject_id"], doc["status"]) == ("review", "order", "1001", "open")
    assert doc["hold_reasons"] == ["review:a", "review:b"] and doc["rule_ids"] == ["a", "b"]
    assert doc["rules_version"] == "r9" and doc["created_at"] == "2026-12-06T09:30:00.123Z"
    unmatched = item_document(ReviewItem(meta=meta("ReviewItem", 2), order_id="", kind="unmatched_payment",
                                         reason="r", rule="stripe.metadata.order_id"))
    assert (unmatched["subject_type"], unmatched["subject_id"], unmatched["queue"]) == ("payment", "pi_5", "payments")
    assert unmatched["rule_ids"] == ["stripe.metadata.order_id"]
    assert item_document(ITEM.model_copy(update={"kind": "parked_expired"}))["queue"] == "operations"
    assert index_member(doc).startswith("001796549400123|")


def test_item_and_decisions_in_any_arrival_order_end_in_one_document() -> None:
    events = [("item", None), ("decision", decision("approve", 1)), ("decision", decision("reject", 2))]
    results = []
    for order in itertools.permutations(events):
        doc = None
        for kind, event in order:
            new = merge_item(doc, item_document(ITEM)) if kind == "item" else merge_decision(
                doc, ITEM.meta.event_id, decision_fields(event))  # type: ignore[arg-type]
            doc = new if new is not None else doc
        results.append(doc)
    # whichever decision came first wins; the item is complete either way
    assert {r["decision"] for r in results if r} == {"approve", "reject"}
    assert all(r is not None and r["status"] == "decided" and r["kind"] == "review_hold" for r in results)
    first_approve = [r for (o, r) in zip(itertools.permutations(events), results, strict=True)
                     if next(e for k, e in o if k == "decision").decision == "approve"]  # type: ignore[union-attr]
    assert all(r["decided_by"] == "p1" for r in first_approve if r)


def test_claims() -> None:
    doc = item_document(ITEM)
    claimed, problem = merge_claim(doc, "alice", AT)
    assert problem is None and claimed is not None and claimed["status"] == "claimed"
    assert merge_claim(claimed, "alice", AT) == (None, None)
    assert merge_claim(claimed, "bob", AT) == (None, "claimed by alice")
    decided = merge_decision(claimed, ITEM.meta.event_id, decision_fields(decision("approve")))
    assert decided is not None and merge_claim(decided, "bob", AT)[1] == "already decided (approve by p1)"
    assert merge_claim(None, "bob", AT) == (None, "not found")


def test_filters() -> None:
    doc = item_document(ITEM)
    assert matches(doc, {"queue": "review", "status": "open", "kind": "review_hold"})
    assert matches(doc, {"subject": "1001"}) and matches(doc, {"subject": "order:1001"})
    assert not matches(doc, {"subject": "payment:1001"}) and not matches(doc, {"status": "decided"})
