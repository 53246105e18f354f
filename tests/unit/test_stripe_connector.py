"""The Stripe connector, pure: Stripe-Signature (rotation, tolerance), event id, translation of events."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shopstream.connectors.base import DeliveryIdFromBody, PayloadError, SourceConnector
from shopstream.connectors.stripe import StripeConnector, exponent, sign, signature_header, to_money
from shopstream.schemas.models import (
    ChargebackOpened,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    RefundIssued,
    ReviewItem,
)

SECRET = "whsec_test_current"
OLD_SECRET = "whsec_test_previous"
NOW = 1_714_557_600  # 2024-05-01T10:00:00Z
RECEIVED = datetime(2024, 5, 1, 10, 0, 5, tzinfo=UTC)
CREATED = 1_714_557_000  # the event's `created`, 2024-05-01T09:50:00Z


def payment_intent(*, amount: int = 5430, currency: str = "eur", order_id: str | None = "1001",
                   **extra: Any) -> dict[str, Any]:
    """A PaymentIntent as Stripe's docs show it (trimmed to a representative subset)."""
    pi: dict[str, Any] = {
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "object": "payment_intent", "amount": amount,
        "amount_capturable": 0, "amount_received": amount, "capture_method": "automatic",
        "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH", "created": 1680800504,
        "currency": currency, "customer": None, "description": None, "last_payment_error": None,
        "latest_charge": "ch_3MtwBwLkdIwHu7ix28a3tqPa", "livemode": False,
        "metadata": {} if order_id is None else {"order_id": order_id},
        "payment_method": "pm_1MtwBwLkdIwHu7ixZOJy4GSL", "payment_method_types": ["card"],
        "status": "succeeded",
    }
    pi.update(extra)
    return pi


def charge(*, amount: int = 5430, refunded: int = 1000, currency: str = "eur",
           order_id: str | None = "1001") -> dict[str, Any]:
    return {
        "id": "ch_3MmlLrLkdIwHu7ix0snN0B15", "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": refunded, "captured": True, "created": 1679090539, "currency": currency,
        "metadata": {} if order_id is None else {"order_id": order_id}, "paid": True,
        "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "refunded": refunded == amount, "status": "succeeded",
        "refunds": {"object": "list", "data": [
            {"id": "re_2", "object": "refund", "amount": 400, "reason": "requested_by_customer"},
            {"id": "re_1", "object": "refund", "amount": refunded - 400, "reason": None}]},
    }


def dispute(*, order_id: str | None = "1001") -> dict[str, Any]:
    return {
        "id": "dp_1MtJUT2eZvKYlo2CNaw2HvEv", "object": "dispute", "amount": 5430, "currency": "eur",
        "charge": "ch_3MmlLrLkdIwHu7ix0snN0B15", "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "created": 1680651737, "reason": "fraudulent", "status": "needs_response", "is_charge_refundable": False,
        "evidence_details": {"due_by": 1681430399, "has_evidence": False, "past_due": False, "submission_count": 0},
        "metadata": {} if order_id is None else {"order_id": order_id},
        "payment_method_details": {"card": {"brand": "visa", "network_reason_code": "10.4"}, "type": "card"},
    }


def event(event_type: str, obj: dict[str, Any], *, event_id: str = "evt_1NG8Du2eZvKYlo2CUI79vXWy") -> bytes:
    return json.dumps({
        "id": event_id, "object": "event", "api_version": "2024-04-10", "created": CREATED,
        "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "type": event_type,
    }).encode()


def headers(body: bytes, *, secrets: list[str] | str = SECRET, timestamp: int = NOW) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Stripe/1.0",
            "Stripe-Signature": signature_header(secrets, body, timestamp)}


@pytest.fixture
def connector() -> StripeConnector:
    return StripeConnector(SECRET, now=lambda: NOW)


def translate_one(connector: StripeConnector, body: bytes) -> Any:
    (out,) = connector.translate(headers(body), body, RECEIVED)
    return out


# ---------------------------------------------------------------------------------- signature


def test_sign_is_hex_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id": "evt_1"}'
    expected = hmac.new(SECRET.encode(), b"1714557600." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body, NOW) == expected
    assert signature_header(SECRET, body, NOW) == f"t=1714557600,v1={expected}"


def test_is_a_source_connector_with_a_body_delivery_id(connector: StripeConnector) -> None:
    assert isinstance(connector, DeliveryIdFromBody)
    src: SourceConnector = connector
    assert src.name == "stripe"


def test_valid_signature_is_accepted(connector: StripeConnector) -> None:
    body = event("payment_intent.succeeded", payment_intent())
    assert connector.verify(headers(body), body)


def test_wrong_secret_tampered_body_and_missing_header_are_rejected(connector: StripeConnector) -> None:
    body = event("payment_intent.succeeded", payment_intent())
    assert not connector.verify(headers(body, secrets="whsec_someone_else"), body)
    tampered = body.replace(b'"amount": 5430', b'"amount": 5', 1)
    assert tampered != body
    assert not connector.verify(headers(body), tampered)
    assert not connector.verify({"Content-Type": "application/json"}, body)
    assert not connector.verify({"Stripe-Signature": ""}, body)


@pytest.mark.parametrize("value", [
    "garbage", "t=,v1=abc", "v1=" + "0" * 64, "t=1714557600", "t=abc,v1=" + "0" * 64,
    "t=1714557600,t=1714557600,v1=" + "0" * 64,
])
def test_malformed_signature_headers_are_rejected(connector: StripeConnector, value: str) -> None:
    body = event("payment_intent.succeeded", payment_intent())
    assert not connector.verify({"Stripe-Signature": value}, body)


def test_timestamp_is_part_of_the_signed_payload(connector: StripeConnector) -> None:
    body = event("payment_intent.succeeded", payment_intent())
    # A valid v1 replayed with a fresh t does not verify.
    v1 = sign(SECRET, body, NOW - 1000)
    assert not connector.verify({"Stripe-Signature": f"t={NOW},v1={v1}"}, body)


def test_rotated_secret_any_v1_may_match() -> None:
    body = event("payment_intent.succeeded", payment_intent())
    both = headers(body, secrets=[OLD_SECRET, SECRET])
    assert both["Stripe-Signature"].count("v1=") == 2
    # The endpoint already on the new secret accepts the header that carries both signatures...
    assert StripeConnector(SECRET, now=lambda: NOW).verify(both, body)
    # ...and so does one still on the old secret.
    assert StripeConnector(OLD_SECRET, now=lambda: NOW).verify(both, body)
    # Neither matches: rejected.
    assert not StripeConnector("whsec_other", now=lambda: NOW).verify(both, body)
    # A v0 (legacy test scheme) signature with the right value does not count.
    v0 = f"t={NOW},v0={sign(SECRET, body, NOW)}"
    assert not StripeConnector(SECRET, now=lambda: NOW).verify({"Stripe-Signature": v0}, body)


def test_timestamp_tolerance_default_300_s() -> None:
    body = event("payment_intent.succeeded", payment_intent())
    signed_at = NOW
    for age, ok in ((0, True), (299, True), (300, True), (301, False), (3600, False)):
        connector = StripeConnector(SECRET, now=lambda age=age: signed_at + age)
        assert connector.verify(headers(body, timestamp=signed_at), body) is ok, age
    # A timestamp from the future beyond the tolerance is a broken clock, refused the same way.
    assert not StripeConnector(SECRET, now=lambda: NOW).verify(headers(body, timestamp=NOW + 301), body)
    assert StripeConnector(SECRET, now=lambda: NOW).verify(headers(body, timestamp=NOW + 30), body)


def test_tolerance_is_configurable() -> None:
    body = event("payment_intent.succeeded", payment_intent())
    strict = StripeConnector(SECRET, tolerance_s=10, now=lambda: NOW + 11)
    assert not strict.verify(headers(body), body)
    lenient = StripeConnector(SECRET, tolerance_s=900, now=lambda: NOW + 899)
    assert lenient.verify(headers(body), body)


def test_empty_secret_rejects_everything() -> None:
    body = event("payment_intent.succeeded", payment_intent())
    unconfigured = StripeConnector("", now=lambda: NOW)
    assert not unconfigured.verify(headers(body, secrets=""), body)
    assert not unconfigured.verify(headers(body), body)


def test_header_name_is_case_insensitive(connector: StripeConnector) -> None:
    body = event("payment_intent.succeeded", payment_intent())
    value = headers(body)["Stripe-Signature"]
    assert connector.verify({"stripe-signature": value}, body)
    assert connector.verify({"STRIPE-SIGNATURE": value}, body)


# ---------------------------------------------------------------------------------- delivery id


def test_delivery_id_is_the_event_id_from_the_body(connector: StripeConnector) -> None:
    body = event("payment_intent.succeeded", payment_intent(), event_id="evt_abc")
    assert connector.delivery_id(headers(body)) is None  # no header carries it
    assert connector.delivery_id_from_body(headers(body), body) == "evt_abc"
    assert connector.delivery_id_from_body({}, b"{not json") is None
    assert connector.delivery_id_from_body({}, b'{"id": 7}') is None
    assert connector.delivery_id_from_body({}, b"[1]") is None


def test_event_id_is_deterministic_per_stripe_event(connector: StripeConnector) -> None:
    body = event("payment_intent.succeeded", payment_intent(), event_id="evt_same")
    first = translate_one(connector, body)
    # A retry an hour later: new signature header, same body, same Stripe event id.
    again = connector.translate(headers(body, timestamp=NOW + 3600), body, datetime(2024, 5, 1, 11, tzinfo=UTC))
    assert again[0].record.meta.event_id == first.record.meta.event_id
    other = translate_one(connector, event("payment_intent.succeeded", payment_intent(), event_id="evt_other"))
    assert other.record.meta.event_id != first.record.meta.event_id


# ---------------------------------------------------------------------------------- translation


def test_payment_intent_succeeded_is_payment_captured(connector: StripeConnector) -> None:
    out = translate_one(connector, event("payment_intent.succeeded", payment_intent(amount=5430)))
    assert out.topic == "payments" and out.key == "1001"
    rec = out.record
    assert type(rec) is PaymentCaptured
    assert rec.order_id == "1001" and rec.provider == "stripe"
    assert rec.payment_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert rec.amount.amount == Decimal("54.30") and rec.amount.currency == "EUR"
    assert type(rec.amount.amount) is Decimal
    assert rec.captured_at == datetime.fromtimestamp(CREATED, UTC)
    assert rec.final_capture is True and rec.method == "card"
    meta = rec.meta
    assert meta.event_type == "PaymentCaptured" and meta.source == "stripe"
    assert meta.source_event_id == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    assert meta.occurred_at == rec.captured_at and meta.recorded_at == RECEIVED
    assert meta.correlation_id == "stripe:payment:pi_3MtwBwLkdIwHu7ix28a3tqPa"


def test_captured_amount_is_amount_received(connector: StripeConnector) -> None:
    # A manual capture of less than authorised: amount_received is what moved.
    out = translate_one(connector, event("payment_intent.succeeded",
                                         payment_intent(amount=10000, amount_received=7550)))
    assert out.record.amount.amount == Decimal("75.50")


def test_amount_capturable_updated_is_payment_authorized(connector: StripeConnector) -> None:
    pi = payment_intent(amount=12000, amount_capturable=12000, amount_received=0, status="requires_capture",
                        capture_method="manual")
    out = translate_one(connector, event("payment_intent.amount_capturable_updated", pi))
    rec = out.record
    assert type(rec) is PaymentAuthorized
    assert out.topic == "payments" and out.key == "1001"
    assert rec.amount.amount == Decimal("120.00") and rec.amount.currency == "EUR"
    assert rec.authorized_at == datetime.fromtimestamp(CREATED, UTC)
    assert rec.payment_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa" and rec.method == "card"


@pytest.mark.parametrize(("extra", "level"), [
    ({}, None),
    ({"latest_charge": "ch_1"}, None),  # not expanded: unknown
    ({"latest_charge": {"id": "ch_1", "outcome": {"risk_level": "elevated"}}}, "elevated"),
    ({"charges": {"data": [{"outcome": {"risk_level": "normal"}}, {"outcome": {"risk_level": "highest"}}]}}, "highest"),
    ({"latest_charge": {"outcome": {"risk_level": "not_assessed"}}}, None),
])
def test_the_provider_risk_level_comes_from_the_charge_outcome(connector: StripeConnector, extra: dict[str, Any],
                                                                level: str | None) -> None:
    pi = {**payment_intent(amount=12000, amount_capturable=12000, amount_received=0, status="requires_capture",
                           capture_method="manual"), **extra}
    rec = translate_one(connector, event("payment_intent.amount_capturable_updated", pi)).record
    assert isinstance(rec, PaymentAuthorized) and rec.risk_level == level


def test_zero_capturable_amount_authorises_nothing(connector: StripeConnector) -> None:
    pi = payment_intent(amount_capturable=0, status="requires_capture")
    body = event("payment_intent.amount_capturable_updated", pi)
    assert connector.translate(headers(body), body, RECEIVED) == []


def test_payment_failed(connector: StripeConnector) -> None:
    pi = payment_intent(amount=2000, amount_received=0, status="requires_payment_method", last_payment_error={
        "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.", "payment_method": {"id": "pm_1", "type": "card"}})
    out = translate_one(connector, event("payment_intent.payment_failed", pi))
    rec = out.record
    assert type(rec) is PaymentFailed
    assert out.key == "1001" and out.topic == "payments"
    assert rec.amount.amount == Decimal("20.00")
    assert rec.failure_code == "card_declined" and rec.decline_code == "insufficient_funds"
    assert rec.failure_message == "Your card has insufficient funds."
    assert rec.retryable is False
    assert rec.failed_at == datetime.fromtimestamp(CREATED, UTC)


def test_payment_failed_transient_and_without_error_details(connector: StripeConnector) -> None:
    pi = payment_intent(last_payment_error={"type": "card_error", "code": "card_declined",
                                            "decline_code": "try_again_later"})
    assert translate_one(connector, event("payment_intent.payment_failed", pi)).record.retryable is True
    bare = translate_one(connector, event("payment_intent.payment_failed", payment_intent(last_payment_error=None)))
    assert bare.record.failure_code is None and bare.record.retryable is False


def test_charge_refunded_carries_the_cumulative_amount(connector: StripeConnector) -> None:
    out = translate_one(connector, event("charge.refunded", charge(amount=5430, refunded=1500)))
    rec = out.record
    assert type(rec) is RefundIssued
    assert out.topic == "payments" and out.key == "1001"
    assert rec.amount.amount == Decimal("15.00")  # amount_refunded: everything refunded so far
    assert rec.refund_id == "ch_3MmlLrLkdIwHu7ix0snN0B15/cumulative"
    # The payment intent, so refunds line up with the capture of the same payment.
    assert rec.payment_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert rec.reason == "requested_by_customer"  # of the newest refund
    assert rec.refunded_at == datetime.fromtimestamp(CREATED, UTC)


def test_second_partial_refund_replaces_not_adds(connector: StripeConnector) -> None:
    first = translate_one(connector, event("charge.refunded", charge(refunded=1000), event_id="evt_r1"))
    second = translate_one(connector, event("charge.refunded", charge(refunded=2500), event_id="evt_r2"))
    redelivered = translate_one(connector, event("charge.refunded", charge(refunded=1000), event_id="evt_r1"))
    # One refund_id per charge, the latest cumulative figure wins: 25.00 in total, however often or
    # in whatever order the events arrive.
    assert first.record.refund_id == second.record.refund_id
    assert second.record.amount.amount == Decimal("25.00")
    assert redelivered.record.meta.event_id == first.record.meta.event_id
    assert second.record.meta.event_id != first.record.meta.event_id


def test_charge_without_payment_intent_uses_the_charge_id(connector: StripeConnector) -> None:
    c = charge()
    c["payment_intent"] = None
    c.pop("refunds")
    rec = translate_one(connector, event("charge.refunded", c)).record
    assert rec.payment_id == "ch_3MmlLrLkdIwHu7ix0snN0B15" and rec.reason is None


def test_dispute_created_is_chargeback_opened(connector: StripeConnector) -> None:
    out = translate_one(connector, event("charge.dispute.created", dispute()))
    rec = out.record
    assert type(rec) is ChargebackOpened
    assert out.topic == "payments" and out.key == "1001"
    assert rec.dispute_id == "dp_1MtJUT2eZvKYlo2CNaw2HvEv"
    assert rec.payment_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert rec.amount.amount == Decimal("54.30") and rec.amount.currency == "EUR"
    assert rec.reason_code == "fraudulent" and rec.network_reason_code == "10.4"
    assert rec.opened_at == datetime.fromtimestamp(1680651737, UTC)
    assert rec.respond_by == datetime.fromtimestamp(1681430399, UTC)


@pytest.mark.parametrize(("currency", "minor", "major"), [
    ("jpy", 1200, Decimal("1200")),
    ("krw", 55000, Decimal("55000")),
    ("vnd", 250000, Decimal("250000")),
    ("clp", 9990, Decimal("9990")),
    ("mga", 3000, Decimal("3000")),     # zero-decimal at Stripe (ISO says 2)
    ("isk", 50000, Decimal("500.00")),  # two (zero) decimals at Stripe (ISO says 0)
    ("eur", 1999, Decimal("19.99")),
    ("usd", 1, Decimal("0.01")),
    ("kwd", 12345, Decimal("12.345")),
    ("bhd", 10, Decimal("0.010")),
])
def test_amounts_convert_exactly_with_the_currency_exponent(connector: StripeConnector, currency: str, minor: int,
                                                            major: Decimal) -> None:
    money = to_money(minor, currency, "amount")
    assert money.amount == major and money.currency == currency.upper()
    out = translate_one(connector, event("payment_intent.succeeded",
                                         payment_intent(amount=minor, currency=currency)))
    assert out.record.amount.amount == major and out.record.amount.currency == currency.upper()


def test_zero_decimal_currency_is_not_divided_by_100(connector: StripeConnector) -> None:
    out = translate_one(connector, event("payment_intent.succeeded", payment_intent(amount=5000, currency="jpy")))
    assert out.record.amount.amount == Decimal("5000") and out.record.amount.currency == "JPY"
    assert exponent("jpy") == 0 and exponent("eur") == 2 and exponent("kwd") == 3


@pytest.mark.parametrize(("event_type", "obj", "would_be"), [
    ("payment_intent.succeeded", payment_intent(order_id=None), "PaymentCaptured"),
    ("payment_intent.payment_failed", payment_intent(order_id=None), "PaymentFailed"),
    ("payment_intent.amount_capturable_updated", payment_intent(order_id=None, amount_capturable=100),
     "PaymentAuthorized"),
    ("charge.refunded", charge(order_id=None), "RefundIssued"),
    ("charge.dispute.created", dispute(order_id=None), "ChargebackOpened"),
])
def test_missing_order_id_goes_to_review_queue(connector: StripeConnector, event_type: str, obj: dict[str, Any],
                                               would_be: str) -> None:
    body = event(event_type, obj, event_id="evt_no_order")
    (out,) = connector.translate(headers(body), body, RECEIVED)
    assert out.topic == "review.queue"
    assert out.key == "pi_3MtwBwLkdIwHu7ix28a3tqPa"  # the payment intent every one of these belongs to
    rec = out.record
    assert type(rec) is ReviewItem
    assert rec.kind == "unmatched_payment" and rec.order_id == ""
    assert "evt_no_order" in rec.reason and "metadata.order_id" in rec.reason
    assert rec.event_type == would_be
    assert rec.details["stripe_event_id"] == "evt_no_order" and rec.details["stripe_event_type"] == event_type
    assert rec.details["payment_id"] == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert rec.meta.event_type == "ReviewItem" and rec.meta.source == "stripe"
    # The id the canonical event would have had: publishing it by hand later is a duplicate-safe act.
    with_order = copy.deepcopy(obj)
    with_order["metadata"] = {"order_id": "1001"}
    body2 = event(event_type, with_order, event_id="evt_no_order")
    (matched,) = connector.translate(headers(body2), body2, RECEIVED)
    assert rec.event_id == matched.record.meta.event_id


@pytest.mark.parametrize("metadata", [{}, {"order_id": ""}, {"order_id": "   "}, None, {"other": "x"}])
def test_empty_or_absent_order_id_counts_as_missing(connector: StripeConnector, metadata: Any) -> None:
    pi = payment_intent()
    pi["metadata"] = metadata
    out = translate_one(connector, event("payment_intent.succeeded", pi))
    assert out.topic == "review.queue"


def test_numeric_order_id_is_accepted(connector: StripeConnector) -> None:
    pi = payment_intent()
    pi["metadata"] = {"order_id": 1001}
    assert translate_one(connector, event("payment_intent.succeeded", pi)).key == "1001"


def test_charge_without_payment_intent_missing_order_is_keyed_by_charge(connector: StripeConnector) -> None:
    c = charge(order_id=None)
    c["payment_intent"] = None
    out = translate_one(connector, event("charge.refunded", c))
    assert out.topic == "review.queue" and out.key == "ch_3MmlLrLkdIwHu7ix0snN0B15"


@pytest.mark.parametrize("event_type", ["customer.created", "invoice.paid", "payment_intent.created",
                                        "charge.succeeded", "charge.dispute.closed", "checkout.session.completed"])
def test_unknown_event_type_is_acknowledged_with_nothing_to_publish(connector: StripeConnector,
                                                                    event_type: str) -> None:
    body = event(event_type, {"id": "obj_1", "object": "whatever"})
    assert connector.translate(headers(body), body, RECEIVED) == []


def _mutated(event_type: str, obj: dict[str, Any], change: Any) -> bytes:
    payload = json.loads(event(event_type, obj))
    change(payload)
    return json.dumps(payload).encode()


def _set_obj(field: str, value: Any) -> Any:
    def change(p: dict[str, Any]) -> None:
        p["data"]["object"][field] = value
    return change


PI = payment_intent()


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "body is not JSON"),
    (b"\xff\xfe\x00garbage", "body is not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (_mutated("payment_intent.succeeded", PI, lambda p: p.pop("id")), "id: a Stripe event id"),
    (_mutated("payment_intent.succeeded", PI, lambda p: p.pop("type")), "type: the event type is required"),
    (_mutated("payment_intent.succeeded", PI, lambda p: p.update(object="charge")), "expected 'event'"),
    (_mutated("payment_intent.succeeded", PI, lambda p: p.update(created="yesterday")), "created: expected unix"),
    (_mutated("payment_intent.succeeded", PI, lambda p: p.pop("data")), "data.object"),
    (_mutated("payment_intent.succeeded", PI, lambda p: p.update(data={"object": []})), "data.object"),
    (_mutated("payment_intent.succeeded", PI, _set_obj("amount_received", "54.30")), "integer of minor units"),
    (_mutated("payment_intent.succeeded", PI, _set_obj("amount_received", 54.3)), "integer of minor units"),
    (_mutated("payment_intent.succeeded", PI, _set_obj("amount_received", True)), "integer of minor units"),
    (_mutated("payment_intent.succeeded", PI, _set_obj("amount_received", -5)), "must not be negative"),
    (_mutated("payment_intent.succeeded", PI, _set_obj("currency", "euro")), "3-letter code"),
    (_mutated("payment_intent.succeeded", PI, _set_obj("currency", None)), "currency"),
    (_mutated("payment_intent.succeeded", PI, _set_obj("metadata", "order 1001")), "metadata"),
    (_mutated("payment_intent.succeeded", PI, _set_obj("metadata", {"order_id": ["1"]})), "metadata.order_id"),
    (_mutated("payment_intent.succeeded", PI, _set_obj("amount_received", 10**30)), "cannot be represented"),
    (_mutated("charge.refunded", charge(), _set_obj("amount_refunded", None)), "amount_refunded"),
    (_mutated("charge.dispute.created", dispute(), _set_obj("charge", None)), "data.object.charge"),
    (_mutated("payment_intent.payment_failed", PI, _set_obj("last_payment_error", "declined")),
     "last_payment_error"),
])
def test_bad_payload_is_a_payload_error_with_a_readable_reason(connector: StripeConnector, body: bytes,
                                                               reason: str) -> None:
    if reason == "data.object.charge":
        payload = json.loads(body)
        payload["data"]["object"]["payment_intent"] = None
        body = json.dumps(payload).encode()
    with pytest.raises(PayloadError) as info:
        connector.translate(headers(body), body, RECEIVED)
    message = str(info.value)
    assert reason in message
    assert "Traceback" not in message and len(message) < 600


def test_a_dispute_without_order_metadata_asks_for_its_payment_and_goes_to_the_linked_order(
        connector: StripeConnector) -> None:
    from shopstream.connectors.base import LinksPayments

    assert isinstance(connector, LinksPayments)
    body = event("charge.dispute.created", dispute(order_id=None))
    assert connector.unlinked_payment(body) == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    (out,) = connector.translate_linked(headers(body), body, RECEIVED, "1001")
    assert (out.topic, out.key, type(out.record).__name__, out.record.order_id) == (
        "payments", "1001", "ChargebackOpened", "1001")
    # the same event translated with the order in its metadata is the same record (same id)
    (direct,) = connector.translate(headers(body), event("charge.dispute.created", dispute()), RECEIVED)
    assert direct.record == out.record
    # no link known: unmatched, as before
    (unmatched,) = connector.translate_linked(headers(body), body, RECEIVED, None)
    assert unmatched.topic == "review.queue"


@pytest.mark.parametrize("body", [
    event("payment_intent.succeeded", payment_intent()),          # names its order itself
    event("customer.created", {"id": "cus_1", "object": "customer"}),  # not handled
    b"not json",                                                   # translate reports it
])
def test_only_handled_events_without_an_order_ask_for_a_link(connector: StripeConnector, body: bytes) -> None:
    assert connector.unlinked_payment(body) is None


def test_metadata_wins_over_a_link(connector: StripeConnector) -> None:
    body = event("payment_intent.succeeded", payment_intent(order_id="1001"))
    (out,) = connector.translate_linked(headers(body), body, RECEIVED, "9999")
    assert out.key == "1001"
