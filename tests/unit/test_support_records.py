"""Records of a decided ticket and of an approval: contents, deterministic ids, the one CancelOrder."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shopstream.processors.support.facts import OrderFacts
from shopstream.processors.support.records import (
    SUBJECT_TYPE,
    approval_records,
    decision_records,
    ticket_input,
)
from shopstream.processors.support.triage import SupportCore
from shopstream.schemas.models import (
    CancelOrder,
    EventMeta,
    ReviewItem,
    RouteTicket,
    SuggestReply,
    TicketCreated,
    WorkItemDecided,
)
from shopstream.views.work_items import item_document

AT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
SHIPPED = OrderFacts(order_id="5550001", order_number="#1001", status="shipped", fulfillment_status="shipped",
                     carrier="DHL", tracking_number="JJD0001234567890", tracking_url="https://dhl.de/t/JJD0001234567890")
OPEN = OrderFacts(order_id="5550002", order_number="#1002", status="ready_to_fulfill")


def meta(event_id: str = "11111111-1111-4111-8111-111111111111", kind: str = "TicketCreated") -> EventMeta:
    return EventMeta(event_id=event_id, event_type=kind, occurred_at=AT, recorded_at=AT, source="zendesk",
                     source_event_id=None, correlation_id="zendesk:ticket:1", causation_id=None)


def created(text: str) -> TicketCreated:
    return TicketCreated(meta=meta(), ticket_id="1", subject="", body=text, channel="email", priority="normal",
                         customer_email="ann@example.com", created_at=AT, helpdesk="zendesk")


@pytest.fixture(scope="module")
def core() -> SupportCore:
    return SupportCore.load()


def decide(core: SupportCore, text: str, order: OrderFacts | None) -> list[tuple[str, str, object]]:
    ticket = created(text)
    inp = ticket_input(ticket, "zendesk:1")
    return decision_records(ticket, "zendesk:1", core.decide(inp, core.understand(inp), order, None))


def test_wismo_auto_reply_names_versions_and_tracking(core: SupportCore) -> None:
    out = decide(core, "Wo ist meine Bestellung #1001?", SHIPPED)
    assert [topic for topic, _, _ in out] == ["commands.support", "commands.support"]
    route, reply = out[0][2], out[1][2]
    assert isinstance(route, RouteTicket) and isinstance(reply, SuggestReply)
    assert route.intent == "where_is_my_order" and route.order_status == "shipped" and route.order_id == "5550001"
    assert route.model_version == core.model.version and route.rules_version == core.routing.version
    assert route.confidence is not None and float(route.confidence) > 0.85
    assert reply.language == "de" and "JJD0001234567890" in reply.text and "#1001" in reply.text
    assert not reply.requires_approval and reply.policy_version == core.policy.version
    assert out == decide(core, "Wo ist meine Bestellung #1001?", SHIPPED)  # same ids on a redelivery


def test_cancel_request_becomes_a_work_item_about_an_order_request(core: SupportCore) -> None:
    out = decide(core, "Bitte stornieren Sie meine Bestellung #1002", OPEN)
    topics = [topic for topic, _, _ in out]
    assert topics == ["commands.support", "commands.support", "review.queue"]
    item = out[2][2]
    assert isinstance(item, ReviewItem) and out[2][1] == "5550002"
    assert item.kind == "support_cancel_order" and item.details["action"] == "CancelOrder"
    doc = item_document(item)
    assert doc["subject_type"] == SUBJECT_TYPE and doc["subject_id"] == "5550002" and doc["queue"] == "support"
    assert not any(isinstance(r, CancelOrder) for _, _, r in out)  # nothing changes before a person approves


def test_unknown_order_routes_with_the_reason(core: SupportCore) -> None:
    [(_, _, route)] = decide(core, "Where is my order #9999?", None)
    assert isinstance(route, RouteTicket) and route.order_id is None
    assert any("9999 not found" in r for r in route.reasons)


def decided(decision: str = "approve", kind: str = "support_cancel_order",
            subject_type: str = SUBJECT_TYPE) -> WorkItemDecided:
    return WorkItemDecided(meta=meta(str(uuid.uuid4()), "WorkItemDecided"), item_id="item-1",
                           subject_type=subject_type, subject_id="5550002", decision=decision, decided_by="maria",
                           decided_at=AT, note="ok", kind=kind, hold_reasons=[], rule_ids=[])


def test_approval_sends_cancel_order_once() -> None:
    event = decided()
    [(topic, key, command)] = approval_records(event)
    assert topic == "commands.shop" and key == "5550002" and isinstance(command, CancelOrder)
    assert command.requested_by == "user:maria" and "item-1" in (command.reason or "")
    assert approval_records(event) == [(topic, key, command)]  # a redelivery is the same record
    assert approval_records(decided("reject")) == []
    assert approval_records(decided(subject_type="order")) == []  # the orders worker's decisions
    assert approval_records(decided(kind="support_reply")) == []


def test_kpi_stats_document() -> None:
    from shopstream.processors.support.kpi import all_keys, stats

    assert all_keys("p:")[0] == ("orders", None, "p:support:kpi:orders")
    doc = stats({("orders", None): 200, ("tickets", None): 10, ("self_service", None): 4,
                 ("tickets", "where_is_my_order"): 6, ("self_service", "where_is_my_order"): 4}, [0.2, 0.4, 1.0])
    assert doc["tickets_per_100_orders"] == 5.0 and doc["self_service_share"] == 0.4
    assert doc["per_intent"] == {"where_is_my_order": {"tickets": 6, "self_service": 4,
                                                       "self_service_share": 0.6667, "suggested": 0}}
    assert doc["first_response_s"] == {"automatic_replies": 3, "median": 0.4}
    assert stats({}, [])["tickets_per_100_orders"] is None


def test_address_change_approval_needs_the_address_in_the_note() -> None:
    from shopstream.schemas.models import UpdateShippingAddress

    event = decided(kind="support_address_change").model_copy(update={"note": " Hauptstr. 5, 10115 Berlin "})
    [(topic, key, command)] = approval_records(event)
    assert topic == "commands.shop" and key == "5550002" and isinstance(command, UpdateShippingAddress)
    assert command.address_text == "Hauptstr. 5, 10115 Berlin" and command.work_item_id == "item-1"
    assert approval_records(event.model_copy(update={"note": None})) == []
