"""The pure support core: entities by rules, routing rules as data, drafts from real order state, governance."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from shopstream.processors.support.facts import CustomerFacts, OrderFacts, SegmentPolicy, TicketInput, segment_of
from shopstream.processors.support.policy import PolicyError, decide, load_policy
from shopstream.processors.support.replies import DEFAULT_REPLIES_PATH, RepliesError, draft, load_replies
from shopstream.processors.support.routing import RouteInput, RoutingError, load_routing, route
from shopstream.processors.support.text import detect_language, extract, mask_ibans
from shopstream.processors.support.triage import SupportCore

SHIPPED = OrderFacts(order_id="1001", status="shipped", fulfillment_status="shipped", carrier="DHL",
                     tracking_number="JJD0001234567890", tracking_url="https://nolp.dhl.de/?piececode=JJD0001234567890")
OPEN = OrderFacts(order_id="1002", status="ready_to_fulfill")
REFUNDED = OrderFacts(order_id="1003", status="refunded", fulfillment_status="delivered", refunded=Decimal("19.90"),
                      refunded_at="2026-12-01")


@pytest.fixture(scope="module")
def core() -> SupportCore:
    return SupportCore.load()


@pytest.mark.parametrize(("text", "orders"), [
    ("Wo ist meine Bestellung #1001?", ("1001",)), ("Bestellnummer: 1002 fehlt", ("1002",)),
    ("Bestell-Nr. SO-1005", ("SO-1005",)), ("order no. 1003 and order #1004", ("1003", "1004")),
    ("call me on 0176 1234567 or 030 123456", ()), ("Auftrag 99887", ("99887",)),
])
def test_order_numbers_in_the_shops_formats(text: str, orders: tuple[str, ...]) -> None:
    assert extract(text).order_numbers == orders


def test_tracking_email_and_iban_masking() -> None:
    found = extract("Sendungsnummer JJD0001234567890, UPS 1Z999AA10123456784, mail max@example.de, "
                    "IBAN DE89 3704 0044 0532 0130 00")
    assert found.tracking_numbers == ("1Z999AA10123456784", "JJD0001234567890")
    assert found.emails == ("max@example.de",) and found.ibans_masked == ("DE89…3000",)
    assert found.order_numbers == ()  # IBAN digits are never an order number
    assert "3704" not in mask_ibans("Konto DE89 3704 0044 0532 0130 00 bitte")


def test_language() -> None:
    assert detect_language("Wo ist meine Bestellung?") == "de"
    assert detect_language("Where is my order?") == "en"
    assert detect_language("Where is my order?", hint="de-DE") == "de"


def test_segments() -> None:
    policy = SegmentPolicy()
    assert segment_of(None, (), policy) == "unknown"
    assert segment_of(CustomerFacts(order_count=1), (), policy) == "first_time"
    assert segment_of(CustomerFacts(order_count=2), (), policy) == "repeat"
    assert segment_of(CustomerFacts(order_count=2, total_spent_eur=Decimal(900)), (), policy) == "high_value"
    assert segment_of(CustomerFacts(order_count=1), ("b2b",), policy) == "b2b"


def facts(**kw: object) -> RouteInput:
    base: dict[str, object] = dict(intent="where_is_my_order", confidence=0.95, order_status="shipped",
                                   fulfillment_status="shipped", segment="repeat", language="de", channel="email",
                                   text="Wo ist meine Bestellung?")
    return RouteInput(**(base | kw))  # type: ignore[arg-type]


def test_shipped_routing_rules() -> None:
    rules = load_routing()
    assert route(rules, facts()).rule_id == "wismo"
    assert route(rules, facts(order_status="unknown", fulfillment_status=None)).queue == "orders"
    assert route(rules, facts(confidence=0.4)).queue == "triage"
    assert route(rules, facts(fulfillment_status="exception")).queue == "logistics"
    assert route(rules, facts(text="Mein Anwalt meldet sich")).priority == "urgent"
    assert route(rules, facts(intent="damaged_or_wrong_item", segment="high_value")).priority == "urgent"
    assert route(rules, facts(intent="other")).rule_id == "default"


def test_routing_file_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "support.yaml"
    bad.write_text("version: x\nrules:\n  - {id: a, when: {intent: [wismo]}, queue: q}\n")
    with pytest.raises(RoutingError, match="unknown intent 'wismo'"):
        load_routing(bad)
    bad.write_text("version: x\nrules:\n  - {id: a, when: {intent: [other]}, queue: q}\n")
    with pytest.raises(RoutingError, match="last rule must match every ticket"):
        load_routing(bad)


def test_drafts_come_from_the_real_state() -> None:
    replies = load_replies()
    wismo = draft("where_is_my_order", "de", SHIPPED, replies)
    assert wismo is not None and "JJD0001234567890" in wismo.text and "DHL" in wismo.text
    assert wismo.facts_used["tracking_number"] == "JJD0001234567890"
    not_yet = draft("where_is_my_order", "en", OPEN, replies)
    assert not_yet is not None and not_yet.situation == "not_shipped" and "tracking" in not_yet.text
    late = draft("address_change", "en", SHIPPED, replies)
    assert late is not None and late.situation == "too_late" and late.action is None
    cancel = draft("cancel_order", "de", OPEN, replies)
    assert cancel is not None and cancel.action == "CancelOrder"
    refund = draft("refund_status", "en", REFUNDED, replies)
    assert refund is not None and "19.90 EUR" in refund.text and "2026-12-01" in refund.text
    assert draft("where_is_my_order", "de", None, replies) is None
    assert draft("product_question", "de", SHIPPED, replies) is None
    no_tracking = OrderFacts(order_id="1", status="delivered", fulfillment_status="delivered")
    assert draft("where_is_my_order", "de", no_tracking, replies) is None  # never a reply with a hole


def test_replies_file_refuses_unknown_placeholders(tmp_path: Path) -> None:
    text = DEFAULT_REPLIES_PATH.read_text()
    bad = tmp_path / "replies.yaml"
    bad.write_text(text.replace("Die Rechnung {invoice_ref}", "Die Rechnung {iban}"))
    with pytest.raises(RepliesError, match="unknown placeholder"):
        load_replies(bad)


def test_policy_never_auto_for_order_changes(tmp_path: Path) -> None:
    policy = load_policy()
    assert not decide(policy, "where_is_my_order", 0.95, None).requires_approval
    assert decide(policy, "where_is_my_order", 0.70, None).requires_approval
    cancel = decide(policy, "cancel_order", 0.999, "CancelOrder")
    assert cancel.requires_approval and cancel.action == "CancelOrder"
    assert not decide(policy, "other", 0.99, None).send
    bad = tmp_path / "automation.yaml"
    bad.write_text("version: x\nintents:\n  cancel_order: {reply: suggest, action: {name: CancelOrder, mode: auto}}\n")
    with pytest.raises(PolicyError, match="never auto"):
        load_policy(bad)
    bad.write_text("version: x\nintents:\n  invoice_request: {reply: auto}\n")
    with pytest.raises(PolicyError, match="min_confidence"):
        load_policy(bad)


def ticket(text: str, **kw: object) -> TicketInput:
    return TicketInput(ticket_id="zendesk:1", subject="", body=text, **kw)  # type: ignore[arg-type]


def test_triage_wismo_de_and_en(core: SupportCore) -> None:
    for text, word in (("Wo ist meine Bestellung #1001?", "Sendungsnummer"), ("Where is my order #1001?", "Tracking")):
        t = ticket(text)
        seen = core.understand(t)
        assert seen.candidates == ("1001",)
        decision = core.decide(t, seen, SHIPPED, None)
        assert decision.intent == "where_is_my_order" and decision.route.queue == "self-service"
        assert decision.draft is not None and word in decision.draft.text and decision.auto_reply
        assert any(core.model.version in r for r in decision.reasons)


def test_triage_unknown_order_and_low_confidence(core: SupportCore) -> None:
    t = ticket("Where is my order #9999?")
    decision = core.decide(t, core.understand(t), None, None)
    assert decision.route.queue == "orders" and "order 9999 not found" in decision.reasons
    assert decision.draft is None
    vague = ticket("asdf qwer zxcv")
    low = core.decide(vague, core.understand(vague), None, None)
    assert low.route.queue == "triage" and low.confidence < 0.6


def test_triage_order_changes_need_a_person(core: SupportCore) -> None:
    t = ticket("Bitte stornieren Sie meine Bestellung 1002")
    decision = core.decide(t, core.understand(t), OPEN, CustomerFacts(order_count=1))
    assert decision.needs_approval and decision.draft is not None and decision.draft.action == "CancelOrder"
    change = ticket("Please change the shipping address of order 1001, new address: 5 Main Street")
    late = core.decide(change, core.understand(change), SHIPPED, None)
    assert late.draft is not None and late.draft.action is None and "no longer change" in late.draft.text
