"""Zendesk connector: `POST /webhooks/helpdesk/zendesk` (pure: no I/O here).

Authenticity (Zendesk, "Verifying webhook authenticity"): `X-Zendesk-Webhook-Signature` is
base64(HMAC-SHA256(`X-Zendesk-Webhook-Signature-Timestamp` + raw body)) under the webhook's signing
secret (`SHOPSTREAM_ZENDESK_SECRET`). The timestamp (ISO-8601 as Zendesk sends it, e.g.
`2024-04-17T17:18:10Z`, or unix seconds) must lie within `tolerance_s` (300 s) of now, so a captured
request cannot be replayed later. Missing, wrong or stale: 401, nothing published.

Two payload shapes arrive at a Zendesk webhook, both read here:

1. Event subscriptions (`zen:event-type:ticket.*`, Zendesk's fixed schema)::

       {"type": "zen:event-type:ticket.created", "id": "<event id>", "time": "…",
        "detail": {"id": "35436", "subject": "…", "description": "…", "priority": "NORMAL",
                   "status": "NEW", "requester_id": "…", "tags": […], "via": {"channel": "web"},
                   "created_at": "…", "updated_at": "…"},
        "event": {"comment": {"body": "…", "author": {"is_staff": false}}}}   # comment_added

   `ticket.created` → TicketCreated; `ticket.comment_added` (by the customer: staff comments are
   acknowledged and dropped), `status_changed`, `priority_changed`, `tags_changed`, `subject_changed`
   → TicketUpdated; other types are acknowledged and ignored. Dedupe on the event `id`. These events
   carry the requester's id, not the e-mail.
2. A trigger's "Notify webhook" action with this JSON body (Zendesk placeholders; the README gives it to
   paste)::

       {"event": "created", "ticket": {"id": "{{ticket.id}}", "title": "{{ticket.title}}",
        "description": "{{ticket.description}}", "latest_comment": "{{ticket.latest_comment}}",
        "via": "{{ticket.via}}", "priority": "{{ticket.priority}}", "status": "{{ticket.status}}",
        "tags": "{{ticket.tags}}", "requester_email": "{{ticket.requester.email}}",
        "requester_id": "{{ticket.requester.id}}", "locale": "{{ticket.requester.language}}",
        "created_at": "{{ticket.created_at_with_timestamp}}",
        "updated_at": "{{ticket.updated_at_with_timestamp}}"}}

   `event` "updated" (a trigger on ticket updates) → TicketUpdated with the latest comment as body.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shopstream.connectors.base import Outgoing, PayloadError, lower_headers, parse_time
from shopstream.connectors.helpdesk import HelpdeskTicket, as_object, split_tags, text_or_none, ticket_events
from shopstream.connectors.payload import load_json_object
from shopstream.connectors.signing import hmac_sha256_base64, signed_by

SOURCE = "zendesk"
SIGNATURE_HEADER = "x-zendesk-webhook-signature"
TIMESTAMP_HEADER = "x-zendesk-webhook-signature-timestamp"
DEFAULT_TOLERANCE_S = 300
EVENT_PREFIX = "zen:event-type:ticket."
UPDATE_EVENTS = frozenset({"comment_added", "status_changed", "priority_changed", "tags_changed",
                           "subject_changed"})
# Zendesk's language names (`{{ticket.requester.language}}`) onto ISO codes; codes pass through.
_LANGUAGES = {"deutsch": "de", "german": "de", "english": "en", "englisch": "en"}


def zendesk_sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Zendesk-Webhook-Signature` value for `body` sent at `timestamp`."""
    return hmac_sha256_base64(secret, timestamp.encode() + body)


def _epoch(timestamp: str) -> float | None:
    if timestamp.isdigit():
        return float(timestamp)
    try:
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else None


def language_code(value: object) -> str | None:
    """`de` from `de`, `de-DE`, `Deutsch`; None when absent or unknown words."""
    text = text_or_none(value)
    if text is None:
        return None
    word = text.lower()
    if word in _LANGUAGES:
        return _LANGUAGES[word]
    code = word.replace("_", "-").split("-")[0]
    return code if len(code) == 2 and code.isalpha() else None


class ZendeskConnector:
    """Translates Zendesk ticket events and trigger notifications into TicketCreated / TicketUpdated."""

    name = SOURCE
    # What a redrive needs to verify the parked body again (against its first receipt's time).
    kept_headers: tuple[str, ...] = (SIGNATURE_HEADER, TIMESTAMP_HEADER, "x-zendesk-webhook-id",
                                     "x-zendesk-webhook-invocation-id")

    def __init__(self, secret: str, *, tolerance_s: int = DEFAULT_TOLERANCE_S,
                 now: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._tolerance_s = tolerance_s
        self._now = now

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Signature over timestamp + body, and the timestamp within the tolerance."""
        lowered = lower_headers(headers)
        timestamp = lowered.get(TIMESTAMP_HEADER, "").strip()
        given = lowered.get(SIGNATURE_HEADER, "").strip()
        sent = _epoch(timestamp) if timestamp else None
        if sent is None or abs(self._now() - sent) > self._tolerance_s:
            return False
        return signed_by(self._secret, given, body, lambda key, raw: zendesk_sign(key, timestamp, raw))

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """Zendesk names the event in the body, not in a header (see `delivery_id_from_body`)."""
        return None

    def delivery_id_from_body(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """The event subscription's event id (the same on every retry); None for trigger bodies."""
        try:
            data = load_json_object(body)
        except PayloadError:
            return None
        event_id = data.get("id")
        return str(event_id) if isinstance(data.get("type"), str) and event_id else None

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        data = load_json_object(body)
        ticket = _from_event(data) if "type" in data and "detail" in data else _from_trigger(data)
        if ticket is None:
            return []
        return ticket_events(ticket, received_at, self.delivery_id_from_body(headers, body))


def _object(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise PayloadError(f"{where}{key}: expected an object")
    return value


def _id(value: object, where: str) -> str:
    text = text_or_none(value)
    if text is None:
        raise PayloadError(f"{where}: the ticket id is missing")
    return text


def _from_event(data: dict[str, Any]) -> HelpdeskTicket | None:
    kind = str(data["type"])
    if not kind.startswith(EVENT_PREFIX):
        return None
    action = kind.removeprefix(EVENT_PREFIX)
    if action != "created" and action not in UPDATE_EVENTS:
        return None
    detail = _object(data, "detail", "")
    event = as_object(data.get("event"))
    body = text_or_none(detail.get("description"))
    if action == "comment_added":
        comment = as_object(event.get("comment"))
        author = as_object(comment.get("author"))
        if author.get("is_staff") is True:
            return None  # our own agents' replies are not customer messages
        body = text_or_none(comment.get("body"))
    elif action != "created":
        body = None  # a status or tag change carries no new customer text
    when = data.get("time") or detail.get("updated_at") or detail.get("created_at")
    via = as_object(detail.get("via"))
    return HelpdeskTicket(
        helpdesk=SOURCE, kind="created" if action == "created" else "updated",
        ticket_id=_id(detail.get("id"), "detail.id"), occurred_at=parse_time(when, "time"),
        subject=text_or_none(detail.get("subject")), body=body, channel=text_or_none(via.get("channel")),
        priority=text_or_none(detail.get("priority")), status=text_or_none(detail.get("status")),
        customer_id=text_or_none(detail.get("requester_id")), tags=split_tags(detail.get("tags")),
        event_ref=text_or_none(data.get("id")))


def _from_trigger(data: dict[str, Any]) -> HelpdeskTicket:
    ticket = _object(data, "ticket", "")
    kind = str(data.get("event") or "created").strip().lower()
    if kind not in ("created", "updated"):
        raise PayloadError(f"event: expected 'created' or 'updated', got {kind!r}")
    created = kind == "created"
    when = ticket.get("created_at") if created else (ticket.get("updated_at") or ticket.get("created_at"))
    body = ticket.get("description") if created else ticket.get("latest_comment")
    return HelpdeskTicket(
        helpdesk=SOURCE, kind="created" if created else "updated", ticket_id=_id(ticket.get("id"), "ticket.id"),
        occurred_at=parse_time(when, "ticket.created_at" if created else "ticket.updated_at"),
        subject=text_or_none(ticket.get("title")), body=text_or_none(body),
        channel=text_or_none(ticket.get("via")), priority=text_or_none(ticket.get("priority")),
        status=text_or_none(ticket.get("status")), customer_email=text_or_none(ticket.get("requester_email")),
        customer_id=text_or_none(ticket.get("requester_id")), language=language_code(ticket.get("locale")),
        tags=split_tags(ticket.get("tags")))
