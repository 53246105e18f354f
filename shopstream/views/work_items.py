"""The work-queue view: work items from `review.queue`, their decisions from `review.decisions`, in Redis.

One JSON document per item, `{prefix}work-item:{id}` (the id is the ReviewItem's `meta.event_id`)::

    {"id", "queue", "kind", "subject_type", "subject_id", "status": "open" | "claimed" | "decided",
     "reason", "rule_ids": [...], "evidence": {...}, "hold_reasons": [...], "rules_version",
     "created_at", "claimed_by", "claimed_at", "decided_by", "decided_at", "decision", "note"}

and one index, `{prefix}work-items:index`, a sorted set whose members `<created ms, 15 digits>|<id>`
sort lexicographically by creation time then id: listing pages through it with ZRANGEBYLEX from an
opaque cursor (the last member seen), oldest first.

Rebuildable: the documents are a function of the two topics. An item (ReviewItem) is written once; a
decision (WorkItemDecided) is applied once per item — the first wins, a later different one changes
nothing — and may arrive before its item (another topic): it is kept on a stub document, not listed,
that the item completes. Claims are the one thing the topics do not carry: a claim lives in the view
only (a rebuilt view shows claimed items as open again; a claim is a courtesy among reviewers, the
decision is the record). Every update is a WATCH/MULTI compare-and-set on the document, so the sink
and the API never overwrite each other.

Which queue an item lands in, from its kind (`QUEUES`; `details.queue` overrides): review rules'
items `review`; payment reconciliation `payments`; returns `returns`; shipments `fulfillment`;
everything else `operations`. The subject is the order (`order_id`; type `order` unless
`details.subject_type` names another, e.g. support's `order_request`), else the payment an unmatched
payment names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from shopstream.schemas.models import ReviewItem, WorkItemDecided

QUEUES: dict[str, str] = {
    "review_hold": "review", "review_flag": "review", "review_block": "review",
    "hold": "payments", "over_capture": "payments", "double_capture": "payments", "currency_mismatch": "payments",
    "refund_exceeds_capture": "payments", "chargeback": "payments", "unmatched_payment": "payments",
    "shipment_exception": "fulfillment", "oversold": "fulfillment",
    "return_refused": "returns", "return_outside_window": "returns", "return_refund_unpriced": "returns",
    "return_refund_zero": "returns", "return_inspected_unapproved": "returns", "return_delivery_unknown": "returns",
    "return_without_request": "returns",
}
DEFAULT_QUEUE = "operations"
STATUSES = ("open", "claimed", "decided")
DECISIONS = ("approve", "reject")
_DECISION_FIELDS = ("decision", "decided_by", "decided_at", "note")


def iso(at: datetime) -> str:
    """ISO-8601 UTC with milliseconds and Z, as every view writes times."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _split(text: str | None) -> list[str]:
    return [p for p in (text or "").split(",") if p]


def item_document(item: ReviewItem) -> dict[str, Any]:
    """The view document of a new work item."""
    details = dict(item.details)
    if item.order_id:
        # A producer may name a narrower subject about the order (support: `order_request`), so that the
        # order's owner does not act on decisions that are not about the order itself.
        subject_type, subject_id = details.get("subject_type") or "order", item.order_id
    else:
        subject_type = "payment"
        subject_id = details.get("payment_id") or (item.meta.correlation_id or "").rsplit(":", 1)[-1]
    rule_ids = _split(details.get("rule_ids")) or ([item.rule] if item.rule else [])
    return {
        "id": item.meta.event_id, "queue": details.get("queue") or QUEUES.get(item.kind, DEFAULT_QUEUE),
        "kind": item.kind, "subject_type": subject_type, "subject_id": subject_id, "status": "open",
        "reason": item.reason, "rule_ids": rule_ids, "evidence": details,
        "hold_reasons": _split(details.get("hold_reasons")), "rules_version": details.get("rules_version"),
        "created_at": iso(item.meta.recorded_at), "claimed_by": None, "claimed_at": None,
        "decided_by": None, "decided_at": None, "decision": None, "note": None,
    }


def decision_fields(event: WorkItemDecided) -> dict[str, Any]:
    """What a decision sets on its item."""
    return {"decision": event.decision, "decided_by": event.decided_by, "decided_at": iso(event.decided_at),
            "note": event.note}


def merge_item(existing: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any] | None:
    """The document after an item arrives; None when nothing changes (it is known already)."""
    if existing is None:
        return new
    if existing.get("created_at") is not None:
        return None
    merged = {**new, **{k: existing.get(k) for k in _DECISION_FIELDS}}  # a decision that came first
    merged["status"] = "decided" if existing.get("decision") else new["status"]
    return merged


def merge_decision(existing: dict[str, Any] | None, item_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The document after a decision; None when the item is decided already (the first decision wins)."""
    if existing is None:
        return {"id": item_id, "created_at": None, "status": "decided", **fields}  # a stub the item completes
    if existing.get("decision"):
        return None
    return {**existing, **fields, "status": "decided"}


def merge_claim(existing: dict[str, Any] | None, who: str, at: datetime) -> tuple[dict[str, Any] | None, str | None]:
    """(new document or None when unchanged, why it cannot be claimed or None)."""
    if existing is None or existing.get("created_at") is None:
        return None, "not found"
    if existing.get("status") == "decided":
        return None, f"already decided ({existing.get('decision')} by {existing.get('decided_by')})"
    if existing.get("claimed_by") not in (None, who):
        return None, f"claimed by {existing['claimed_by']}"
    if existing.get("claimed_by") == who:
        return None, None
    return {**existing, "status": "claimed", "claimed_by": who, "claimed_at": iso(at)}, None


def index_member(doc: dict[str, Any]) -> str:
    """The index member of an item: creation time in ms, zero-padded, then the id (sorts by both)."""
    at = datetime.fromisoformat(str(doc["created_at"]).replace("Z", "+00:00"))
    return f"{int(at.timestamp() * 1000):015d}|{doc['id']}"


def matches(doc: dict[str, Any], filters: dict[str, str]) -> bool:
    """Whether a document passes the list filters (queue, status, kind, subject = `id` or `type:id`)."""
    for name, wanted in filters.items():
        if name == "subject":
            kind, _, ident = wanted.rpartition(":")
            if doc.get("subject_id") != ident or (kind and doc.get("subject_type") != kind):
                return False
        elif doc.get(name) != wanted:
            return False
    return True


class WorkItemStore:
    """The view in Redis through the sync client (the sink)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout_s: float = 5.0) -> WorkItemStore:
        """A store on its own client."""
        return cls(redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s), prefix)

    def key(self, item_id: str) -> str:
        """The document key of an item."""
        return f"{self.prefix}work-item:{item_id}"

    @property
    def index(self) -> str:
        """The listing index key."""
        return f"{self.prefix}work-items:index"

    def update(self, item_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> bool:
        """Compare-and-set one document with `change` (None: leave it); whether it was written."""
        key = self.key(item_id)
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    existing = orjson.loads(raw) if raw else None
                    new = change(existing)
                    if new is None:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.set(key, orjson.dumps(new))
                    if new.get("created_at") is not None and (existing is None or existing.get("created_at") is None):
                        pipe.zadd(self.index, {index_member(new): 0})
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def put_item(self, item: ReviewItem) -> bool:
        """Record a work item (once)."""
        doc = item_document(item)
        return self.update(doc["id"], lambda existing: merge_item(existing, doc))

    def put_decision(self, event: WorkItemDecided) -> bool:
        """Record a decision (the first per item)."""
        fields = decision_fields(event)
        return self.update(event.item_id, lambda existing: merge_decision(existing, event.item_id, fields))

    def get(self, item_id: str) -> dict[str, Any] | None:
        """One document (stubs included)."""
        raw = self.client.get(self.key(item_id))
        return orjson.loads(raw) if raw else None

    def close(self) -> None:
        """Close the client."""
        self.client.close()


class AsyncWorkItems:
    """The view through the asyncio client (the API): list, get, claim, and record a decision at once."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.index = f"{prefix}work-items:index"

    def key(self, item_id: str) -> str:
        """The document key of an item."""
        return f"{self.prefix}work-item:{item_id}"

    async def get(self, item_id: str) -> dict[str, Any] | None:
        """A listed item's document (None for unknown ids and stubs)."""
        raw = await self.client.get(self.key(item_id))
        doc = orjson.loads(raw) if raw else None
        return doc if doc is not None and doc.get("created_at") is not None else None

    async def list(self, filters: dict[str, str], limit: int, cursor: str | None,
                   scan_max: int = 5000) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` matching items after `cursor`, oldest first, and the cursor of the next page."""
        out: list[dict[str, Any]] = []
        start = f"({cursor}" if cursor else "-"
        scanned = 0
        while len(out) < limit and scanned < scan_max:
            members = await self.client.zrangebylex(self.index, start, "+", start=0, num=200)
            if not members:
                return out, None
            names = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
            docs = await self.client.mget([self.key(n.split("|", 1)[1]) for n in names])
            for name, raw in zip(names, docs, strict=True):
                scanned += 1
                start = f"({name}"
                doc = orjson.loads(raw) if raw else None
                if doc is not None and matches(doc, filters):
                    out.append(doc)
                    if len(out) == limit:
                        return out, name
        return out, start[1:] if start != "-" else None

    async def update(self, item_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
                     ) -> dict[str, Any] | None:
        """Compare-and-set one document with `change`; the document written, or None when left alone."""
        key = self.key(item_id)
        async with self.client.pipeline() as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    new = change(orjson.loads(raw) if raw else None)
                    if new is None:
                        await pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.set(key, orjson.dumps(new))
                    await pipe.execute()
                    return new
                except redis.WatchError:
                    continue
