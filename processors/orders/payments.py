"""Payment facts of one order and what they mean: provider status, exact amounts, holds, anomalies. Pure.

The payment provider's events on `payments` (PaymentAuthorized, PaymentCaptured, PaymentFailed,
RefundIssued, ChargebackOpened) are not applied as status *moves*: each is recorded as a **fact** in
`PaymentFacts` (kept in the orders table entry, `record.OrderRecord`), and the payment status, the
captured and refunded sums, the holds and the anomalies are *derived* from all facts together. Every
way of recording is a merge that is idempotent and commutative, so redelivery changes nothing and
the facts — hence everything derived — do not depend on the order events arrive in.

Recording (`record_event`), per kind:
  - PaymentAuthorized, by `payment_id`: the authorisation with the latest `authorized_at` (ties: the
    larger event id) is kept; an amount update of the same payment replaces the older one.
  - PaymentCaptured, by *fingerprint* `(payment_id, amount, currency, captured_at)`: the same capture
    reported twice under different event ids (a connector re-derived its id, or two systems relay
    the same provider capture) is one capture, counted once (the smaller event id is kept); it is
    not an anomaly. Distinct captures of one payment add up (partial captures, `final_capture`
    false). **Double capture** = a payment with two or more distinct *final* captures: the provider
    reports that money moved twice, so both count (captured may exceed the total, which then raises
    `over_capture` as well) and `double_capture:<payment_id>` is raised.
  - PaymentFailed, by `payment_id`: the latest failure (retries of one payment replace each other).
  - RefundIssued, by `refund_id`: the largest figure. Stripe sends a charge's *cumulative* refunded
    amount under one `<charge>/cumulative` refund id, Shopify one immutable event per refund; the
    largest figure is the latest for the former and the only one for the latter, and a stale
    cumulative figure can never shrink the sum. The order's refunded sum is the sum over refund ids.
  - ChargebackOpened, by `dispute_id`.
  - An authorisation, capture or refund in a currency other than the order's is **foreign**: kept as
    evidence (by event id), never added to an amount, and raises `currency_mismatch:<event id>`.
    (A failure or a dispute counts whatever its currency: no money moved / the dispute stands.)

Derivation (`view`), with sums over the facts in the order currency (exact Decimals, never floats)
and `captured`/`refunded` the order's merged sums (the larger of the provider's sum and what the
shop's own status implies, see `canonical`). Every rule whose condition holds is a candidate; the
candidate latest in the payment precedence (`transitions.PAYMENT_PRECEDENCE`) is the provider's
payment status, cited by its rule id in the audit trail:

  payments.failed                a failure was reported                           failed
  payments.authorized            an authorisation exists                          authorized
  payments.captured_partially    0 < provider captured < total                    partially_paid
  payments.captured_in_full      provider captured >= total (> 0)                 paid
  payments.disputed              a chargeback was opened                          disputed
  payments.refunded_partially    0 < refunded < total                             partially_refunded
  payments.refunded_in_full      refunded >= total (> 0)                          refunded

Each condition, once true, stays true or hands over to a later rule as facts accumulate (with the
order total fixed), so the derived status only moves forward in the precedence.

Holds (`hold_reasons`): `chargeback:<dispute id>` for every dispute; `payment_risk:<level>` for an
authorisation whose provider `risk_level` is listed in the orders policy.

Reconciliation (`anomalies`), each identified by a key the record remembers so it is raised once:
  over_capture                   provider captured > total
  double_capture:<payment id>    two or more distinct final captures of one payment
  currency_mismatch:<event id>   a foreign authorisation, capture or refund
  refund_exceeds_capture         refunded > captured (judged on what is known when the refund is
                                 applied; captures and refunds share `payments`, keyed by order, so a
                                 provider's capture is read before its refund)
  chargeback:<dispute id>        a chargeback was opened
Under-capture is not an anomaly: it is the status `partially_paid`. `invoice_due` is true when the
captured sum equals the total exactly (same currency, > 0): the orders processor then emits
`CreateInvoice` once per order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeAlias

from pydantic import BaseModel, ConfigDict

from shopstream.schemas.models import (
    ChargebackOpened,
    Money,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentStatus,
    RefundIssued,
    RefundLine,
)

from .transitions import PAYMENT_PRECEDENCE

PaymentEvent: TypeAlias = PaymentAuthorized | PaymentCaptured | PaymentFailed | RefundIssued | ChargebackOpened
PAYMENT_EVENTS = (PaymentAuthorized, PaymentCaptured, PaymentFailed, RefundIssued, ChargebackOpened)

#: (rule id, payment status, condition) — the derivation table above, as data.
PAYMENT_RULES: tuple[tuple[str, PaymentStatus, str], ...] = (
    ("payments.failed", "failed", "a failure was reported"),
    ("payments.authorized", "authorized", "an authorisation exists"),
    ("payments.captured_partially", "partially_paid", "0 < provider captured < total"),
    ("payments.captured_in_full", "paid", "provider captured >= total (> 0)"),
    ("payments.disputed", "disputed", "a chargeback was opened"),
    ("payments.refunded_partially", "partially_refunded", "0 < refunded < total"),
    ("payments.refunded_in_full", "refunded", "refunded >= total (> 0)"),
)


class _Fact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Authorization(_Fact):
    """The latest authorisation of one payment."""

    payment_id: str
    provider: str
    amount: Money
    at: datetime
    risk_level: str | None = None
    event_id: str


class Capture(_Fact):
    """One capture (money moved)."""

    payment_id: str
    provider: str
    amount: Money
    at: datetime
    final: bool = True
    event_id: str


class Failure(_Fact):
    """The latest failed attempt of one payment."""

    payment_id: str
    provider: str
    at: datetime
    code: str | None = None
    event_id: str


class Refund(_Fact):
    """The largest figure reported under one refund id."""

    refund_id: str
    payment_id: str
    provider: str
    amount: Money
    at: datetime
    return_id: str | None = None
    event_id: str
    reason: str | None = None
    lines: tuple[RefundLine, ...] = ()  # what the refund names (credit note lines)


class Dispute(_Fact):
    """A chargeback."""

    dispute_id: str
    payment_id: str
    provider: str
    amount: Money
    at: datetime
    reason_code: str
    event_id: str


class Foreign(_Fact):
    """Money reported in a currency other than the order's: evidence only, never summed."""

    event_id: str
    event_type: str
    payment_id: str
    amount: Money
    at: datetime


class PaymentFacts(_Fact):
    """Everything the payment provider(s) said about one order."""

    authorizations: dict[str, Authorization] = {}
    captures: dict[str, Capture] = {}
    failures: dict[str, Failure] = {}
    refunds: dict[str, Refund] = {}
    disputes: dict[str, Dispute] = {}
    foreign: dict[str, Foreign] = {}

    def is_empty(self) -> bool:
        """No payment fact at all."""
        return not (self.authorizations or self.captures or self.failures or self.refunds or self.disputes
                    or self.foreign)


def event_time(event: PaymentEvent) -> datetime:
    """The source time of a payment event."""
    if isinstance(event, PaymentAuthorized):
        return event.authorized_at
    if isinstance(event, PaymentCaptured):
        return event.captured_at
    if isinstance(event, PaymentFailed):
        return event.failed_at
    if isinstance(event, RefundIssued):
        return event.refunded_at
    return event.opened_at


def _plain(amount: Decimal) -> str:
    text = format(amount.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def plain(amount: Decimal) -> str:
    """An amount as its shortest exact text (`10` for 10.00): stable keys and ids."""
    return _plain(amount)


def capture_fingerprint(payment_id: str, amount: Money, at: datetime) -> str:
    """What identifies one capture whatever event id it was reported under."""
    return f"{payment_id}|{_plain(amount.amount)}|{amount.currency}|{at.isoformat()}"


def _with(facts: PaymentFacts, name: str, key: str, value: _Fact) -> PaymentFacts:
    table = dict(getattr(facts, name))
    table[key] = value
    return facts.model_copy(update={name: table})


def record_event(facts: PaymentFacts, event: PaymentEvent, currency: str) -> tuple[PaymentFacts, str | None]:
    """The facts after recording one payment event of an order in `currency`.

    Returns (facts, note): `note` says why nothing changed (a duplicate or an older figure); the
    facts are then returned unchanged.
    """
    at = event_time(event)
    eid = event.meta.event_id
    if isinstance(event, ChargebackOpened):
        if event.dispute_id in facts.disputes:
            return facts, f"dispute {event.dispute_id} is already recorded"
        return _with(facts, "disputes", event.dispute_id, Dispute(
            dispute_id=event.dispute_id, payment_id=event.payment_id, provider=event.provider,
            amount=event.amount, at=at, reason_code=event.reason_code, event_id=eid)), None
    if isinstance(event, PaymentFailed):
        old_failure = facts.failures.get(event.payment_id)
        if old_failure is not None and (old_failure.at, old_failure.event_id) >= (at, eid):
            return facts, f"payment {event.payment_id}: a failure as new or newer is already recorded"
        code = event.failure_code or event.decline_code
        return _with(facts, "failures", event.payment_id, Failure(
            payment_id=event.payment_id, provider=event.provider, at=at, code=code, event_id=eid)), None
    if event.amount.currency != currency:
        if eid in facts.foreign:
            return facts, f"{event.meta.event_type} {eid} in {event.amount.currency} is already recorded"
        return _with(facts, "foreign", eid, Foreign(event_id=eid, event_type=event.meta.event_type,
                                                    payment_id=event.payment_id, amount=event.amount, at=at)), None
    if isinstance(event, PaymentAuthorized):
        old_auth = facts.authorizations.get(event.payment_id)
        if old_auth is not None and (old_auth.at, old_auth.event_id) >= (at, eid):
            return facts, f"payment {event.payment_id}: an authorisation as new or newer is already recorded"
        return _with(facts, "authorizations", event.payment_id, Authorization(
            payment_id=event.payment_id, provider=event.provider, amount=event.amount, at=at,
            risk_level=event.risk_level, event_id=eid)), None
    if isinstance(event, PaymentCaptured):
        key = capture_fingerprint(event.payment_id, event.amount, at)
        old_capture = facts.captures.get(key)
        if old_capture is not None and old_capture.event_id <= eid:
            return facts, (f"capture {key} is already recorded" if old_capture.event_id == eid else
                           f"capture {key} was already reported as event {old_capture.event_id}: the same capture")
        return _with(facts, "captures", key, Capture(
            payment_id=event.payment_id, provider=event.provider, amount=event.amount, at=at,
            final=event.final_capture, event_id=eid)), None
    # RefundIssued
    old_refund = facts.refunds.get(event.refund_id)
    if old_refund is not None and (old_refund.amount.amount, old_refund.at, old_refund.event_id) >= (
            event.amount.amount, at, eid):
        return facts, f"refund {event.refund_id}: a figure as large or larger is already recorded"
    return _with(facts, "refunds", event.refund_id, Refund(
        refund_id=event.refund_id, payment_id=event.payment_id, provider=event.provider, amount=event.amount,
        at=at, return_id=event.return_id, event_id=eid, reason=event.reason, lines=tuple(event.lines))), None


def provider_captured(facts: PaymentFacts) -> Decimal:
    """Sum of the distinct captures (order currency)."""
    return sum((c.amount.amount for c in facts.captures.values()), Decimal(0))


def provider_refunded(facts: PaymentFacts) -> Decimal:
    """Sum over refund ids of their largest figure (order currency)."""
    return sum((r.amount.amount for r in facts.refunds.values()), Decimal(0))


@dataclass(frozen=True)
class PaymentView:
    """What the payment facts say: the status (None: no payment fact) and the rule that decided it."""

    status: PaymentStatus | None
    rule: str | None
    captured: Decimal
    refunded: Decimal


def view(facts: PaymentFacts, total: Money, refunded: Decimal) -> PaymentView:
    """The provider's payment status over the facts (`refunded`: the order's merged refunded sum).

    No payment fact at all: status None (the provider has said nothing).
    """
    own_captured = provider_captured(facts)
    own_refunded = provider_refunded(facts)
    if facts.is_empty():
        return PaymentView(status=None, rule=None, captured=own_captured, refunded=own_refunded)
    holds = {
        "payments.failed": bool(facts.failures),
        "payments.authorized": bool(facts.authorizations),
        "payments.captured_partially": Decimal(0) < own_captured < total.amount,
        "payments.captured_in_full": own_captured > 0 and own_captured >= total.amount,
        "payments.disputed": bool(facts.disputes),
        "payments.refunded_partially": Decimal(0) < refunded < total.amount,
        "payments.refunded_in_full": refunded > 0 and refunded >= total.amount,
    }
    best: tuple[str, PaymentStatus] | None = None
    for rule, status, _ in PAYMENT_RULES:
        if holds[rule] and (best is None or PAYMENT_PRECEDENCE.index(status) > PAYMENT_PRECEDENCE.index(best[1])):
            best = (rule, status)
    return PaymentView(status=best[1] if best else None, rule=best[0] if best else None,
                       captured=own_captured, refunded=own_refunded)


def hold_reasons(facts: PaymentFacts, risk_levels: Iterable[str]) -> set[str]:
    """Hold reasons the payment facts give."""
    levels = set(risk_levels)
    reasons = {f"chargeback:{d}" for d in facts.disputes}
    reasons |= {f"payment_risk:{a.risk_level}" for a in facts.authorizations.values()
                if a.risk_level is not None and a.risk_level in levels}
    return reasons


@dataclass(frozen=True)
class Anomaly:
    """A reconciliation finding: raised once per order and key."""

    key: str
    kind: str
    summary: str
    evidence: dict[str, str] = field(default_factory=dict)


def _fmt(amount: Decimal) -> str:
    return _plain(amount)


def anomalies(facts: PaymentFacts, total: Money, captured: Decimal, refunded: Decimal) -> list[Anomaly]:
    """Every reconciliation finding that holds now (the caller raises the ones not raised before)."""
    found: list[Anomaly] = []
    cur = total.currency
    own = provider_captured(facts)
    if own > total.amount:
        found.append(Anomaly("over_capture", "over_capture",
                             f"captured {_fmt(own)} {cur} exceeds the order total {_fmt(total.amount)} {cur}",
                             {"captured": _fmt(own), "total": _fmt(total.amount), "currency": cur,
                              "over_by": _fmt(own - total.amount)}))
    finals: dict[str, list[Capture]] = {}
    for capture in facts.captures.values():
        if capture.final:
            finals.setdefault(capture.payment_id, []).append(capture)
    for payment_id, caps in sorted(finals.items()):
        if len(caps) > 1:
            caps = sorted(caps, key=lambda c: (c.at, c.event_id))
            found.append(Anomaly(f"double_capture:{payment_id}", "double_capture",
                                 f"payment {payment_id} was captured in full {len(caps)} times",
                                 {"payment_id": payment_id, "captures": str(len(caps)), "currency": cur,
                                  "amounts": ",".join(_fmt(c.amount.amount) for c in caps),
                                  "capture_event_ids": ",".join(c.event_id for c in caps)}))
    for eid, foreign in sorted(facts.foreign.items()):
        found.append(Anomaly(f"currency_mismatch:{eid}", "currency_mismatch",
                             f"{foreign.event_type} of {_fmt(foreign.amount.amount)} {foreign.amount.currency} "
                             f"for an order in {cur}",
                             {"event_id": eid, "event_type": foreign.event_type, "payment_id": foreign.payment_id,
                              "amount": _fmt(foreign.amount.amount), "currency": foreign.amount.currency,
                              "order_currency": cur}))
    if refunded > captured:
        found.append(Anomaly("refund_exceeds_capture", "refund_exceeds_capture",
                             f"refunded {_fmt(refunded)} {cur} exceeds captured {_fmt(captured)} {cur}",
                             {"refunded": _fmt(refunded), "captured": _fmt(captured), "currency": cur}))
    for dispute_id, dispute in sorted(facts.disputes.items()):
        found.append(Anomaly(f"chargeback:{dispute_id}", "chargeback",
                             f"chargeback {dispute_id} ({dispute.reason_code}) over "
                             f"{_fmt(dispute.amount.amount)} {dispute.amount.currency}",
                             {"dispute_id": dispute_id, "payment_id": dispute.payment_id,
                              "provider": dispute.provider, "reason_code": dispute.reason_code,
                              "amount": _fmt(dispute.amount.amount), "currency": dispute.amount.currency}))
    return found


def invoice_due(captured: Decimal, total: Money) -> bool:
    """Captured equals the order total exactly (and something was captured)."""
    return captured > 0 and captured == total.amount


def main_payment(facts: PaymentFacts) -> tuple[str | None, str | None]:
    """(payment_id, provider) of the largest capture, else of the latest authorisation; (None, None)."""
    if facts.captures:
        best = max(facts.captures.values(), key=lambda c: (c.amount.amount, c.payment_id))
        return best.payment_id, best.provider
    if facts.authorizations:
        auth = max(facts.authorizations.values(), key=lambda a: (a.at, a.payment_id))
        return auth.payment_id, auth.provider
    return None, None
