"""Payment provider (Stripe): captures, failures, partial refunds and a dispute, as Stripe Events."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shopstream.sim.steps import SimOrder, Step


def _cents(amount: Decimal) -> int:
    return int(amount * 100)


def _event(order: SimOrder, kind: str, obj: dict[str, Any], suffix: str, created: datetime) -> dict[str, Any]:
    return {"id": f"evt_sim_{order.order_id}_{suffix}", "object": "event", "api_version": "2024-04-10",
            "created": int(created.timestamp()), "data": {"object": obj}, "livemode": False,
            "pending_webhooks": 1, "type": kind}


def _intent(order: SimOrder, status: str, received: Decimal) -> dict[str, Any]:
    return {"id": f"pi_{order.order_id}", "object": "payment_intent", "amount": _cents(order.total),
            "amount_capturable": 0, "amount_received": _cents(received), "capture_method": "automatic",
            "created": int(order.placed_at.timestamp()), "currency": "eur", "customer": None,
            "latest_charge": f"ch_{order.order_id}", "livemode": False,
            "metadata": {"order_id": order.order_id}, "payment_method": f"pm_{order.order_id}",
            "payment_method_types": ["card"], "status": status}


def _step(order: SimOrder, at: float, kind: str, obj: dict[str, Any], suffix: str, delay: float) -> Step:
    body = _event(order, kind, obj, suffix, order.placed_at + timedelta(seconds=delay))
    return Step(at=at, source="stripe", kind=kind, body=body, delivery_id=body["id"], subject=order.order_id)


def captured(order: SimOrder, at: float) -> Step:
    """The whole amount captured (payment_intent.succeeded)."""
    return _step(order, at, "payment_intent.succeeded", _intent(order, "succeeded", order.total), "paid", 1)


def failed(order: SimOrder, at: float) -> Step:
    """The card was declined (payment_intent.payment_failed)."""
    obj = {**_intent(order, "requires_payment_method", Decimal("0")),
           "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds",
                                  "message": "Your card has insufficient funds.", "type": "card_error"}}
    return _step(order, at, "payment_intent.payment_failed", obj, "failed", 1)


def refund_amount(order: SimOrder) -> Decimal:
    """The partial refund of the refund scenario: a goodwill 5.00 (always below the total)."""
    return Decimal("5.00")


def refunded(order: SimOrder, at: float) -> Step:
    """A partial goodwill refund (charge.refunded carries the cumulative amount)."""
    cents = _cents(order.total)
    refund = _cents(refund_amount(order))
    obj = {"id": f"ch_{order.order_id}", "object": "charge", "amount": cents, "amount_captured": cents,
           "amount_refunded": refund, "captured": True, "created": int(order.placed_at.timestamp()),
           "currency": "eur", "metadata": {"order_id": order.order_id}, "paid": True,
           "payment_intent": f"pi_{order.order_id}", "refunded": False, "status": "succeeded",
           "refunds": {"object": "list", "has_more": False, "data": [
               {"id": f"re_{order.order_id}_1", "object": "refund", "amount": refund, "currency": "eur",
                "reason": "requested_by_customer", "status": "succeeded"}]}}
    return _step(order, at, "charge.refunded", obj, "refund", 3)


def disputed(order: SimOrder, at: float) -> Step:
    """A chargeback: Stripe's dispute carries no order metadata (found through the payment)."""
    created = int((order.placed_at + timedelta(seconds=4)).timestamp())
    obj = {"id": f"dp_{order.order_id}", "object": "dispute", "amount": _cents(order.total), "currency": "eur",
           "charge": f"ch_{order.order_id}", "payment_intent": f"pi_{order.order_id}", "created": created,
           "reason": "fraudulent", "status": "needs_response", "is_charge_refundable": False, "livemode": False,
           "evidence_details": {"due_by": created + 7 * 86400, "has_evidence": False, "past_due": False,
                                "submission_count": 0}, "metadata": {},
           "payment_method_details": {"card": {"brand": "visa", "network_reason_code": "10.4"}, "type": "card"}}
    return _step(order, at, "charge.dispute.created", obj, "dispute", 4)
