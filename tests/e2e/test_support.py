"""Customer service through the public faces: signed helpdesk webhooks in; commands and the work queue out.

`shopstream dev` runs every worker, `worker support` included, with a Zendesk signing secret. What it shows
is issue 15's "Must show": a signed Zendesk ticket "Wo ist meine Bestellung #<n>?" for a shipped order →
RouteTicket (intent where_is_my_order, the order's status) and a German SuggestReply naming the tracking
number; the same in English; an address change for a fulfilled order → a reply explaining why and no
command; an unknown order number → routed with the reason; a low-confidence ticket → the triage queue;
approving a suggested cancellation in the work queue → CancelOrder once; a wrong signature → 401 and
nothing published; the KPIs on GET /v1/support/stats.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shopstream.auth import TokenEntry, hash_token, load_tokens, write_tokens
from shopstream.connectors.zendesk import zendesk_sign
from shopstream.dev.process import spawn_dev
from shopstream.dev.shopify_samples import get_json, shopify_order
from shopstream.schemas.models import CancelOrder, RouteTicket, SuggestReply, UpdateShippingAddress
from tests.e2e.conftest import CARRIER_SECRET, SHOPIFY_SECRET, RunningStack
from tests.e2e.test_order_lifecycle import Outputs, _order_id, _post, _wait, poll_status, post_carrier, shopify_create
from tests.e2e.test_review import post_json
from tests.workers import TEST_TOKENS

pytestmark = pytest.mark.broker
ZENDESK_SECRET = "e2e-zendesk-signing-secret"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`shopstream dev` with a Zendesk secret and a token per role."""
    token = uuid.uuid4().hex[:8]
    state = tmp_path_factory.mktemp("dev")
    dev = spawn_dev(state, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, SHOPSTREAM_TOPIC_PREFIX=f"e2esp{token}.",
                    SHOPSTREAM_REDIS_PREFIX=f"test:e2esp{token}:", REDIS_URL=redis_url,
                    SHOPSTREAM_SHOPIFY_SECRET=SHOPIFY_SECRET, SHOPSTREAM_CARRIER_SECRET=CARRIER_SECRET,
                    SHOPSTREAM_ZENDESK_SECRET=ZENDESK_SECRET, KAFKA_SESSION_TIMEOUT_S="6",
                    SCHEMA_REGISTRY_URL="")
    dev.wait_ready()
    try:
        tokens = state / "api-tokens.yaml"
        entries = list(load_tokens(tokens).tokens)
        entries += [TokenEntry(name=name, roles=(role,), sha256=hash_token(secret))  # type: ignore[arg-type]
                    for role, (name, secret) in TEST_TOKENS.items()]
        time.sleep(1.1)  # a new modification time, which the API checks
        write_tokens(tokens, entries)
        yield RunningStack(dev=dev, prefix=f"e2esp{token}.", bootstrap=kafka_bootstrap, mappings_dir=state)
    finally:
        dev.stop()


@pytest.fixture(scope="module")
def outputs(stack: RunningStack) -> Outputs:
    return Outputs(stack)


def post_ticket(stack: RunningStack, text: str, *, email: str = "jane@example.com",
                secret: str = ZENDESK_SECRET) -> tuple[str, tuple[int, dict[str, Any]]]:
    """A Zendesk `ticket.created` event, signed as Zendesk signs; returns the ticket key and the response."""
    ticket = uuid.uuid4().hex[:10]
    body = json.dumps({"type": "zen:event-type:ticket.created", "id": f"evt-{ticket}",
                       "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                       "detail": {"id": ticket, "subject": text, "description": text, "priority": "NORMAL",
                                  "status": "NEW", "requester_id": "366", "tags": [], "via": {"channel": "email"},
                                  "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}}).encode()
    stamp = str(int(time.time()))
    headers = {"X-Zendesk-Webhook-Signature-Timestamp": stamp,
               "X-Zendesk-Webhook-Signature": zendesk_sign(secret, stamp, body)}
    return f"zendesk:{ticket}", _post(f"{stack.connectors}/webhooks/helpdesk/zendesk", body, headers)


def decided(stack: RunningStack, outputs: Outputs, text: str) -> tuple[RouteTicket, SuggestReply | None]:
    key, (status, body) = post_ticket(stack, text)
    assert status == 200, body
    [route] = outputs.wait(f"RouteTicket of {key}", "commands.support", RouteTicket, key=key)
    time.sleep(0.5)  # the reply is produced in the same batch as the route
    replies = outputs.records("commands.support", SuggestReply, key=key)
    return route, replies[0] if replies else None


def shipped_order(stack: RunningStack) -> tuple[int, str]:
    """A paid Shopify order the carrier has in transit: (order id, the shop's order number)."""
    order_id = _order_id()
    now = datetime.now(UTC).replace(microsecond=0)
    shopify_create(stack, shopify_order(order_id, created_at=now - timedelta(hours=3)))
    poll_status(stack, order_id, status="ready_to_fulfill")
    post_carrier(stack, order_id, "InTransit", now - timedelta(hours=1))
    poll_status(stack, order_id, status="shipped")
    return order_id, str(order_id % 100000)


def test_wrong_zendesk_signature_is_401_and_publishes_nothing(stack: RunningStack, outputs: Outputs) -> None:
    key, (status, _) = post_ticket(stack, "Wo ist meine Bestellung #1?", secret="not-the-secret")
    assert status == 401
    time.sleep(2)
    assert outputs.records("commands.support", RouteTicket, key=key) == []


def test_where_is_my_order_de_and_en_answered_from_the_real_state(stack: RunningStack, outputs: Outputs) -> None:
    order_id, number = shipped_order(stack)
    tracking = f"1Z{order_id}"
    for text, language, word in ((f"Wo ist meine Bestellung #{number}?", "de", "Sendungsnummer"),
                                 (f"Where is my order #{number}?", "en", "Tracking number")):
        route, reply = decided(stack, outputs, text)
        assert route.intent == "where_is_my_order" and route.order_id == str(order_id)
        assert route.order_status == "shipped" and route.queue == "self-service" and route.model_version
        assert reply is not None and reply.language == language and tracking in reply.text and word in reply.text
        assert reply.facts_used["tracking_number"] == tracking and not reply.requires_approval
        assert reply.policy_version and reply.model_version == route.model_version


def test_address_change_after_shipping_is_explained_not_commanded(stack: RunningStack, outputs: Outputs) -> None:
    order_id, number = shipped_order(stack)
    route, reply = decided(stack, outputs, f"Bitte ändern Sie die Lieferadresse meiner Bestellung #{number}, "
                                           "ich bin umgezogen.")
    assert route.intent == "address_change" and route.order_status == "shipped"
    assert reply is not None and reply.action is None and "nicht mehr ändern" in reply.text
    time.sleep(2)
    assert outputs.records("commands.shop", UpdateShippingAddress, key=str(order_id)) == []


def test_unknown_order_routes_with_the_reason_and_vague_text_goes_to_triage(stack: RunningStack,
                                                                           outputs: Outputs) -> None:
    route, reply = decided(stack, outputs, "Where is my order #99999999?")
    assert route.order_id is None and reply is None
    assert any("99999999 not found" in r for r in route.reasons)
    vague, _ = decided(stack, outputs, "asdf qwer zxcv")
    assert vague.queue == "triage" and vague.confidence is not None and float(vague.confidence) < 0.6


def test_an_approved_cancellation_sends_cancel_order_once(stack: RunningStack, outputs: Outputs) -> None:
    order_id = _order_id()
    shopify_create(stack, shopify_order(order_id))
    poll_status(stack, order_id, status="ready_to_fulfill")
    route, reply = decided(stack, outputs, f"Bitte stornieren Sie meine Bestellung #{order_id % 100000}.")
    assert route.intent == "cancel_order" and reply is not None and reply.requires_approval
    assert reply.action == "CancelOrder"

    def item() -> dict[str, Any] | None:
        code, body = get_json(f"{stack.api}/v1/work-items?queue=support", TEST_TOKENS["viewer"][1])
        return next((i for i in body.get("items", []) if i["subject_id"] == str(order_id)), None) if code == 200 \
            else None

    found = _wait("the support work item", item, stack)
    assert found["kind"] == "support_cancel_order" and found["subject_type"] == "order_request"
    assert found["evidence"]["model_version"] == route.model_version
    assert outputs.records("commands.shop", CancelOrder, key=str(order_id)) == []
    decide = f"{stack.api}/v1/work-items/{found['id']}/decision"
    status, body = post_json(decide, {"decision": "approve", "note": "customer asked, not shipped"}, "reviewer")
    assert status == 202, body
    [cancel] = outputs.wait("CancelOrder", "commands.shop", CancelOrder, key=str(order_id))
    assert cancel.requested_by == "user:test-reviewer"
    assert post_json(decide, {"decision": "approve"}, "reviewer")[0] == 200  # already decided
    time.sleep(3)
    assert len(outputs.records("commands.shop", CancelOrder, key=str(order_id))) == 1


def test_kpis(stack: RunningStack) -> None:
    code, body = get_json(f"{stack.api}/v1/support/stats", TEST_TOKENS["viewer"][1])
    assert code == 200, body
    assert body["tickets"] >= 1 and body["orders"] >= 1 and body["tickets_per_100_orders"] is not None
