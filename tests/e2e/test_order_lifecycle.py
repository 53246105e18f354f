"""The canonical order across every source, end to end, through the public faces only.

Signed webhooks of Shopify, Stripe, WooCommerce, the carrier hub and the returns platform go into the
connectors service of one `shopstream dev` stack (module-scoped: startup is expensive); the tests
read the orders worker's outputs from the output topics (decoded with the stack's registry) and the
read API (`GET /v1/orders/{id}` and its `/history`). Every test uses its own order ids, payment ids,
tracking numbers and return ids, so tests never see each other's records. Everything is polled with
timeouts (group joins on Tansu take seconds); nothing asserts on timings.
"""

from __future__ import annotations

import json
import random
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from shopstream.connectors import stripe as stripe_connector
from shopstream.connectors import woocommerce as woo_connector
from shopstream.connectors.signing import shopstream_headers
from shopstream.dev.shopify_samples import get_json, post_shopify, shopify_order
from shopstream.schemas.models import (
    AnomalyAlert,
    CreateInvoice,
    CreateReturnLabel,
    HoldOrder,
    IssueRefund,
    OrderStatusChanged,
    ReleaseOrder,
    ReservationChanged,
    ReviewItem,
    StockAdjusted,
)
from shopstream.serde import AvroSerde, make_registry_client
from tests.e2e.conftest import (
    CARRIER_SECRET,
    RETURNS_SECRET,
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    WOOCOMMERCE_SECRET,
    RunningStack,
)

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

TIMEOUT_S = 120.0
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# Shopify lines of the tests' orders: (sku, quantity, unit price); total = 2 x 19.90 + 9.50 + 4.90 shipping.
LINES = [("TSHIRT-BLK-M", 2, "19.90"), ("MUG-WHT", 1, "9.50")]
TOTAL = Decimal("54.20")


# --- small helpers ----------------------------------------------------------------------------------


def _order_id() -> int:
    return random.randint(10**12, 10**13)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _cents(amount: Decimal) -> int:
    return int(amount * 100)


def _wait(what: str, probe: Callable[[], T | None], stack: RunningStack, timeout_s: float = TIMEOUT_S) -> T:
    """Call `probe` until it returns something truthy; fail with the stack's log tail otherwise."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}; the service logs follow in the report)")


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _accepted(response: tuple[int, dict[str, Any]]) -> str:
    """The (single) canonical event id of an accepted webhook."""
    status, body = response
    assert status == 200, body
    assert body["status"] == "accepted", body
    assert len(body["events"]) == 1, body
    return str(body["events"][0])


# --- the sources ----------------------------------------------------------------------------------------


def shopify_create(stack: RunningStack, order: dict[str, Any]) -> str:
    return _accepted(post_shopify(stack.connectors, SHOPIFY_SECRET, "orders/create", order))


def _stripe_event(event_type: str, obj: dict[str, Any], event_id: str, created: int) -> bytes:
    return json.dumps({
        "id": event_id, "object": "event", "api_version": "2024-04-10", "created": created,
        "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
        "request": {"id": f"req_{uuid.uuid4().hex[:14]}", "idempotency_key": str(uuid.uuid4())},
        "type": event_type,
    }).encode()


def post_stripe(stack: RunningStack, event_type: str, obj: dict[str, Any], *, event_id: str | None = None,
                created: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """One Stripe Event, signed as Stripe signs it (`t=<now>,v1=<hmac>`)."""
    at = int((created or datetime.now(UTC)).timestamp())
    body = _stripe_event(event_type, obj, event_id or f"evt_{uuid.uuid4().hex[:24]}", at)
    header = stripe_connector.signature_header(STRIPE_SECRET, body, int(time.time()))
    return _post(f"{stack.connectors}/webhooks/stripe", body, {"Stripe-Signature": header,
                                                              "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})


def payment_intent(order_id: int, amount: Decimal, *, created: datetime | None = None) -> dict[str, Any]:
    """A succeeded PaymentIntent whose metadata names the shop's order (as the checkout sets it)."""
    cents = _cents(amount)
    return {
        "id": f"pi_{order_id}", "object": "payment_intent", "amount": cents, "amount_capturable": 0,
        "amount_received": cents, "capture_method": "automatic",
        "client_secret": f"pi_{order_id}_secret_{uuid.uuid4().hex[:16]}",
        "created": int((created or datetime.now(UTC)).timestamp()), "currency": "eur", "customer": None,
        "description": f"Order #{order_id % 100000}", "last_payment_error": None, "latest_charge": f"ch_{order_id}",
        "livemode": False, "metadata": {"order_id": str(order_id)}, "payment_method": f"pm_{order_id}",
        "payment_method_types": ["card"], "status": "succeeded",
    }


def charge(order_id: int, amount: Decimal, refunded: Decimal) -> dict[str, Any]:
    """The Charge of `payment_intent(order_id, amount)` after refunds of `refunded` in total."""
    cents, refunded_cents = _cents(amount), _cents(refunded)
    return {
        "id": f"ch_{order_id}", "object": "charge", "amount": cents, "amount_captured": cents,
        "amount_refunded": refunded_cents, "captured": True, "created": int(time.time()) - 60, "currency": "eur",
        "metadata": {"order_id": str(order_id)}, "paid": True, "payment_intent": f"pi_{order_id}",
        "refunded": refunded_cents == cents, "status": "succeeded",
        "refunds": {"object": "list", "has_more": False, "data": [
            {"id": f"re_{order_id}_1", "object": "refund", "amount": refunded_cents, "currency": "eur",
             "reason": "requested_by_customer", "status": "succeeded"}]},
    }


def dispute(order_id: int, amount: Decimal) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": f"dp_{order_id}", "object": "dispute", "amount": _cents(amount), "currency": "eur",
        "charge": f"ch_{order_id}", "payment_intent": f"pi_{order_id}", "created": now, "reason": "fraudulent",
        "status": "needs_response", "is_charge_refundable": False, "livemode": False,
        "evidence_details": {"due_by": now + 7 * 86400, "has_evidence": False, "past_due": False,
                             "submission_count": 0},
        # As Stripe sends disputes: no order metadata; shopstream finds the order through the payment.
        "metadata": {},
        "payment_method_details": {"card": {"brand": "visa", "network_reason_code": "10.4"}, "type": "card"},
    }


def post_carrier(stack: RunningStack, order_id: int, status: str, occurred_at: datetime,
                 **extra: Any) -> tuple[int, dict[str, Any]]:
    """An AfterShip tracking update relayed by the carrier hub, signed with the shared secret."""
    body = json.dumps({
        "tracking_number": f"1Z{order_id}", "carrier": "UPS", "order_id": str(order_id), "status": status,
        "status_system": "aftership", "occurred_at": _iso(occurred_at), "location": "Hamburg, DE",
        "tracking_url": f"https://www.ups.com/track?tracknum=1Z{order_id}", **extra,
    }).encode()
    return _post(f"{stack.connectors}/webhooks/carrier", body,
                 shopstream_headers(CARRIER_SECRET, body, str(uuid.uuid4())))


def post_return(stack: RunningStack, order_id: int, kind: str, return_id: str, occurred_at: datetime,
                lines: list[dict[str, Any]], **extra: Any) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"type": kind, "return_id": return_id, "order_id": str(order_id),
                       "occurred_at": _iso(occurred_at), "lines": lines, **extra}).encode()
    return _post(f"{stack.connectors}/webhooks/returns", body,
                 shopstream_headers(RETURNS_SECRET, body, str(uuid.uuid4())))


def woo_order(order_id: int, status: str, created: datetime, modified: datetime) -> dict[str, Any]:
    """A WooCommerce REST v3 Order resource as its webhooks deliver it (line `price` is a JSON number)."""
    def gmt(at: datetime) -> str:
        return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")

    address = {"first_name": "Jane", "last_name": "Doe", "company": "", "address_1": "Hauptstr. 1", "address_2": "",
               "city": "Berlin", "state": "BE", "postcode": "10115", "country": "DE"}
    return {
        "id": order_id, "parent_id": 0, "number": str(order_id), "order_key": f"wc_order_{order_id}",
        "created_via": "checkout", "version": "8.9.1", "status": status, "currency": "EUR",
        "date_created": gmt(created), "date_created_gmt": gmt(created),
        "date_modified": gmt(modified), "date_modified_gmt": gmt(modified),
        "discount_total": "0.00", "discount_tax": "0.00", "shipping_total": "4.90", "shipping_tax": "0.00",
        "cart_tax": "0.00", "total": "29.80", "total_tax": "0.00", "prices_include_tax": True, "customer_id": 42,
        "customer_note": "", "billing": {**address, "email": "jane.doe@example.com", "phone": "+49 30 123456"},
        "shipping": address, "payment_method": "stripe", "payment_method_title": "Credit card",
        "transaction_id": "", "date_paid_gmt": None, "date_completed_gmt": None, "meta_data": [],
        "line_items": [
            {"id": order_id * 10 + 1, "name": "Hoodie - Grey, L", "product_id": 93, "variation_id": 95, "quantity": 1,
             "tax_class": "", "subtotal": "19.90", "subtotal_tax": "0.00", "total": "19.90", "total_tax": "0.00",
             "taxes": [], "meta_data": [], "sku": "HOODIE-GRY-L", "price": 19.9},
            {"id": order_id * 10 + 2, "name": "Beanie", "product_id": 22, "variation_id": 0, "quantity": 1,
             "tax_class": "", "subtotal": "5.00", "subtotal_tax": "0.00", "total": "5.00", "total_tax": "0.00",
             "taxes": [], "meta_data": [], "sku": "BEANIE", "price": 5},
        ],
    }


def post_woo(stack: RunningStack, topic: str, order: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = json.dumps(order).encode()
    resource, _, event = topic.partition(".")
    return _post(f"{stack.connectors}/webhooks/woocommerce", body, {
        "User-Agent": "WooCommerce/8.9.1 Hookshot (WordPress/6.5.3)",
        "X-WC-Webhook-Source": "https://shop.example.com/", "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": woo_connector.sign(WOOCOMMERCE_SECRET, body),
        "X-WC-Webhook-ID": "17", "X-WC-Webhook-Delivery-ID": str(uuid.uuid4())})


# --- what the stack says ------------------------------------------------------------------------------------


class Outputs:
    """Decoded records of the stack's output topics."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.serde = AvroSerde(make_registry_client(stack.registry))

    def records(self, topic: str, model: type[M], *, key: str | None = None,
                where: Callable[[M], bool] = lambda _: True) -> list[M]:
        """Every `model` record on `topic` (with Kafka key `key`, when given) for which `where` holds."""
        found: list[M] = []
        for msg in self.stack.read_topic(topic):
            if key is not None and msg.key() != key.encode():
                continue
            record = self.serde.decode(msg.value())
            if isinstance(record, model) and where(record):
                found.append(record)
        return found

    def wait(self, what: str, topic: str, model: type[M], *, count: int = 1, key: str | None = None,
             where: Callable[[M], bool] = lambda _: True) -> list[M]:
        """Poll `topic` until at least `count` matching records are there; returns all matching ones."""
        return _wait(what, lambda: (lambda found: found if len(found) >= count else None)(
            self.records(topic, model, key=key, where=where)), self.stack)

    def changes(self, order_id: int, count: int) -> list[OrderStatusChanged]:
        """The order's audit trail on orders.status-changes once it has `count` entries, by version."""
        found = self.wait(f"{count} status changes of order {order_id}", "orders.status-changes",
                          OrderStatusChanged, count=count, key=str(order_id))
        return sorted(found, key=lambda c: c.version)


@pytest.fixture(scope="module")
def outputs(stack: RunningStack) -> Outputs:
    return Outputs(stack)


def poll_order(stack: RunningStack, order_id: int, until: Callable[[dict[str, Any]], bool],
               what: str) -> dict[str, Any]:
    """GET /v1/orders/{id} until the document satisfies `until`."""
    def probe() -> dict[str, Any] | None:
        code, body = get_json(f"{stack.api}/v1/orders/{order_id}", stack.token)
        return body if code == 200 and until(body) else None
    return _wait(f"order {order_id} {what}", probe, stack)


def poll_status(stack: RunningStack, order_id: int, **expected: str) -> dict[str, Any]:
    return poll_order(stack, order_id, lambda doc: all(doc.get(k) == v for k, v in expected.items()),
                      f"with {expected}")


def records_in(stack: RunningStack, processor: str, topic: str, outcomes: tuple[str, ...] = ("ok",)) -> float:
    """`shopstream_records_in_total` of a worker (orders: the worker port, inventory: port + 2) for one input."""
    port = int(stack.dev.env["SHOPSTREAM_WORKER_PORT"]) + {"orders": 0, "inventory": 2}[processor]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    total = 0.0
    pattern = re.compile(r'^shopstream_records_in_total\{([^}]*)\} ([0-9.e+]+)$', re.MULTILINE)
    for labels, value in pattern.findall(text):
        if (f'processor="{processor}"' in labels and f'topic="{topic}"' in labels
                and any(f'outcome="{o}"' in labels for o in outcomes)):
            total += float(value)
    return total


def orders_worker_counter(stack: RunningStack, topic: str) -> float:
    return records_in(stack, "orders", topic)


def ingest_stock(stack: RunningStack, path: Path, sku: str, on_hand: int, as_of: datetime) -> None:
    """An ERP stock export of one SKU (location default), ingested as an operator does."""
    path.write_text(f"sku;on_hand;description\n{sku};{on_hand};E2E test article\n")
    done = stack.cli("ingest", "erp-stock", str(path), "--as-of", _iso(as_of))
    assert done.returncode == 0, done.stdout + done.stderr


def get_atp(stack: RunningStack, sku: str) -> dict[str, Any] | None:
    code, body = get_json(f"{stack.api}/v1/atp/{sku}", stack.token)
    return body if code == 200 else None


# --- the scenarios ------------------------------------------------------------------------------------------


def test_happy_path_placed_paid_released_shipped_delivered(stack: RunningStack, outputs: Outputs) -> None:
    order_id = _order_id()
    now = datetime.now(UTC).replace(microsecond=0)
    placed = shopify_create(stack, shopify_order(order_id, financial_status="pending", lines=LINES,
                                                 created_at=now - timedelta(hours=3)))
    doc = poll_status(stack, order_id, status="pending_payment")
    assert doc["payment_status"] == "pending" and doc["fulfillment_status"] == "unfulfilled"
    assert doc["total"] == {"amount": "54.20", "currency": "EUR"}

    captured = _accepted(post_stripe(stack, "payment_intent.succeeded", payment_intent(order_id, TOTAL)))
    doc = poll_status(stack, order_id, status="ready_to_fulfill")
    assert doc["payment_status"] == "paid"
    assert doc["captured"] == {"amount": "54.20", "currency": "EUR"}

    released = outputs.wait(f"ReleaseOrder of {order_id}", "commands.fulfillment", ReleaseOrder, key=str(order_id))
    assert [r.meta.causation_id for r in released] == [captured]
    invoices = outputs.wait(f"CreateInvoice of {order_id}", "commands.erp", CreateInvoice, key=str(order_id))
    assert len(invoices) == 1 and invoices[0].amount.amount == TOTAL

    shipped_at = now - timedelta(hours=2)
    in_transit = _accepted(post_carrier(stack, order_id, "InTransit", shipped_at, detail="Departed facility"))
    doc = poll_status(stack, order_id, status="shipped")
    assert doc["fulfillment_status"] == "shipped" and doc["payment_status"] == "paid"

    delivered = _accepted(post_carrier(stack, order_id, "Delivered", shipped_at + timedelta(hours=1),
                                       signed_by="J. DOE"))
    doc = poll_status(stack, order_id, status="delivered")
    assert (doc["payment_status"], doc["fulfillment_status"], doc["return_status"]) == ("paid", "delivered", "none")
    assert doc["hold_reasons"] == []
    assert doc["version"] == 4

    # The audit trail: one change per step, each naming its cause, source and rule.
    changes = outputs.changes(order_id, 4)
    assert [c.version for c in changes] == [1, 2, 3, 4]
    assert [c.cause_event_id for c in changes] == [placed, captured, in_transit, delivered]
    assert [c.cause_event_type for c in changes] == ["OrderPlaced", "PaymentCaptured", "ShipmentDispatched",
                                                     "ShipmentDelivered"]
    assert [c.source for c in changes] == ["shopify", "stripe", "carrier", "carrier"]
    assert changes[0].previous is None
    assert changes[0].rule.split("+")[0] == "order.placed"
    assert "shopify.financial_status.pending" in changes[0].rule.split("+")
    assert [c.rule for c in changes[1:]] == ["payments.captured_in_full", "shipments.shipped", "shipments.delivered"]
    assert [c.current.status for c in changes] == ["pending_payment", "ready_to_fulfill", "shipped", "delivered"]
    for before, after in pairwise(changes):
        assert after.previous == before.current

    # Stock: reserve per SKU when placed, ship per SKU when the carrier has the parcel (whole order: no lines).
    reservations = outputs.wait(f"reserve + ship of {order_id}", "inventory.reservations", ReservationChanged,
                                count=4, where=lambda r: r.order_id == str(order_id))
    by_sku: dict[str, list[tuple[str, int]]] = {}
    for r in sorted(reservations, key=lambda r: (r.sku, r.meta.occurred_at)):
        by_sku.setdefault(r.sku, []).append((r.action, r.quantity))
    assert by_sku == {"MUG-WHT": [("reserve", 1), ("ship", 1)], "TSHIRT-BLK-M": [("reserve", 2), ("ship", 2)]}
    assert {r.meta.causation_id for r in reservations if r.action == "reserve"} == {placed}
    assert {r.meta.causation_id for r in reservations if r.action == "ship"} == {in_transit}

    # The read API's history of the same trail, oldest first.
    def history() -> dict[str, Any] | None:
        code, body = get_json(f"{stack.api}/v1/orders/{order_id}/history", stack.token)
        return body if code == 200 and len(body.get("changes", [])) >= 4 else None

    trail = _wait(f"history of {order_id}", history, stack)
    assert trail["order_id"] == str(order_id)
    assert [e["version"] for e in trail["changes"]] == [1, 2, 3, 4]
    assert [e["cause_event_id"] for e in trail["changes"]] == [placed, captured, in_transit, delivered]
    assert [e["rule"] for e in trail["changes"]] == [c.rule for c in changes]
    assert [e["current"]["status"] for e in trail["changes"]] == ["pending_payment", "ready_to_fulfill", "shipped",
                                                                  "delivered"]
    assert trail["changes"][0]["previous"] is None
    assert set(trail["changes"][1]["changed"]) == {"status", "payment_status"}
    # Nothing about a consistent order needs a person (the inventory worker may flag the SKUs as oversold:
    # no ERP ever counted them in this stack; that is not the orders processor's business).
    assert outputs.records("review.queue", ReviewItem, key=str(order_id),
                           where=lambda r: r.meta.source == "shopstream.orders") == []
    assert outputs.records("alerts.anomalies", AnomalyAlert, key=f"order:{order_id}") == []


def test_payment_before_order_is_parked_then_applied(stack: RunningStack, outputs: Outputs) -> None:
    order_id = _order_id()
    consumed = orders_worker_counter(stack, "payments")
    captured = _accepted(post_stripe(stack, "payment_intent.succeeded", payment_intent(order_id, TOTAL)))
    # The worker has read the capture (and could not apply it: the order does not exist yet).
    _wait("the orders worker to consume the capture",
          lambda: orders_worker_counter(stack, "payments") >= consumed + 1, stack)
    assert get_json(f"{stack.api}/v1/orders/{order_id}", stack.token)[0] == 404
    assert outputs.records("orders.status-changes", OrderStatusChanged, key=str(order_id)) == []

    placed = shopify_create(stack, shopify_order(order_id, financial_status="pending", lines=LINES))
    doc = poll_status(stack, order_id, status="ready_to_fulfill")
    assert doc["payment_status"] == "paid" and doc["fulfillment_status"] == "unfulfilled"
    assert doc["captured"] == {"amount": "54.20", "currency": "EUR"}
    assert doc["version"] == 2

    changes = outputs.changes(order_id, 2)
    assert [(c.cause_event_id, c.current.status) for c in changes] == [
        (placed, "pending_payment"), (captured, "ready_to_fulfill")]
    assert changes[1].rule == "payments.captured_in_full" and changes[1].source == "stripe"
    released = outputs.wait(f"ReleaseOrder of {order_id}", "commands.fulfillment", ReleaseOrder, key=str(order_id))
    assert len(released) == 1
    assert not [r for r in outputs.records("review.queue", ReviewItem, key=str(order_id))
                if r.kind in ("parked_expired", "parking_overflow", "rejected_transition")]


def test_partial_refund(stack: RunningStack, outputs: Outputs) -> None:
    order_id = _order_id()
    shopify_create(stack, shopify_order(order_id, financial_status="pending", lines=LINES))
    _accepted(post_stripe(stack, "payment_intent.succeeded", payment_intent(order_id, TOTAL)))
    poll_status(stack, order_id, payment_status="paid")

    refund = _accepted(post_stripe(stack, "charge.refunded", charge(order_id, TOTAL, Decimal("10.00"))))
    doc = poll_status(stack, order_id, payment_status="partially_refunded")
    assert doc["refunded"] == {"amount": "10.00", "currency": "EUR"}
    assert doc["captured"] == {"amount": "54.20", "currency": "EUR"}
    assert doc["status"] == "ready_to_fulfill"
    last = outputs.changes(order_id, 3)[-1]
    assert (last.cause_event_id, last.rule, last.current.payment_status) == (
        refund, "payments.refunded_partially", "partially_refunded")
    assert outputs.records("alerts.anomalies", AnomalyAlert, key=f"order:{order_id}") == []


def test_over_capture_raises_an_alert_and_a_review_item(stack: RunningStack, outputs: Outputs) -> None:
    order_id = _order_id()
    shopify_create(stack, shopify_order(order_id, financial_status="pending", lines=LINES))
    captured = _accepted(post_stripe(stack, "payment_intent.succeeded",
                                     payment_intent(order_id, TOTAL + Decimal("5.00"))))
    doc = poll_status(stack, order_id, payment_status="paid")
    assert doc["captured"] == {"amount": "59.20", "currency": "EUR"}

    alerts = outputs.wait(f"over_capture alert of {order_id}", "alerts.anomalies", AnomalyAlert,
                          key=f"order:{order_id}", where=lambda a: a.kind == "over_capture")
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.subject == f"order:{order_id}" and alert.severity == "warning"
    assert alert.meta.causation_id == captured
    assert alert.evidence["order_id"] == str(order_id)
    assert Decimal(alert.evidence["captured"]) == Decimal("59.20")
    assert Decimal(alert.evidence["total"]) == TOTAL
    assert Decimal(alert.evidence["over_by"]) == Decimal("5.00")
    items = outputs.wait(f"over_capture review of {order_id}", "review.queue", ReviewItem, key=str(order_id),
                         where=lambda r: r.kind == "over_capture")
    assert len(items) == 1 and items[0].event_id == captured
    assert outputs.records("commands.erp", CreateInvoice, key=str(order_id)) == []  # captured != total


def test_chargeback_holds_the_order(stack: RunningStack, outputs: Outputs) -> None:
    order_id = _order_id()
    shopify_create(stack, shopify_order(order_id, financial_status="pending", lines=LINES))
    _accepted(post_stripe(stack, "payment_intent.succeeded", payment_intent(order_id, TOTAL)))
    poll_status(stack, order_id, status="ready_to_fulfill")

    opened = _accepted(post_stripe(stack, "charge.dispute.created", dispute(order_id, TOTAL)))
    doc = poll_status(stack, order_id, status="on_hold")
    reason = f"chargeback:dp_{order_id}"
    assert doc["hold_reasons"] == [reason]
    assert doc["payment_status"] == "disputed"

    holds = outputs.wait(f"HoldOrder of {order_id}", "commands.fulfillment", HoldOrder, key=str(order_id))
    assert len(holds) == 1 and holds[0].reasons == [reason] and holds[0].meta.causation_id == opened
    alerts = outputs.wait(f"chargeback alert of {order_id}", "alerts.anomalies", AnomalyAlert,
                          key=f"order:{order_id}", where=lambda a: a.kind == "chargeback")
    assert len(alerts) == 1
    assert alerts[0].evidence["dispute_id"] == f"dp_{order_id}"
    assert alerts[0].evidence["reason_code"] == "fraudulent"
    kinds = {r.kind for r in outputs.wait(f"hold review of {order_id}", "review.queue", ReviewItem,
                                          key=str(order_id), where=lambda r: r.kind == "hold")}
    assert "hold" in kinds
    last = outputs.changes(order_id, 3)[-1]
    assert last.cause_event_id == opened and last.current.hold_reasons == [reason]
    assert "holds.chargeback" in last.rule.split("+")


def test_woocommerce_order_created_then_processing_then_completed(stack: RunningStack, outputs: Outputs) -> None:
    order_id = _order_id()
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    placed = _accepted(post_woo(stack, "order.created", woo_order(order_id, "pending", created, created)))
    doc = poll_status(stack, order_id, status="pending_payment")
    assert doc["total"] == {"amount": "29.80", "currency": "EUR"}
    assert sorted((line["sku"], line["quantity"]) for line in doc["lines"]) == [("BEANIE", 1), ("HOODIE-GRY-L", 1)]

    paid = _accepted(post_woo(stack, "order.updated",
                              woo_order(order_id, "processing", created, created + timedelta(minutes=5))))
    doc = poll_status(stack, order_id, status="ready_to_fulfill")
    assert doc["payment_status"] == "paid"
    outputs.wait(f"ReleaseOrder of {order_id}", "commands.fulfillment", ReleaseOrder, key=str(order_id))

    completed = _accepted(post_woo(stack, "order.updated",
                                   woo_order(order_id, "completed", created, created + timedelta(minutes=20))))
    doc = poll_status(stack, order_id, status="shipped")
    assert (doc["payment_status"], doc["fulfillment_status"]) == ("paid", "shipped")

    changes = outputs.changes(order_id, 3)
    assert [c.cause_event_id for c in changes] == [placed, paid, completed]
    assert {c.source for c in changes} == {"woocommerce"}
    assert "woocommerce.status.pending" in changes[0].rule.split("+")
    assert "woocommerce.status.processing" in changes[1].rule.split("+")
    assert "woocommerce.status.completed_fulfillment" in changes[2].rule.split("+")
    # Reserved when placed; the shop's "completed" (no carrier webhook) ships them: no longer reserved.
    reserved = outputs.wait(f"reservations of {order_id}", "inventory.reservations", ReservationChanged, count=4,
                            where=lambda r: r.order_id == str(order_id))
    assert sorted((r.sku, r.action, r.quantity, r.reason) for r in reserved) == [
        ("BEANIE", "reserve", 1, "order.placed"), ("BEANIE", "ship", 1, "order.fulfilled"),
        ("HOODIE-GRY-L", "reserve", 1, "order.placed"), ("HOODIE-GRY-L", "ship", 1, "order.fulfilled")]
    assert {r.meta.causation_id for r in reserved if r.action == "ship"} == {completed}


def _delivered_order(stack: RunningStack, order_id: int, placed_at: datetime, delivered_at: datetime) -> None:
    """A paid Shopify order (Stripe) whose parcel the carrier delivered at `delivered_at`."""
    shopify_create(stack, shopify_order(order_id, financial_status="pending", lines=LINES, created_at=placed_at))
    _accepted(post_stripe(stack, "payment_intent.succeeded", payment_intent(order_id, TOTAL, created=placed_at),
                          created=placed_at + timedelta(minutes=1)))
    poll_status(stack, order_id, status="ready_to_fulfill")
    _accepted(post_carrier(stack, order_id, "InTransit", delivered_at - timedelta(days=1)))
    _accepted(post_carrier(stack, order_id, "Delivered", delivered_at, signed_by="J. DOE"))
    poll_status(stack, order_id, status="delivered")


def test_return_within_window_gets_label_refund_and_restock(stack: RunningStack, outputs: Outputs) -> None:
    order_id = _order_id()
    now = datetime.now(UTC).replace(microsecond=0)
    _delivered_order(stack, order_id, now - timedelta(days=5), now - timedelta(days=2))
    return_id = f"RMA-{order_id}-1"
    line_id = str(order_id * 100 + 1)  # the Shopify line of TSHIRT-BLK-M (see shopify_order)

    requested = _accepted(post_return(stack, order_id, "requested", return_id, now - timedelta(hours=1), [
        {"sku": "TSHIRT-BLK-M", "quantity": 2, "line_id": line_id, "reason": "too_small"}],
        customer_note="Too small, please send a label"))
    labels = outputs.wait(f"CreateReturnLabel of {order_id}", "commands.fulfillment", CreateReturnLabel,
                          key=str(order_id))
    assert len(labels) == 1
    assert labels[0].return_id == return_id and labels[0].meta.causation_id == requested
    assert [(li.sku, li.quantity) for li in labels[0].lines] == [("TSHIRT-BLK-M", 2)]
    doc = poll_status(stack, order_id, return_status="requested")
    assert doc["status"] == "return_requested"

    inspected = _accepted(post_return(stack, order_id, "inspected", return_id, now, [
        {"sku": "TSHIRT-BLK-M", "quantity": 1, "line_id": line_id, "reason": "too_small",
         "condition_grade": "as_new", "restockable": True},
        {"sku": "TSHIRT-BLK-M", "quantity": 1, "line_id": line_id, "reason": "too_small",
         "condition_grade": "damaged", "restockable": False}],
        location="WH-BER", inspector="warehouse-7"))
    refunds = outputs.wait(f"IssueRefund of {order_id}", "commands.payments", IssueRefund, key=str(order_id))
    assert len(refunds) == 1
    refund = refunds[0]
    # as_new: 100 % of 19.90, damaged: 50 % of 19.90 (topology/returns_policy.yaml)
    assert refund.amount.amount == Decimal("29.85") and refund.amount.currency == "EUR"
    assert (refund.reason, refund.return_id, refund.meta.causation_id) == ("return", return_id, inspected)
    assert (refund.payment_id, refund.provider) == (f"pi_{order_id}", "stripe")

    restocked = outputs.wait(f"StockAdjusted of return {return_id}", "inventory.stock", StockAdjusted,
                             where=lambda s: s.reference == return_id)
    assert [(s.sku, s.location, s.delta, s.reason) for s in restocked] == [
        ("TSHIRT-BLK-M", "WH-BER", 1, "return_restock")]
    doc = poll_status(stack, order_id, return_status="partially_returned")
    assert doc["status"] == "return_requested"
    assert not [r for r in outputs.records("review.queue", ReviewItem, key=str(order_id))
                if r.kind.startswith("return")]


def test_return_outside_window_goes_to_review(stack: RunningStack, outputs: Outputs) -> None:
    order_id = _order_id()
    now = datetime.now(UTC).replace(microsecond=0)
    _delivered_order(stack, order_id, now - timedelta(days=90), now - timedelta(days=80))
    return_id = f"RMA-{order_id}-1"

    requested = _accepted(post_return(stack, order_id, "requested", return_id, now, [
        {"sku": "MUG-WHT", "quantity": 1, "reason": "changed_mind"}]))
    items = outputs.wait(f"return_outside_window review of {order_id}", "review.queue", ReviewItem,
                         key=str(order_id), where=lambda r: r.kind == "return_outside_window")
    assert len(items) == 1
    assert items[0].event_id == requested and items[0].details.get("return_id") == return_id
    assert items[0].rule == "returns_policy.window_days"
    assert outputs.records("commands.fulfillment", CreateReturnLabel, key=str(order_id)) == []
    doc = poll_status(stack, order_id, return_status="requested")
    assert doc["status"] == "return_requested"


def test_shipped_units_stay_deducted_until_the_erp_counts_them(stack: RunningStack, outputs: Outputs,
                                                              tmp_path: Path) -> None:
    """Reserve on placement, ship on the carrier's in-transit scan, counted by the next ERP snapshot.

    processors/inventory/atp.py: a shipped reservation "stays deducted (in `reserved`) until a snapshot
    of its location with `as_of` at or after the dispatch time arrives"; the ship names "the warehouse
    that dispatched" (processors/orders/reservations.py). The carrier's `location` is where the parcel
    was scanned (AfterShip checkpoint), not a warehouse of the shop.
    """
    order_id = _order_id()
    sku = f"E2E-ATP-{order_id}"
    now = datetime.now(UTC).replace(microsecond=0)
    ingest_stock(stack, tmp_path / "stock-1.csv", sku, 10, now - timedelta(hours=5))
    _wait(f"ATP of {sku}", lambda: (lambda a: a if a and a["available"] == 10 else None)(get_atp(stack, sku)), stack)

    shopify_create(stack, shopify_order(order_id, financial_status="paid", lines=[(sku, 2, "12.00")],
                                        created_at=now - timedelta(hours=3)))
    atp = _wait(f"reservation of {sku}", lambda: (lambda a: a if a and a["reserved"] == 2 else None)(
        get_atp(stack, sku)), stack)
    assert (atp["on_hand"], atp["reserved"], atp["available"]) == (10, 2, 8)

    _accepted(post_carrier(stack, order_id, "InTransit", now - timedelta(hours=2)))  # scanned in Hamburg, DE
    outputs.wait(f"ship of {sku}", "inventory.reservations", ReservationChanged,
                 where=lambda r: r.order_id == str(order_id) and r.action == "ship")
    on_topic = len(stack.read_topic("inventory.reservations"))
    _wait("the inventory worker to consume every reservation", lambda: records_in(
        stack, "inventory", "inventory.reservations", ("ok", "dlq")) >= on_topic, stack)
    atp = get_atp(stack, sku)
    assert atp is not None
    # The parcel left, the ERP has not counted since: its units are still in on_hand, so still reserved.
    assert (atp["on_hand"], atp["reserved"], atp["available"]) == (10, 2, 8), atp
    assert [loc["location"] for loc in atp["locations"]] == ["default"], atp

    ingest_stock(stack, tmp_path / "stock-2.csv", sku, 8, now - timedelta(hours=1))
    atp = _wait(f"ERP count of {sku}", lambda: (lambda a: a if a and a["on_hand"] == 8 else None)(
        get_atp(stack, sku)), stack)
    assert (atp["on_hand"], atp["reserved"], atp["available"]) == (8, 0, 8), atp
    assert [loc["location"] for loc in atp["locations"]] == ["default"], atp


def test_no_dead_letters_after_the_scenarios(stack: RunningStack) -> None:
    """Every webhook above was valid and every event processable: no DLQ holds anything (run last)."""
    done = stack.cli("dlq", "list", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    parked = {t["topic"]: t["by_fingerprint"] for t in report["topics"] if t["records"]}
    assert parked == {}, f"dead letters: {parked}; the service logs follow in the report"
