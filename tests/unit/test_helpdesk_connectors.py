"""Helpdesk connectors, pure: each vendor's authentication and its documented payload → TicketCreated/Updated.

Fixtures follow the vendors' documentation: Zendesk's event-subscription schema
(`zen:event-type:ticket.*`, developer.zendesk.com "Webhook event types") and a trigger's JSON body of
placeholders; Freshdesk's "Simple" automation-rule payload (`freshdesk_webhook`, ticket_* placeholders);
Gorgias' ticket object as an HTTP integration's `{{ticket}}` template renders it.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shopstream.connectors.base import PayloadError
from shopstream.connectors.freshdesk import FreshdeskConnector, GorgiasConnector
from shopstream.connectors.helpdesk import GenericHelpdeskConnector, priority_of, split_tags, ticket_key
from shopstream.connectors.signing import shopstream_headers
from shopstream.connectors.zendesk import ZendeskConnector, language_code, zendesk_sign
from shopstream.schemas.models import TicketCreated, TicketUpdated

RECEIVED = datetime(2026, 12, 6, 10, 0, 5, tzinfo=UTC)
NOW = RECEIVED.timestamp()
ZD_SECRET = "dGhpc19pc19hX3NlY3JldA=="


def zendesk_event(kind: str = "ticket.created", **event: Any) -> dict[str, Any]:
    return {"type": f"zen:event-type:{kind}", "account_id": 88888888, "id": f"01HN-{kind}",
            "time": "2026-12-06T10:00:00Z", "zendesk_event_version": "2022-11-06", "subject": "zen:ticket:35436",
            "detail": {"actor_id": "900", "assignee_id": None, "brand_id": "1", "created_at": "2026-12-06T10:00:00Z",
                       "description": "Hallo, wo ist meine Bestellung #1001? Danke", "id": "35436",
                       "priority": "NORMAL", "requester_id": "366", "status": "NEW",
                       "subject": "Wo ist meine Bestellung?", "tags": ["web_widget"], "type": None,
                       "updated_at": "2026-12-06T10:00:00Z", "via": {"channel": "web_form"}},
            "event": event}


def zendesk_headers(body: bytes, secret: str = ZD_SECRET, timestamp: str = "2026-12-06T10:00:00Z") -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Zendesk-Webhook-Signature": zendesk_sign(secret, timestamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": timestamp, "X-Zendesk-Webhook-Id": "01GK8E6BKWMJZD2T8Y5AXJQMG5"}


def zendesk() -> ZendeskConnector:
    return ZendeskConnector(ZD_SECRET, now=lambda: NOW)


def raw(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def test_zendesk_signature_is_base64_hmac_of_timestamp_and_body() -> None:
    body = raw(zendesk_event())
    assert zendesk().verify(zendesk_headers(body), body)
    assert not zendesk().verify(zendesk_headers(body, secret="other"), body)
    assert not zendesk().verify(zendesk_headers(body), body + b" ")
    assert not zendesk().verify({}, body)
    assert not ZendeskConnector("", now=lambda: NOW).verify(zendesk_headers(body, secret=""), body)


def test_zendesk_timestamp_outside_the_tolerance_is_refused() -> None:
    body = raw(zendesk_event())
    stale = zendesk_headers(body, timestamp="2026-12-06T09:50:00Z")  # 10 min old, correctly signed
    assert not zendesk().verify(stale, body)
    assert zendesk().verify(zendesk_headers(body, timestamp=str(int(NOW) - 100)), body)  # unix seconds too
    assert not zendesk().verify(zendesk_headers(body, timestamp="yesterday"), body)


def test_zendesk_ticket_created_event() -> None:
    body = raw(zendesk_event())
    [out] = zendesk().translate(zendesk_headers(body), body, RECEIVED)
    record = out.record
    assert isinstance(record, TicketCreated)
    assert out.topic == "support.tickets" and out.key == "zendesk:35436"
    assert record.subject == "Wo ist meine Bestellung?" and "#1001" in (record.body or "")
    assert record.channel == "web_form" and record.priority == "normal" and record.customer_id == "366"
    assert record.helpdesk == "zendesk" and record.meta.source_event_id == "01HN-ticket.created"
    assert zendesk().delivery_id_from_body({}, body) == "01HN-ticket.created"


def test_zendesk_customer_comment_is_an_update_and_agent_comment_is_dropped() -> None:
    body = raw(zendesk_event("ticket.comment_added", comment={"id": "1", "body": "Any news?", "is_public": True,
                                                               "author": {"id": "366", "is_staff": False}}))
    [out] = zendesk().translate(zendesk_headers(body), body, RECEIVED)
    assert isinstance(out.record, TicketUpdated) and out.record.body == "Any news?"
    staff = raw(zendesk_event("ticket.comment_added", comment={"body": "On its way", "author": {"is_staff": True}}))
    assert zendesk().translate(zendesk_headers(staff), staff, RECEIVED) == []
    other = raw(zendesk_event("ticket.agent_assignment_changed"))
    assert zendesk().translate(zendesk_headers(other), other, RECEIVED) == []


def test_zendesk_trigger_body_with_placeholders() -> None:
    data = {"event": "created", "ticket": {
        "id": "77", "title": "Where is my order 1001?", "description": "Order 1001 has not arrived.",
        "latest_comment": "", "via": "Mail", "priority": "", "status": "New", "tags": "vip newsletter",
        "requester_email": "Ann@Example.com", "requester_id": "12", "locale": "English",
        "created_at": "2026-12-06T10:00:00Z", "updated_at": "2026-12-06T10:00:00Z"}}
    body = raw(data)
    [out] = zendesk().translate(zendesk_headers(body), body, RECEIVED)
    record = out.record
    assert isinstance(record, TicketCreated)
    assert record.language == "en" and record.customer_email == "ann@example.com"
    assert record.tags == ["vip", "newsletter"] and record.priority == "normal"
    assert zendesk().delivery_id_from_body({}, body) is None
    with pytest.raises(PayloadError, match=r"ticket\.id"):
        zendesk().translate({}, raw({"ticket": {"title": "x", "created_at": "2026-12-06T10:00:00Z"}}), RECEIVED)


def test_zendesk_redelivery_has_the_same_event_id() -> None:
    body = raw(zendesk_event())
    first = zendesk().translate({}, body, RECEIVED)[0].event_id
    assert zendesk().translate({}, body, datetime(2026, 12, 7, tzinfo=UTC))[0].event_id == first


def freshdesk_body(**overrides: Any) -> dict[str, Any]:
    hook = {"ticket_id": 123, "ticket_subject": "Rechnung fehlt", "ticket_description": "Bitte Rechnung zu 1002",
            "ticket_contact_email": "kunde@example.de", "ticket_status": "Open", "ticket_priority": "Medium",
            "ticket_source": "Email", "ticket_tags": "b2b,invoice", "ticket_created_at": "2026-12-06 10:00:00 +0100",
            "ticket_updated_at": "2026-12-06 10:30:00 +0100", "ticket_latest_public_comment": "Noch da?"}
    hook.update(overrides)
    return {"freshdesk_webhook": hook}


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def test_freshdesk_basic_auth() -> None:
    connector = FreshdeskConnector("agent:pw")
    assert connector.verify(basic("agent:pw"), b"{}")
    assert not connector.verify(basic("agent:nope"), b"{}")
    assert not connector.verify({"Authorization": "Bearer agent:pw"}, b"{}")
    assert not connector.verify({"Authorization": "Basic !!!"}, b"{}")
    assert not FreshdeskConnector("").verify(basic(":"), b"{}")


def test_freshdesk_created_and_updated() -> None:
    connector = FreshdeskConnector("agent:pw")
    [created] = connector.translate({}, raw(freshdesk_body()), RECEIVED)
    record = created.record
    assert isinstance(record, TicketCreated) and created.key == "freshdesk:123"
    assert record.priority == "normal" and record.channel == "email" and record.tags == ["b2b", "invoice"]
    assert record.created_at == datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    [updated] = connector.translate({}, raw(freshdesk_body(triggered_event="{ticket_action:note_added}")), RECEIVED)
    assert isinstance(updated.record, TicketUpdated) and updated.record.body == "Noch da?"
    with pytest.raises(PayloadError, match="ticket_id"):
        connector.translate({}, raw(freshdesk_body(ticket_id="")), RECEIVED)


def gorgias_ticket() -> dict[str, Any]:
    return {"id": 4242, "subject": "Return", "channel": "email", "language": "de", "status": "open",
            "priority": "high", "customer": {"id": 9, "email": "max@example.de"},
            "created_datetime": "2026-12-06T10:00:00+00:00", "updated_datetime": "2026-12-06T11:00:00+00:00",
            "tags": [{"id": 1, "name": "urgent-return"}],
            "messages": [{"id": 1, "body_text": "Ich möchte zurückgeben", "from_agent": False,
                          "created_datetime": "2026-12-06T10:00:00+00:00"},
                         {"id": 2, "body_text": "Gern", "from_agent": True,
                          "created_datetime": "2026-12-06T10:05:00+00:00"}]}


def test_gorgias_token_and_ticket_object() -> None:
    connector = GorgiasConnector("tok")
    assert connector.verify({"X-Shopstream-Token": "tok"}, b"")
    assert not connector.verify({"X-Shopstream-Token": "tik"}, b"") and not connector.verify({}, b"")
    [out] = connector.translate({}, raw({"event": "ticket-created", "ticket": gorgias_ticket()}), RECEIVED)
    record = out.record
    assert isinstance(record, TicketCreated) and out.key == "gorgias:4242"
    assert record.body == "Ich möchte zurückgeben" and record.language == "de" and record.priority == "high"
    assert record.tags == ["urgent-return"] and record.customer_email == "max@example.de"
    [upd] = connector.translate({}, raw({"event": "ticket-message-created", "ticket": gorgias_ticket()}), RECEIVED)
    assert isinstance(upd.record, TicketUpdated)
    assert connector.translate({}, raw({"event": "ticket-deleted", "ticket": gorgias_ticket()}), RECEIVED) == []


def test_generic_signed_json() -> None:
    connector = GenericHelpdeskConnector("hd")
    data = {"type": "created", "ticket_id": "T-1", "occurred_at": "2026-12-06T10:00:00Z", "subject": "Hi",
            "body": "order 1001", "language": "en", "customer_email": "a@b.c", "tags": ["x"], "priority": "urgent"}
    body = raw(data)
    assert connector.verify(shopstream_headers("hd", body), body)
    assert not connector.verify(shopstream_headers("nope", body), body)
    [out] = connector.translate(shopstream_headers("hd", body, "d-1"), body, RECEIVED)
    assert isinstance(out.record, TicketCreated) and out.record.priority == "urgent"
    assert out.record.meta.source_event_id == "d-1" and out.key == ticket_key("generic", "T-1")
    with pytest.raises(PayloadError, match="priority"):
        connector.translate({}, raw(data | {"priority": "asap"}), RECEIVED)
    with pytest.raises(PayloadError, match="neither subject nor body"):
        connector.translate({}, raw(data | {"subject": None, "body": None}), RECEIVED)
    with pytest.raises(PayloadError, match="not a helpdesk ticket delivery"):
        connector.translate({}, raw({"type": "created"}), RECEIVED)


def test_small_helpers() -> None:
    assert priority_of("URGENT") == "urgent" and priority_of(2) == "normal" and priority_of("meh") is None
    assert split_tags("a, b a") == ("a", "b") and split_tags([{"name": "x"}, "y"]) == ("x", "y")
    assert language_code("de-DE") == "de" and language_code("Deutsch") == "de" and language_code("Klingon") is None
