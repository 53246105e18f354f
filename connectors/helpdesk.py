"""Helpdesk tickets: the shared canonical mapping, and the generic signed JSON source (pure: no I/O here).

Every helpdesk connector (`connectors/zendesk.py`, `freshdesk.py`, `gorgias.py`, and the generic one
below) reads its vendor's payload into one `HelpdeskTicket` and `ticket_events` turns that into
`TicketCreated` / `TicketUpdated` on `support.tickets`, keyed by `<helpdesk>:<ticket id>` (ticket ids
are only unique within one helpdesk; one key per ticket keeps a ticket's events in order on one
partition). The event id derives from (helpdesk, ticket id, kind, the vendor's event id or time), so a
redelivery is a duplicate downstream even when the front's dedupe store missed it.

Generic source: `POST /webhooks/helpdesk` (any helpdesk, or a shop's contact form), the shopstream
signing scheme (`connectors/signing.py`: `X-Shopstream-Signature` = hex HMAC-SHA256 of the raw body with
`SHOPSTREAM_HELPDESK_SECRET`; dedupe on `X-Shopstream-Delivery-Id`). Body::

    {
      "type": "created" | "updated",          # required
      "ticket_id": "T-1",                      # required
      "occurred_at": "2026-12-06T10:00:00Z",   # required, ISO-8601 with offset
      "subject": "Wo ist meine Bestellung?",   # required for created
      "body": "…", "channel": "email",         # optional (channel defaults to "web")
      "language": "de", "customer_email": "…", "customer_id": "…", "order_id": "1001",
      "tags": ["vip"], "priority": "low|normal|high|urgent", "status": "open"
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shopstream.connectors.base import Outgoing, PayloadError, make_meta, parse_time
from shopstream.connectors.payload import parse_body, representing
from shopstream.connectors.signing import ShopstreamSigned, shopstream_delivery_id
from shopstream.schemas.models import TicketCreated, TicketPriority, TicketUpdated
from shopstream.topology import names

TOPIC = names.SUPPORT_TICKETS
PRIORITIES: frozenset[str] = frozenset({"low", "normal", "high", "urgent"})
# Vendors' priority words onto ours (Freshdesk "medium", Zendesk upper case, numbers 1..4).
_PRIORITY_WORDS = {"medium": "normal", "1": "low", "2": "normal", "3": "high", "4": "urgent"}
#: The longest body kept on the event: a ticket thread pasted whole must not make the record huge.
MAX_BODY_CHARS = 20_000


@dataclass(frozen=True)
class HelpdeskTicket:
    """One ticket event as any helpdesk delivered it, in plain values."""

    helpdesk: str
    kind: Literal["created", "updated"]
    ticket_id: str
    occurred_at: datetime
    subject: str | None = None
    body: str | None = None
    channel: str | None = None
    priority: str | None = None
    status: str | None = None
    customer_email: str | None = None
    customer_id: str | None = None
    language: str | None = None
    order_id: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    #: The vendor's id of this event when it has one (dedupe identity); else the time is used.
    event_ref: str | None = None


def ticket_key(helpdesk: str, ticket_id: str) -> str:
    """The `support.tickets` key of a ticket: unique across helpdesks."""
    return f"{helpdesk}:{ticket_id}"


def priority_of(value: object) -> TicketPriority | None:
    """A vendor's priority (word or number) as ours; None when absent or unknown."""
    if value is None:
        return None
    word = str(value).strip().lower()
    word = _PRIORITY_WORDS.get(word, word)
    return word if word in PRIORITIES else None  # type: ignore[return-value]


def split_tags(value: object) -> tuple[str, ...]:
    """Tags from a list, or from the comma/space-separated string a placeholder renders."""
    if value is None:
        return ()
    if isinstance(value, list):
        items = [str(t.get("name", "")) if isinstance(t, dict) else str(t) for t in value]
    else:
        items = str(value).replace(",", " ").split()
    return tuple(dict.fromkeys(t.strip() for t in items if t and t.strip()))


def as_object(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else {} (optional nested objects of vendor payloads)."""
    return value if isinstance(value, dict) else {}


def text_or_none(value: object) -> str | None:
    """A stripped string, None for absent or empty (placeholders render missing values as '')."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def ticket_events(ticket: HelpdeskTicket, received_at: datetime, source_event_id: str | None) -> list[Outgoing]:
    """The canonical event of one helpdesk ticket event."""
    event_type = "TicketCreated" if ticket.kind == "created" else "TicketUpdated"
    identity = f"{ticket.ticket_id}:{ticket.kind}:{ticket.event_ref or ticket.occurred_at.isoformat()}"
    meta = make_meta(source=ticket.helpdesk, event_type=event_type, identity=identity,
                     occurred_at=ticket.occurred_at, received_at=received_at, source_event_id=source_event_id,
                     correlation_id=f"{ticket.helpdesk}:ticket:{ticket.ticket_id}")
    body = ticket.body[:MAX_BODY_CHARS] if ticket.body else None
    email = ticket.customer_email.lower() if ticket.customer_email else None
    priority = priority_of(ticket.priority)
    record: BaseModel
    with representing(f"ticket {ticket.ticket_id}"):
        if ticket.kind == "created":
            if not ticket.subject and not body:
                raise PayloadError(f"ticket {ticket.ticket_id}: neither subject nor body")
            record = TicketCreated(meta=meta, ticket_id=ticket.ticket_id, order_id=ticket.order_id,
                                   subject=ticket.subject or "", body=body, channel=ticket.channel or "web",
                                   priority=priority or "normal", customer_email=email, tags=list(ticket.tags),
                                   created_at=ticket.occurred_at, language=ticket.language,
                                   customer_id=ticket.customer_id, status=ticket.status, helpdesk=ticket.helpdesk)
        else:
            record = TicketUpdated(meta=meta, ticket_id=ticket.ticket_id, order_id=ticket.order_id,
                                   subject=ticket.subject, body=body, status=ticket.status, priority=priority,
                                   customer_email=email, tags=list(ticket.tags), language=ticket.language,
                                   helpdesk=ticket.helpdesk, updated_at=ticket.occurred_at)
    return [Outgoing(topic=TOPIC, key=ticket_key(ticket.helpdesk, ticket.ticket_id), record=record)]


class GenericTicketBody(BaseModel):
    """The generic helpdesk delivery (see the module docstring)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    type: Literal["created", "updated"]
    ticket_id: str = Field(min_length=1, max_length=200)
    occurred_at: str = Field(min_length=1)
    subject: str | None = None
    body: str | None = None
    channel: str | None = None
    language: str | None = Field(None, max_length=16)
    customer_email: str | None = None
    customer_id: str | None = None
    order_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    priority: str | None = None
    status: str | None = None


class GenericHelpdeskConnector(ShopstreamSigned):
    """`POST /webhooks/helpdesk`: tickets in shopstream's own signed JSON."""

    name = "helpdesk"

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        data = parse_body(GenericTicketBody, body, "helpdesk ticket delivery")
        if data.priority is not None and priority_of(data.priority) is None:
            raise PayloadError(f"priority: expected one of {sorted(PRIORITIES)}, got {data.priority!r}")
        ticket = HelpdeskTicket(
            helpdesk="generic", kind=data.type, ticket_id=data.ticket_id,
            occurred_at=parse_time(data.occurred_at, "occurred_at"), subject=data.subject, body=data.body,
            channel=data.channel, priority=data.priority, status=data.status, customer_email=data.customer_email,
            customer_id=data.customer_id, language=data.language, order_id=data.order_id, tags=split_tags(data.tags))
        return ticket_events(ticket, received_at, shopstream_delivery_id(headers))
