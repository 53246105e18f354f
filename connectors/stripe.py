"""Stripe connector: `POST /webhooks/stripe` (Event objects, pure: no I/O here).

- Authenticity: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`; every `v1` is the hex
  HMAC-SHA256 of `f"{t}.{raw body}"` with the endpoint's signing secret (`SHOPSTREAM_STRIPE_SECRET`).
  Any `v1` may match (Stripe sends one per active secret while a secret is rolled); other schemes
  (`v0`, test keys) are ignored; the endpoint secret may be a list (`new,old`) while it is rolled on our
  side. `t` is 1-11 ASCII digits and must lie within `tolerance_s` (default 300 s) of `now()`, in
  either direction: an old `t` is a replay, a `t` far in the future a broken clock. Missing header,
  unparseable header, stale timestamp or no matching `v1`: 401.
- Dedupe: on the Stripe event id (`evt_...`, the same on every retry; the signature header changes
  per attempt). Stripe sends no delivery id header, so this connector implements the optional
  `delivery_id_from_body` of `connectors.base.DeliveryIdFromBody`: the front asks it after the
  signature check, i.e. only for authenticated bodies. A body without an id gets no dedupe claim
  (and is a 422 in `translate`). The event id is also the identity of the deterministic event ids,
  so a retry that slips past the dedupe store is still a duplicate downstream.
- Routing (`type`), all on `payments` keyed by the order id:
    payment_intent.amount_capturable_updated -> PaymentAuthorized (amount_capturable; a zero
                                                capturable amount authorises nothing: acknowledged)
    payment_intent.succeeded                  -> PaymentCaptured (amount_received, final)
    payment_intent.payment_failed             -> PaymentFailed (amount, last_payment_error)
    charge.refunded                           -> RefundIssued (see "refunds" below)
    charge.dispute.created                    -> ChargebackOpened (dispute amount, reason, due_by)
  Other types are acknowledged and counted by the front (`translate` returns []).
- Order: `data.object.metadata.order_id`; when absent (Stripe disputes carry no order metadata),
  the order an earlier event of the same payment was published for (the webhook front remembers
  payment id → order id in Redis, `connectors/payment_links.py`). An event with neither is not
  dropped: it becomes a
  ReviewItem (kind `unmatched_payment`) on `review.queue`, keyed by the payment id (the payment
  intent id, else the charge id; for a dispute the disputed payment's), so every item of one
  payment lands on one partition in order. Its `order_id` is "" (unknown), `event_type`/`event_id`
  name the canonical event it would have been (same deterministic id, so a person who matches it
  by hand can publish exactly that event), `details` carry the Stripe ids and the amount.
- Refunds: `charge.refunded` carries the charge's *cumulative* `amount_refunded`, not the amount of
  the latest refund. `refund_id` is `<charge id>/cumulative` and `payment_id` the charge's payment
  intent, so a consumer keeps the latest figure per refund_id (max / replace, not sum): a
  redelivered or reordered event can never refund twice.
- Money: integer minor units, lowercase ISO codes, converted exactly to Decimal major units with
  the currency's exponent (`shopstream.money.minor_units`, which is ISO 4217), corrected where Stripe
  departs from ISO: MGA is zero-decimal at Stripe, ISK is sent with two (always zero) decimals.
- `payment_id`: the payment intent id (pi_...), also for charges and disputes that name one, so
  captures, refunds and disputes of one payment share it; else the charge id.
- Times: `occurred_at` is the event's `created`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from shopstream.connectors.base import Outgoing, PayloadError, lower_headers, make_meta
from shopstream.connectors.payload import load_json_object, representing
from shopstream.connectors.signing import Secrets, hmac_sha256_hex, secrets_of, timed_signature_valid
from shopstream.money import minor_units
from shopstream.schemas.models import (
    ChargebackOpened,
    EventMeta,
    Money,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    RefundIssued,
    ReviewItem,
)
from shopstream.topology import names

SOURCE = "stripe"
PAYMENTS_TOPIC = names.PAYMENTS
REVIEW_TOPIC = names.REVIEW_QUEUE
DEFAULT_TOLERANCE_S = 300

#: Stripe event type -> canonical record name.
EVENT_TYPES = {
    "payment_intent.amount_capturable_updated": "PaymentAuthorized",
    "payment_intent.succeeded": "PaymentCaptured",
    "payment_intent.payment_failed": "PaymentFailed",
    "charge.refunded": "RefundIssued",
    "charge.dispute.created": "ChargebackOpened",
}

#: Where Stripe's minor units differ from ISO 4217 (https://docs.stripe.com/currencies).
STRIPE_EXPONENTS = {"MGA": 0, "ISK": 2}

#: Failure codes Stripe documents as worth retrying as-is (later), as opposed to a hard decline.
RETRYABLE_CODES = frozenset({"try_again_later", "processing_error", "rate_limit", "issuer_not_available"})


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `v1` value Stripe computes for `body` signed at `timestamp`."""
    return hmac_sha256_hex(secret, f"{timestamp}.".encode() + body)


def signature_header(secrets: list[str] | str, body: bytes, timestamp: int) -> str:
    """A `Stripe-Signature` header value, one `v1` per secret (as during a secret rotation)."""
    keys = [secrets] if isinstance(secrets, str) else secrets
    return ",".join([f"t={timestamp}", *(f"v1={sign(k, body, timestamp)}" for k in keys)])


def exponent(currency: str) -> int:
    """Decimal digits of the minor unit Stripe counts amounts of `currency` in."""
    code = currency.upper()
    return STRIPE_EXPONENTS.get(code, minor_units(code))


def to_money(minor: Any, currency: Any, field: str) -> Money:
    """Stripe's integer minor units + lowercase currency as exact major-unit Money."""
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise PayloadError(f"{field}: currency must be a 3-letter code, got {currency!r}")
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise PayloadError(f"{field}: amount must be an integer of minor units, got {minor!r}")
    if minor < 0:
        raise PayloadError(f"{field}: amount must not be negative, got {minor}")
    try:
        return Money(amount=Decimal(minor).scaleb(-exponent(currency)), currency=currency.upper())
    except ValidationError as exc:
        raise PayloadError(f"{field}: amount {minor} {currency} cannot be represented: "
                           f"{exc.errors()[0]['msg']}") from None


@dataclass(frozen=True)
class StripeEvent:
    """The parts of an Event envelope shopstream reads."""

    id: str
    type: str
    created: datetime
    obj: dict[str, Any]


def _from_epoch(value: Any, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError(f"{field}: expected unix seconds, got {value!r}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError(f"{field}: not a valid time: {value!r}") from exc


def parse_event(body: bytes) -> StripeEvent:
    """Validate the Event envelope; PayloadError with a readable reason otherwise."""
    data = load_json_object(body)
    event_id, event_type = data.get("id"), data.get("type")
    if not isinstance(event_id, str) or not event_id:
        raise PayloadError("id: a Stripe event id (evt_...) is required")
    if data.get("object", "event") != "event":
        raise PayloadError(f"object: expected 'event', got {data.get('object')!r}")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError("type: the event type is required")
    created = _from_epoch(data.get("created"), "created")
    obj = data.get("data", {}).get("object") if isinstance(data.get("data"), dict) else None
    if not isinstance(obj, dict):
        raise PayloadError("data.object: the event's object is required")
    return StripeEvent(id=event_id, type=event_type, created=created, obj=obj)


def _str(obj: Mapping[str, Any], field: str, where: str, *, required: bool = True) -> str | None:
    value = obj.get(field)
    if value is None or value == "":
        if required:
            raise PayloadError(f"{where}.{field} is required")
        return None
    if isinstance(value, dict) and isinstance(value.get("id"), str):  # an expanded object
        return str(value["id"])
    if not isinstance(value, str):
        raise PayloadError(f"{where}.{field}: expected a string, got {type(value).__name__}")
    return value


def _order_id(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise PayloadError("data.object.metadata: expected an object")
    value = metadata.get("order_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise PayloadError(f"data.object.metadata.order_id: expected a string, got {type(value).__name__}")
    return value.strip()


class StripeConnector:
    """Translates Stripe payment, refund and dispute events into canonical payment events."""

    name = SOURCE

    #: Request headers a parked body keeps: what `verify` reads again on a redrive.
    kept_headers: tuple[str, ...] = ("stripe-signature",)

    def __init__(self, secret: Secrets, *, tolerance_s: float = DEFAULT_TOLERANCE_S,
                 now: Callable[[], float] = time.time) -> None:
        self._secret = secrets_of(secret)
        self._tolerance_s = tolerance_s
        self._now = now

    # ------------------------------------------------------------------------------- protocol

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        # An empty secret list matches nothing (an empty key would be an HMAC anyone can compute); the header
        # must be ASCII with a bounded `t` (connectors.signing.parse_timed_signature).
        return timed_signature_valid(self._secret, lower_headers(headers).get("stripe-signature", ""), body,
                                     now=self._now(), tolerance_s=self._tolerance_s)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return None  # Stripe sends no delivery id header; see delivery_id_from_body

    def delivery_id_from_body(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """The Stripe event id (evt_...): the same on every retry of the event."""
        try:
            event_id = load_json_object(body).get("id")
        except PayloadError:
            return None
        return event_id if isinstance(event_id, str) and event_id else None

    def unlinked_payment(self, body: bytes) -> str | None:
        """The payment id of a handled event without `metadata.order_id` (a dispute, usually)."""
        try:
            event = parse_event(body)
            if event.type not in EVENT_TYPES or _order_id(event.obj) is not None:
                return None
            return self._payment_id(event)
        except PayloadError:
            return None  # translate reports it

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        return self.translate_linked(headers, body, received_at, None)

    def translate_linked(self, headers: Mapping[str, str], body: bytes, received_at: datetime,
                         linked_order: str | None) -> list[Outgoing]:
        """`translate`; an event without `metadata.order_id` goes to the order its payment was linked to."""
        event = parse_event(body)
        record_type = EVENT_TYPES.get(event.type)
        if record_type is None:
            return []
        build = {
            "PaymentAuthorized": self._authorized,
            "PaymentCaptured": self._captured,
            "PaymentFailed": self._failed,
            "RefundIssued": self._refunded,
            "ChargebackOpened": self._dispute,
        }[record_type]
        payment_id = self._payment_id(event)
        order_id = _order_id(event.obj) or linked_order
        meta = self._meta(record_type, event, received_at, payment_id)
        with representing(f"{event.type} {event.id}"):
            record = build(event, meta, order_id or "", payment_id)
        if record is None:
            return []
        if order_id is None:
            return [Outgoing(topic=REVIEW_TOPIC, key=payment_id,
                             record=self._unmatched(event, record, payment_id, received_at))]
        return [Outgoing(topic=PAYMENTS_TOPIC, key=order_id, record=record)]

    # -------------------------------------------------------------------------------- helpers

    @staticmethod
    def _payment_id(event: StripeEvent) -> str:
        obj = event.obj
        if event.type.startswith("payment_intent."):
            return str(_str(obj, "id", "data.object"))
        if event.type == "charge.refunded":
            return _str(obj, "payment_intent", "data.object", required=False) or str(_str(obj, "id", "data.object"))
        # a dispute: its payment intent, else its charge
        return (_str(obj, "payment_intent", "data.object", required=False)
                or str(_str(obj, "charge", "data.object")))

    @staticmethod
    def _meta(record_type: str, event: StripeEvent, received_at: datetime, payment_id: str) -> EventMeta:
        return make_meta(source=SOURCE, event_type=record_type, identity=event.id, occurred_at=event.created,
                         received_at=received_at, source_event_id=event.id,
                         correlation_id=f"stripe:payment:{payment_id}")

    @staticmethod
    def _currency(obj: Mapping[str, Any]) -> str:
        return str(_str(obj, "currency", "data.object"))

    @staticmethod
    def _method(obj: Mapping[str, Any]) -> str | None:
        types = obj.get("payment_method_types")
        if isinstance(types, list) and len(types) == 1 and isinstance(types[0], str):
            return types[0]
        return None

    def _authorized(self, event: StripeEvent, meta: EventMeta, order_id: str,
                    payment_id: str) -> PaymentAuthorized | None:
        amount = to_money(event.obj.get("amount_capturable"), self._currency(event.obj),
                          "data.object.amount_capturable")
        if amount.amount == 0:
            return None  # nothing is authorised (any more): acknowledged, not published
        return PaymentAuthorized(meta=meta, order_id=order_id, payment_id=payment_id, provider=SOURCE,
                                 amount=amount, authorized_at=event.created, method=self._method(event.obj),
                                 risk_level=self._risk_level(event.obj))

    @staticmethod
    def _risk_level(obj: Mapping[str, Any]) -> str | None:
        """Stripe Radar's `outcome.risk_level` of the charge: on a charge itself, or on an intent's charge
        when Stripe sends it expanded (`latest_charge`, or `charges.data` in older API versions)."""
        charges = (obj.get("charges") or {}).get("data") if isinstance(obj.get("charges"), dict) else None
        for charge in (obj, obj.get("latest_charge"), *(charges[-1:] if isinstance(charges, list) else [])):
            outcome = charge.get("outcome") if isinstance(charge, dict) else None
            level = outcome.get("risk_level") if isinstance(outcome, dict) else None
            if isinstance(level, str) and level and level != "not_assessed":
                return level
        return None

    def _captured(self, event: StripeEvent, meta: EventMeta, order_id: str, payment_id: str) -> PaymentCaptured:
        obj = event.obj
        received = obj.get("amount_received", obj.get("amount"))
        amount = to_money(received, self._currency(obj), "data.object.amount_received")
        return PaymentCaptured(meta=meta, order_id=order_id, payment_id=payment_id, provider=SOURCE, amount=amount,
                               captured_at=event.created, final_capture=True, method=self._method(obj))

    def _failed(self, event: StripeEvent, meta: EventMeta, order_id: str, payment_id: str) -> PaymentFailed:
        obj = event.obj
        amount = to_money(obj.get("amount"), self._currency(obj), "data.object.amount")
        error = obj.get("last_payment_error") or {}
        if not isinstance(error, dict):
            raise PayloadError("data.object.last_payment_error: expected an object")
        code = _str(error, "code", "data.object.last_payment_error", required=False)
        decline = _str(error, "decline_code", "data.object.last_payment_error", required=False)
        message = _str(error, "message", "data.object.last_payment_error", required=False)
        return PaymentFailed(meta=meta, order_id=order_id, payment_id=payment_id, provider=SOURCE, amount=amount,
                             failed_at=event.created, failure_code=code, decline_code=decline,
                             failure_message=message,
                             retryable=bool({code, decline} & RETRYABLE_CODES))

    def _refunded(self, event: StripeEvent, meta: EventMeta, order_id: str, payment_id: str) -> RefundIssued:
        obj = event.obj
        charge_id = str(_str(obj, "id", "data.object"))
        amount = to_money(obj.get("amount_refunded"), self._currency(obj), "data.object.amount_refunded")
        return RefundIssued(meta=meta, order_id=order_id, payment_id=payment_id, provider=SOURCE,
                            refund_id=f"{charge_id}/cumulative", amount=amount, refunded_at=event.created,
                            reason=self._refund_reason(obj))

    @staticmethod
    def _refund_reason(charge: Mapping[str, Any]) -> str | None:
        refunds = charge.get("refunds")
        data = refunds.get("data") if isinstance(refunds, dict) else None
        if isinstance(data, list) and data and isinstance(data[0], dict) and isinstance(data[0].get("reason"), str):
            return str(data[0]["reason"])  # the newest refund comes first
        return None

    def _dispute(self, event: StripeEvent, meta: EventMeta, order_id: str, payment_id: str) -> ChargebackOpened:
        obj = event.obj
        amount = to_money(obj.get("amount"), self._currency(obj), "data.object.amount")
        details = obj.get("evidence_details")
        due_by = details.get("due_by") if isinstance(details, dict) else None
        card = (obj.get("payment_method_details") or {}).get("card") if isinstance(
            obj.get("payment_method_details"), dict) else None
        network_code = card.get("network_reason_code") if isinstance(card, dict) else None
        opened = _from_epoch(obj["created"], "data.object.created") if obj.get("created") is not None \
            else event.created
        return ChargebackOpened(
            meta=meta, order_id=order_id, payment_id=payment_id, provider=SOURCE,
            dispute_id=str(_str(obj, "id", "data.object")), amount=amount, opened_at=opened,
            reason_code=_str(obj, "reason", "data.object", required=False) or "unknown",
            network_reason_code=network_code if isinstance(network_code, str) else None,
            respond_by=_from_epoch(due_by, "data.object.evidence_details.due_by") if due_by is not None else None)

    @staticmethod
    def _unmatched(event: StripeEvent, record: BaseModel, payment_id: str, received_at: datetime) -> ReviewItem:
        would_be: EventMeta = record.__dict__["meta"]
        amount: Money = record.__dict__["amount"]
        details = {"provider": SOURCE, "payment_id": payment_id, "stripe_event_id": event.id,
                   "stripe_event_type": event.type, "amount": str(amount.amount), "currency": amount.currency}
        object_id = event.obj.get("id")
        if isinstance(object_id, str):
            details["stripe_object_id"] = object_id
        return ReviewItem(
            meta=make_meta(source=SOURCE, event_type="ReviewItem", identity=event.id, occurred_at=event.created,
                           received_at=received_at, source_event_id=event.id,
                           correlation_id=f"stripe:payment:{payment_id}"),
            order_id="", kind="unmatched_payment",
            reason=f"stripe {event.type} {event.id} has no data.object.metadata.order_id; "
                   f"match payment {payment_id} to an order by hand",
            details=details, event_id=would_be.event_id, event_type=would_be.event_type,
            rule="stripe.metadata.order_id")
