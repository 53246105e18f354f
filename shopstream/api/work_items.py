"""The work-queue API: list, read, claim and decide work items (role `viewer` to read, `reviewer` to act).

    GET  /v1/work-items?queue=&status=&kind=&subject=&limit=&cursor=
         200 {"items": [...], "next_cursor": "..." | null}, oldest first; `subject` is an id or `type:id`;
         `limit` 1..500 (default 50); 400 {"error": "invalid request", "reason"}
    GET  /v1/work-items/{id}                 200 the item; 404 {"error": "work item not found", "id"}
    POST /v1/work-items/{id}/claim           200 the item, claimed by the caller (again: 200, unchanged);
                                             409 {"error": "conflict", "reason"} when another person holds
                                             it or it is decided
    POST /v1/work-items/{id}/decision        {"decision": "approve" | "reject", "note": "..."}
                                             202 {"item"} once the decision is on `review.decisions`;
                                             the same decision again: 200 {"item", "note": "already decided"};
                                             another one after a decision: 409; 503 when Kafka did not
                                             confirm (nothing decided, try again)

A decision is first reserved in Redis (`{prefix}work-item-decision:{id}`, SET NX, 10 min), so two reviewers
racing get one 202 and one 409; then the WorkItemDecided (keyed by the subject id, `meta.source`
`user:<token name>`, id derived from the item and the decision so a retried request is one event
downstream) is published and confirmed; then the view document shows it at once (the sink applies the
same event later, which changes nothing). A failed publish drops the reservation.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from aiohttp import web

from shopstream.api.security import ROUTE_ROLES_KEY, principal_of
from shopstream.config import Settings
from shopstream.kafka import AsyncProducer
from shopstream.schemas.models import EventMeta, WorkItemDecided
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import names
from shopstream.views.work_items import (
    DECISIONS,
    STATUSES,
    AsyncWorkItems,
    decision_fields,
    merge_claim,
    merge_decision,
)

ITEMS_KEY: web.AppKey[AsyncWorkItems] = web.AppKey("work_items", AsyncWorkItems)
PUBLISHER_KEY: web.AppKey[Any] = web.AppKey("decision_publisher", object)
DECISIONS_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:shopstream:api:decisions")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_CURSOR = re.compile(r"\d{15}\|[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
LIMIT_DEFAULT, LIMIT_MAX, NOTE_MAX = 50, 500, 2000
RESERVATION_S = 600
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class DecisionPublisher:
    """Publishes WorkItemDecided on `review.decisions` through the shared producer; confirmed or raises.

    Kafka and the registry are opened on the first decision: reading the API needs neither."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic(names.REVIEW_DECISIONS)
        self._serde: AvroSerde | None = None
        self._producer: AsyncProducer | None = None

    async def publish(self, event: WorkItemDecided) -> None:
        """Write the decision keyed by its subject id and wait for the broker."""
        if self._producer is None or self._serde is None:
            self._serde = AvroSerde(make_registry_client(self.settings.schema_registry_url))
            self._producer = AsyncProducer(self.settings)
        await self._producer.publish(self.topic, event.subject_id.encode(), self._serde.encode(self.topic, event))

    def close(self) -> None:
        """Flush and close the producer (when one was opened)."""
        if self._producer is not None:
            self._producer.close()
            self._producer = None  # let librdkafka's client go now, not when the app is collected


def _bad(reason: str) -> web.Response:
    return web.json_response({"error": "invalid request", "reason": reason}, status=400)


def _item_id(request: web.Request) -> str | None:
    value = request.match_info["item_id"]
    return value if _ID.fullmatch(value) else None


async def list_items(request: web.Request) -> web.Response:
    query = request.query
    filters = {k: query[k] for k in ("queue", "status", "kind", "subject") if query.get(k)}
    if "status" in filters and filters["status"] not in STATUSES:
        return _bad(f"status must be one of {', '.join(STATUSES)}")
    if any(len(v) > 200 for v in filters.values()):
        return _bad("filter values are at most 200 characters")
    try:
        limit = int(query.get("limit", LIMIT_DEFAULT))
    except ValueError:
        return _bad("limit must be a whole number")
    if not 1 <= limit <= LIMIT_MAX:
        return _bad(f"limit must be between 1 and {LIMIT_MAX}")
    cursor = query.get("cursor") or None
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        return _bad("cursor is not one this API gave out")
    try:
        items, next_cursor = await request.app[ITEMS_KEY].list(filters, limit, cursor)
    except _REDIS_DOWN:
        return web.json_response({"error": "work queue unavailable"}, status=503)
    return web.json_response({"items": items, "next_cursor": next_cursor})


async def get_item(request: web.Request) -> web.Response:
    item_id = _item_id(request)
    if item_id is None:
        return _bad("invalid work item id")
    try:
        doc = await request.app[ITEMS_KEY].get(item_id)
    except _REDIS_DOWN:
        return web.json_response({"error": "work queue unavailable"}, status=503)
    if doc is None:
        return web.json_response({"error": "work item not found", "id": item_id}, status=404)
    return web.json_response(doc)


async def claim_item(request: web.Request) -> web.Response:
    item_id = _item_id(request)
    if item_id is None:
        return _bad("invalid work item id")
    who = principal_of(request).name
    items = request.app[ITEMS_KEY]
    problem: list[str | None] = [None]

    def change(existing: dict[str, Any] | None) -> dict[str, Any] | None:
        new, problem[0] = merge_claim(existing, who, datetime.now(UTC))
        return new

    await items.update(item_id, change)
    if problem[0] == "not found":
        return web.json_response({"error": "work item not found", "id": item_id}, status=404)
    if problem[0] is not None:
        return web.json_response({"error": "conflict", "reason": problem[0]}, status=409)
    return web.json_response(await items.get(item_id))


async def decide_item(request: web.Request) -> web.Response:
    item_id = _item_id(request)
    if item_id is None:
        return _bad("invalid work item id")
    try:
        body = await request.json()
    except ValueError:
        return _bad("the body must be JSON: {\"decision\": \"approve\" | \"reject\", \"note\": \"...\"}")
    decision = body.get("decision") if isinstance(body, dict) else None
    note = body.get("note") if isinstance(body, dict) else None
    if decision not in DECISIONS:
        return _bad("decision must be approve or reject")
    if note is not None and (not isinstance(note, str) or len(note) > NOTE_MAX):
        return _bad(f"note must be text of at most {NOTE_MAX} characters")
    items = request.app[ITEMS_KEY]
    doc = await items.get(item_id)
    if doc is None:
        return web.json_response({"error": "work item not found", "id": item_id}, status=404)
    if doc.get("decision"):
        return _already(doc, decision)
    lock = f"{items.prefix}work-item-decision:{item_id}"
    # Expires so that an API process dying between reserving and publishing cannot block the item for good;
    # once published, the item document itself says it is decided.
    if not await items.client.set(lock, decision, nx=True, ex=RESERVATION_S):
        held = await items.client.get(lock)
        return _already({**doc, "decision": held.decode() if isinstance(held, bytes) else held}, decision)
    who = principal_of(request).name
    event = _event(doc, decision, who, note)
    try:
        await request.app[PUBLISHER_KEY].publish(event)
    except Exception as exc:
        await items.client.delete(lock)
        return web.json_response({"error": "decision not recorded", "reason": f"{type(exc).__name__}: {exc}"},
                                 status=503)
    fields = decision_fields(event)
    new = await items.update(item_id, lambda existing: merge_decision(existing, item_id, fields))
    return web.json_response({"item": new or await items.get(item_id)}, status=202)


def _already(doc: dict[str, Any], decision: str) -> web.Response:
    if doc.get("decision") == decision:
        return web.json_response({"item": doc, "note": "already decided"}, status=200)
    return web.json_response({"error": "conflict", "reason": f"already decided: {doc.get('decision')}"}, status=409)


def _event(doc: dict[str, Any], decision: str, who: str, note: str | None) -> WorkItemDecided:
    now = datetime.now(UTC)
    meta = EventMeta(event_id=str(uuid.uuid5(DECISIONS_NS, f"{doc['id']}:{decision}")), event_type="WorkItemDecided",
                     occurred_at=now, recorded_at=now, source=f"user:{who}", source_event_id=None,
                     correlation_id=f"work-item:{doc['id']}", causation_id=doc["id"])
    return WorkItemDecided(meta=meta, item_id=doc["id"], subject_type=doc["subject_type"],
                           subject_id=doc["subject_id"], decision=decision, decided_by=who, decided_at=now, note=note,
                           kind=doc.get("kind"), hold_reasons=list(doc.get("hold_reasons") or []),
                           rule_ids=list(doc.get("rule_ids") or []))


def add_routes(app: web.Application, settings: Settings) -> None:
    """The work-queue routes, their roles, and the decision publisher opened and closed with the app."""
    app.router.add_get("/v1/work-items", list_items)
    app.router.add_get("/v1/work-items/{item_id}", get_item)
    app.router.add_post("/v1/work-items/{item_id}/claim", claim_item)
    app.router.add_post("/v1/work-items/{item_id}/decision", decide_item)
    app[ROUTE_ROLES_KEY].update({("POST", "/v1/work-items/{item_id}/claim"): "reviewer",
                                 ("POST", "/v1/work-items/{item_id}/decision"): "reviewer"})

    async def publisher(app: web.Application) -> AsyncIterator[None]:
        app[PUBLISHER_KEY] = DecisionPublisher(settings)
        yield
        app[PUBLISHER_KEY].close()

    app.cleanup_ctx.append(publisher)
