"""People in the loop, through the public faces only: webhooks in, the API out (orders, history, ATP, work items).

`shopstream dev` runs every worker, the review worker included, with the orders policy's
`review.await_verdict` on (no ReleaseOrder before the rules' verdict). Tokens: the dev admin token dev
made, plus one test token per role added to the same tokens file while the stack runs (the API reads
a changed file without a restart). What it shows is the issue's list: a first order of 409.94 USD
held with its rules and evidence and a work item; 401 / 403; a reviewer's approval releases it once,
the history names the reviewer and the note; the same decision twice changes nothing; an address
mismatch held and rejected (cancelled, reservations released in ATP); the fourth order of an email
within an hour held; a repeat customer's 40 € order released without a work item; a chargeback hold
lifted by a decision.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shopstream.auth import TokenEntry, hash_token, load_tokens, write_tokens
from shopstream.dev.process import spawn_dev
from shopstream.dev.shopify_samples import get_json, shopify_order
from shopstream.schemas.models import CancelOrder, ReleaseOrder
from tests.e2e.conftest import (
    CARRIER_SECRET,
    RETURNS_SECRET,
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    WOOCOMMERCE_SECRET,
    RunningStack,
)
from tests.e2e.test_order_lifecycle import (
    Outputs,
    _accepted,
    _order_id,
    _wait,
    dispute,
    get_atp,
    ingest_stock,
    payment_intent,
    poll_order,
    post_stripe,
    shopify_create,
)
from tests.workers import TEST_TOKENS

pytestmark = pytest.mark.broker
PARIS = {"name": "Jane Doe", "address1": "12 Rue de Rivoli", "address2": None, "city": "Paris", "zip": "75001",
         "province_code": None, "country_code": "FR"}


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`shopstream dev` with the review gate on and a token per role."""
    token = uuid.uuid4().hex[:8]
    prefix = f"e2erv{token}."
    policy = tmp_path_factory.mktemp("policy") / "orders_policy.yaml"
    shipped = (Path(__file__).resolve().parents[2] / "topology" / "orders_policy.yaml").read_text()
    policy.write_text(shipped.replace("await_verdict: false", "await_verdict: true"))
    state = tmp_path_factory.mktemp("dev")
    dev = spawn_dev(state, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, SHOPSTREAM_TOPIC_PREFIX=prefix,
                    SHOPSTREAM_REDIS_PREFIX=f"test:e2erv{token}:", REDIS_URL=redis_url,
                    SHOPSTREAM_SHOPIFY_SECRET=SHOPIFY_SECRET, SHOPSTREAM_STRIPE_SECRET=STRIPE_SECRET,
                    SHOPSTREAM_WOOCOMMERCE_SECRET=WOOCOMMERCE_SECRET, SHOPSTREAM_CARRIER_SECRET=CARRIER_SECRET,
                    SHOPSTREAM_RETURNS_SECRET=RETURNS_SECRET, SHOPSTREAM_ORDERS_POLICY=str(policy),
                    KAFKA_SESSION_TIMEOUT_S="6", SCHEMA_REGISTRY_URL="")
    dev.wait_ready()
    try:
        tokens = state / "api-tokens.yaml"
        entries = list(load_tokens(tokens).tokens)
        entries += [TokenEntry(name=name, roles=(role,), sha256=hash_token(secret))  # type: ignore[arg-type]
                    for role, (name, secret) in TEST_TOKENS.items()]
        time.sleep(1.1)  # a new modification time, which the API checks
        write_tokens(tokens, entries)
        yield RunningStack(dev=dev, prefix=prefix, bootstrap=kafka_bootstrap, mappings_dir=state)
    finally:
        dev.stop()


@pytest.fixture(scope="module")
def outputs(stack: RunningStack) -> Outputs:
    return Outputs(stack)


def bearer(role: str | None) -> str | None:
    return TEST_TOKENS[role][1] if role else None


def post_json(url: str, body: dict[str, Any] | None, role: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {bearer(role)}"} if role else {})}
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def order(order_id: int, *, total: str, currency: str = "EUR", orders_count: int = 7, email: str | None = None,
          shipping: dict[str, Any] | None = None, sku: str = "E2E-REVIEW", quantity: int = 1,
          created_at: datetime | None = None, financial_status: str = "paid") -> dict[str, Any]:
    """A Shopify order totalling `total` (incl. 4.90 shipping) from a customer with `orders_count` orders."""
    unit = (Decimal(total) - Decimal("4.90")) / quantity
    body = shopify_order(order_id, financial_status=financial_status, currency=currency,
                         lines=[(sku, quantity, f"{unit:.2f}")], created_at=created_at)
    mail = email or f"customer-{order_id}@example.com"
    body["email"] = mail
    body["customer"] = {**body["customer"], "email": mail, "orders_count": orders_count}
    if shipping is not None:
        body["shipping_address"] = shipping
    return body


def items_of(stack: RunningStack, order_id: int) -> list[dict[str, Any]]:
    code, body = get_json(f"{stack.api}/v1/work-items?subject=order:{order_id}", bearer("viewer"))
    assert code == 200, body
    return list(body["items"])


def wait_item(stack: RunningStack, order_id: int, kind: str) -> dict[str, Any]:
    return _wait(f"{kind} work item of {order_id}", lambda: next(
        (i for i in items_of(stack, order_id) if i["kind"] == kind), None), stack)


def releases(outputs: Outputs, order_id: int) -> list[ReleaseOrder]:
    return outputs.records("commands.fulfillment", ReleaseOrder, key=str(order_id))


def history(stack: RunningStack, order_id: int) -> list[dict[str, Any]]:
    code, body = get_json(f"{stack.api}/v1/orders/{order_id}/history", bearer("viewer"))
    return list(body["changes"]) if code == 200 else []


def test_a_first_order_above_150_eur_is_held_then_approved_and_released_once(stack: RunningStack,
                                                                             outputs: Outputs) -> None:
    order_id = _order_id()
    shopify_create(stack, order(order_id, total="409.94", currency="USD", orders_count=1))
    doc = poll_order(stack, order_id, lambda d: d["hold_reasons"] == ["review:high-value"], "held by review")
    assert doc["status"] == "on_hold" and releases(outputs, order_id) == []
    item = wait_item(stack, order_id, "review_hold")
    assert (item["queue"], item["status"], item["rule_ids"]) == ("review", "open", ["high-value", "first-order"])
    assert item["hold_reasons"] == ["review:high-value"] and item["rules_version"]
    assert item["evidence"]["high-value.total_eur"] == "389.44"
    assert item["evidence"]["first-order.first_order"] == "true"

    decide = f"{stack.api}/v1/work-items/{item['id']}/decision"
    approve = {"decision": "approve", "note": "called the customer, order confirmed"}
    assert post_json(decide, approve, None)[0] == 401
    assert post_json(decide, approve, "viewer")[0] == 403
    assert post_json(f"{stack.api}/v1/work-items/{item['id']}/claim", None, "reviewer")[0] == 200
    status, body = post_json(decide, approve, "reviewer")
    assert status == 202, body
    poll_order(stack, order_id, lambda d: d["status"] == "ready_to_fulfill" and d["hold_reasons"] == [], "released")
    _wait("the ReleaseOrder", lambda: releases(outputs, order_id), stack)
    entry = _wait("the decision on the history", lambda: next(
        (c for c in history(stack, order_id) if c["rule"].startswith("decision.approve")), None), stack)
    assert (entry["source"], entry["note"], entry["work_item_id"]) == (
        "user:test-reviewer", "called the customer, order confirmed", item["id"])

    again = post_json(decide, approve, "reviewer")
    assert again[0] == 200 and again[1]["note"] == "already decided"
    assert post_json(decide, {"decision": "reject"}, "reviewer")[0] == 409
    time.sleep(3)  # anything a second decision would have caused has had time to show
    assert len(releases(outputs, order_id)) == 1
    assert len([c for c in history(stack, order_id) if c["rule"].startswith("decision.")]) == 1


def test_an_address_mismatch_is_held_and_a_rejection_cancels_and_frees_the_stock(
        stack: RunningStack, outputs: Outputs, tmp_path: Path) -> None:
    order_id = _order_id()
    sku = f"E2E-RV-{order_id}"
    ingest_stock(stack, tmp_path / "stock.csv", sku, 10, datetime.now(UTC) - timedelta(hours=1))
    _wait(f"ATP of {sku}", lambda: (lambda a: a if a and a["available"] == 10 else None)(get_atp(stack, sku)), stack)
    shopify_create(stack, order(order_id, total="60.00", shipping=PARIS, sku=sku, quantity=2))
    poll_order(stack, order_id, lambda d: d["hold_reasons"] == ["review:address-mismatch"], "held")
    _wait(f"reservation of {sku}", lambda: (lambda a: a if a and a["reserved"] == 2 else None)(get_atp(stack, sku)),
          stack)
    item = wait_item(stack, order_id, "review_hold")
    assert item["evidence"]["address-mismatch.country_mismatch"] == "true"
    status, body = post_json(f"{stack.api}/v1/work-items/{item['id']}/decision",
                             {"decision": "reject", "note": "address looks like a reshipper"}, "reviewer")
    assert status == 202, body
    poll_order(stack, order_id, lambda d: d["status"] == "cancelled", "cancelled")
    atp = _wait(f"released reservation of {sku}", lambda: (lambda a: a if a and a["reserved"] == 0 else None)(
        get_atp(stack, sku)), stack)
    assert atp["available"] == 10
    [cancel] = outputs.wait("CancelOrder", "commands.shop", CancelOrder, key=str(order_id))
    assert cancel.requested_by == "user:test-reviewer" and releases(outputs, order_id) == []


def test_the_fourth_order_of_an_email_within_an_hour_is_held(stack: RunningStack) -> None:
    email = f"busy-{uuid.uuid4().hex[:8]}@example.com"
    now = datetime.now(UTC).replace(microsecond=0)
    ids = [_order_id() for _ in range(4)]
    for n, order_id in enumerate(ids):
        placed_at = now - timedelta(minutes=40 - 10 * n)
        shopify_create(stack, order(order_id, total="30.00", email=email, created_at=placed_at))
    for order_id in ids[:3]:
        poll_order(stack, order_id, lambda d: d["status"] == "ready_to_fulfill", "released")
    doc = poll_order(stack, ids[3], lambda d: d["hold_reasons"] == ["review:email-velocity"], "held by velocity")
    assert doc["status"] == "on_hold"
    item = wait_item(stack, ids[3], "review_hold")
    assert item["evidence"]["email-velocity.velocity.orders.per_email.1h"] == "4"


def test_a_repeat_customers_40_eur_order_is_released_without_a_work_item(stack: RunningStack, outputs: Outputs,
                                                                          tmp_path: Path) -> None:
    order_id = _order_id()
    sku = f"E2E-RV-{order_id}"  # in stock: nothing for a person to look at
    ingest_stock(stack, tmp_path / "stock.csv", sku, 5, datetime.now(UTC) - timedelta(hours=1))
    _wait(f"ATP of {sku}", lambda: get_atp(stack, sku), stack)
    shopify_create(stack, order(order_id, total="40.00", orders_count=9, sku=sku))
    poll_order(stack, order_id, lambda d: d["status"] == "ready_to_fulfill", "released")
    assert len(_wait("the ReleaseOrder", lambda: releases(outputs, order_id), stack)) == 1
    assert items_of(stack, order_id) == []


def test_a_chargeback_hold_is_lifted_by_a_decision(stack: RunningStack) -> None:
    order_id = _order_id()
    total = Decimal("54.20")
    shopify_create(stack, order(order_id, total=str(total), financial_status="pending"))
    _accepted(post_stripe(stack, "payment_intent.succeeded", payment_intent(order_id, total)))
    poll_order(stack, order_id, lambda d: d["status"] == "ready_to_fulfill", "paid")
    _accepted(post_stripe(stack, "charge.dispute.created", dispute(order_id, total)))
    reason = f"chargeback:dp_{order_id}"
    poll_order(stack, order_id, lambda d: d["hold_reasons"] == [reason], "held by the chargeback")
    item = wait_item(stack, order_id, "hold")
    assert item["hold_reasons"] == [reason] and item["queue"] == "payments"
    status, body = post_json(f"{stack.api}/v1/work-items/{item['id']}/decision",
                             {"decision": "approve", "note": "dispute answered with evidence"}, "reviewer")
    assert status == 202, body
    doc = poll_order(stack, order_id, lambda d: d["hold_reasons"] == [], "hold lifted")
    assert doc["payment_status"] == "disputed"  # the dispute itself runs on; only the hold was lifted


def test_an_admin_blocks_an_email_through_the_api_and_its_next_order_is_cancelled(stack: RunningStack,
                                                                                  outputs: Outputs) -> None:
    email = f"fraud-{uuid.uuid4().hex[:8]}@example.com"
    url = f"{stack.api}/v1/review/lists/blocked_emails/entries"
    assert post_json(url, {"entry": email}, "reviewer")[0] == 403
    req = urllib.request.Request(url, data=json.dumps({"entry": email.upper()}).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {stack.token}"})  # the dev admin token
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert json.loads(resp.read())["entry"] == email
    time.sleep(6)  # the review worker re-reads the lists every 5 s
    order_id = _order_id()
    shopify_create(stack, order(order_id, total="25.00", email=email))
    poll_order(stack, order_id, lambda d: d["status"] == "cancelled", "cancelled by the block rule")
    wait_item(stack, order_id, "review_block")
    [cancel] = outputs.wait("CancelOrder", "commands.shop", CancelOrder, key=str(order_id))
    assert cancel.requested_by == "shopstream.review" and releases(outputs, order_id) == []
