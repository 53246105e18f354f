"""Freshdesk and Gorgias connectors: `POST /webhooks/helpdesk/freshdesk` and `/gorgias` (pure: no I/O here).

Neither vendor signs its webhooks; each documents the request's own authentication instead, which is
what is checked here (constant-time, 401 and nothing published when missing or wrong):

- **Freshdesk** ("Using webhooks in automation rules"): the *Trigger webhook* action of a rule on ticket
  creation or update, with "Requires authentication" → username + password, sent as HTTP Basic.
  `SHOPSTREAM_FRESHDESK_SECRET` is `username:password`. Content "Simple" with the ticket placeholders
  selected delivers::

      {"freshdesk_webhook": {"ticket_id": 123, "ticket_subject": "…", "ticket_description": "…",
       "ticket_contact_email": "…", "ticket_status": "Open", "ticket_priority": "Medium",
       "ticket_source": "Email", "ticket_tags": "a,b", "ticket_latest_public_comment": "…",
       "ticket_created_at": "…", "ticket_updated_at": "…", "triggered_event": "…"}}

  A rule on ticket updates is told apart by `triggered_event` (Freshdesk's `{{triggered_event}}`
  placeholder, which a creation rule does not fill): present and not naming creation → TicketUpdated.
  Freshdesk sends no event id: the event id derives from ticket id + kind + updated time.
- **Gorgias** (HTTP integration, Settings → HTTP integration): the request headers are whatever the
  integration declares; we document `X-Shopstream-Token: <SHOPSTREAM_GORGIAS_SECRET>`. Body template
  `{"event": "ticket-created", "ticket": {{ticket}}}` (or `ticket-updated`, `ticket-message-created`),
  i.e. Gorgias' ticket object: `id`, `subject`, `channel`, `language`, `status`, `priority`,
  `customer {id, email}`, `messages [{body_text, from_agent, created_datetime}]`, `tags [{name}]`,
  `created_datetime`, `updated_datetime`. Agent messages are not customer text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shopstream.connectors.base import Outgoing, PayloadError, lower_headers, parse_time
from shopstream.connectors.helpdesk import HelpdeskTicket, as_object, split_tags, text_or_none, ticket_events
from shopstream.connectors.payload import load_json_object
from shopstream.connectors.signing import constant_time_equal
from shopstream.connectors.zendesk import language_code

GORGIAS_TOKEN_HEADER = "x-shopstream-token"
_GORGIAS_KINDS = {"ticket-created": "created", "ticket-updated": "updated", "ticket-message-created": "updated"}


def basic_credentials(headers: Mapping[str, str]) -> str | None:
    """`user:password` from an `Authorization: Basic …` header; None when absent or malformed."""
    value = lower_headers(headers).get("authorization", "").strip()
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


class FreshdeskConnector:
    """Freshdesk automation-rule webhooks (HTTP Basic) → TicketCreated / TicketUpdated."""

    name = "freshdesk"
    # The Basic credentials are never parked with a body: a parked Freshdesk body cannot be redriven
    # (it would answer 401); the rule re-sends it from Freshdesk instead.
    kept_headers: tuple[str, ...] = ()

    def __init__(self, credentials: str) -> None:
        # `username:password`; empty disables the source (every request is 401).
        self._credentials = credentials

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """HTTP Basic credentials equal to the configured `username:password`."""
        given = basic_credentials(headers)
        return bool(self._credentials) and given is not None and constant_time_equal(given, self._credentials)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """Freshdesk sends no delivery id; the deterministic event id makes retries duplicates."""
        return None

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        data = load_json_object(body)
        hook = data.get("freshdesk_webhook", data)
        if not isinstance(hook, dict):
            raise PayloadError("freshdesk_webhook: expected an object")
        trigger = (text_or_none(hook.get("triggered_event")) or "").lower()
        created = not trigger or "creat" in trigger
        when = hook.get("ticket_created_at") if created else (hook.get("ticket_updated_at")
                                                              or hook.get("ticket_created_at"))
        ticket_id = text_or_none(hook.get("ticket_id"))
        if ticket_id is None:
            raise PayloadError("freshdesk_webhook.ticket_id: missing")
        body_text = hook.get("ticket_description") if created else hook.get("ticket_latest_public_comment")
        ticket = HelpdeskTicket(
            helpdesk=self.name, kind="created" if created else "updated", ticket_id=ticket_id,
            occurred_at=parse_time(_iso(when), "ticket_created_at" if created else "ticket_updated_at"),
            subject=text_or_none(hook.get("ticket_subject")), body=text_or_none(body_text),
            channel=(text_or_none(hook.get("ticket_source")) or "").lower() or None,
            priority=text_or_none(hook.get("ticket_priority")), status=text_or_none(hook.get("ticket_status")),
            customer_email=text_or_none(hook.get("ticket_contact_email")),
            customer_id=text_or_none(hook.get("ticket_requester_id")),
            language=language_code(hook.get("ticket_language")), tags=split_tags(hook.get("ticket_tags")))
        return ticket_events(ticket, received_at, None)


def _iso(value: object) -> object:
    # Freshdesk placeholders render "2026-12-06 10:00:00 +0100" style times; make them ISO-8601.
    if isinstance(value, str) and " " in value.strip():
        date, _, rest = value.strip().partition(" ")
        clock, _, offset = rest.partition(" ")
        if offset and len(offset) == 5 and offset[0] in "+-":
            return f"{date}T{clock}{offset[:3]}:{offset[3:]}"
    return value


class GorgiasConnector:
    """Gorgias HTTP-integration requests (shared token header) → TicketCreated / TicketUpdated."""

    name = "gorgias"
    # The token is never parked with a body (as Freshdesk's credentials): re-send from Gorgias instead.
    kept_headers: tuple[str, ...] = ()

    def __init__(self, token: str) -> None:
        self._token = token

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """The integration's `X-Shopstream-Token` header equals the configured token."""
        given = lower_headers(headers).get(GORGIAS_TOKEN_HEADER, "").strip()
        return bool(self._token) and bool(given) and constant_time_equal(given, self._token)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """Gorgias sends no delivery id; the deterministic event id makes retries duplicates."""
        return None

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        data = load_json_object(body)
        ticket = data.get("ticket", data)
        if not isinstance(ticket, dict):
            raise PayloadError("ticket: expected an object")
        event = str(data.get("event") or "ticket-created").strip().lower()
        if event not in _GORGIAS_KINDS:
            return []
        kind = _GORGIAS_KINDS[event]
        customer = as_object(ticket.get("customer"))
        message = _last_customer_message(ticket.get("messages")) or {}
        created = kind == "created"
        when = ticket.get("created_datetime") if created else (
            message.get("created_datetime") or ticket.get("updated_datetime"))
        ticket_id = text_or_none(ticket.get("id"))
        if ticket_id is None:
            raise PayloadError("ticket.id: missing")
        result = HelpdeskTicket(
            helpdesk=self.name, kind="created" if created else "updated", ticket_id=ticket_id,
            occurred_at=parse_time(when, "ticket.created_datetime" if created else "ticket.updated_datetime"),
            subject=text_or_none(ticket.get("subject")),
            body=text_or_none(message.get("body_text")),
            channel=text_or_none(ticket.get("channel")), priority=text_or_none(ticket.get("priority")),
            status=text_or_none(ticket.get("status")), customer_email=text_or_none(customer.get("email")),
            customer_id=text_or_none(customer.get("id")), language=language_code(ticket.get("language")),
            tags=split_tags(ticket.get("tags")),
            event_ref=None if created else text_or_none(message.get("id")))
        return ticket_events(result, received_at, None)


def _last_customer_message(messages: Any) -> dict[str, Any] | None:
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and not message.get("from_agent"):
            return message
    return None
