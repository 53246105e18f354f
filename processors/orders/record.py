"""`OrderRecord`: the orders table's value — the canonical OrderState plus what the contract has no room for.

OrderState (the Avro contract on `orders.state`) carries the canonical order only. To apply the
events of every source idempotently and in any arrival order, the processor also keeps, per order:

  state      the canonical OrderState (what is published; None while only parked events exist)
  shop       the order as the shop alone sees it: the state the shop lifecycle (`lifecycle.apply`)
             moves with OrderPlaced / OrderUpdated / OrderCancelled and the source's status mapping.
             Its payment and fulfillment statuses are one input of the canonical ones (see
             `canonical`); keeping it separate means a shop snapshot is judged against what the shop
             said before, not against what a payment provider or a carrier said meanwhile.
  order_number, shipping, customer, billing_address, shipping_address, payment_gateway, taxes_included
             from the shop's newest snapshot: what the commands a receiver acts on need (CreateInvoice,
             CreateCreditNote, CreateReturnLabel; `invoicing`). Customer and addresses are PII: they
             live here, in the changelog and on the commands topics, never in logs, metrics or DLQ text
  payments / shipments / returns
             the facts of the other sources (`payments.PaymentFacts`, `shipments.ShipmentFacts`,
             `returns.ReturnFacts`), from which the canonical dimensions are derived
  parked     events waiting for the order to arrive (`parking.ParkedEvent`)
  released   a ReleaseOrder was sent and no HoldOrder since (so it is sent once per transition)
  review_holds  hold reasons `review:<rule-id>` the review rules' verdicts named (`decisions`)
  lifted     hold reasons a person's approval lifted: never held again for this order
  decisions  `<work item id>=<approve|reject>` of every decision applied (the first per item wins)
  awaiting_review  the order waits for its first review verdict (orders policy `review.await_verdict`):
             no ReleaseOrder until it arrives
  done       keys of the once-only outputs already emitted: `invoice`, `invoice:<shipment id>` /
             `invoice.skip:<shipment id>` (invoice on shipment), `credit:<refund id>=<figure>`, raised anomaly keys
             (`over_capture`, `chargeback:<dispute id>`, ...), `shipment_exception:<shipment>:<event>`,
             `return.label:<return id>` / `return.review:<return id>` (the label decision),
             `return.restock:<inspection event id>`, `return.refund:<inspection event id>`,
             `return.shipping`

`to_dict()` / `from_dict()` give a JSON-compatible dict (what the changelog stores: exact decimals as
strings, times as ISO-8601). `from_dict` also accepts a bare OrderState dict — what the orders table
held before this wrapper — and wraps it (`from_state`), so an existing table keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shopstream.schemas.models import Address, Customer, Money, OrderState

from .parking import ParkedEvent
from .payments import PaymentFacts
from .returns import ReturnFacts
from .shipments import ShipmentFacts
from .transitions import releasable

RECORD_FORMAT = 1


@dataclass(frozen=True)
class OrderRecord:
    """One order's entry in the orders table (see the module docstring)."""

    order_id: str
    state: OrderState | None = None
    shop: OrderState | None = None
    order_number: str | None = None
    shipping: Money | None = None
    customer: Customer | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    payment_gateway: str | None = None
    taxes_included: bool | None = None
    payments: PaymentFacts = field(default_factory=PaymentFacts)
    shipments: ShipmentFacts = field(default_factory=ShipmentFacts)
    returns: ReturnFacts = field(default_factory=ReturnFacts)
    parked: tuple[ParkedEvent, ...] = ()
    released: bool = False
    done: frozenset[str] = frozenset()
    review_holds: frozenset[str] = frozenset()
    lifted: frozenset[str] = frozenset()
    decisions: frozenset[str] = frozenset()
    awaiting_review: bool = False

    def is_empty(self) -> bool:
        """Nothing known and nothing waiting (the adapter may delete the table entry)."""
        return (self.state is None and self.shop is None and not self.parked and self.payments.is_empty()
                and self.shipments.is_empty() and self.returns.is_empty())

    @classmethod
    def from_state(cls, state: OrderState) -> OrderRecord:
        """Wrap a bare OrderState (a table entry written before OrderRecord existed).

        The shop view is the state itself; `released` and the invoice flag are inferred from it
        (releasable now: taken as released; captured equals total: taken as invoiced), so wrapping
        never re-sends a command for what already happened.
        """
        done = frozenset({"invoice"}) if state.captured.amount > 0 and state.captured == state.total else frozenset()
        return cls(order_id=state.order_id, state=state, shop=state,
                   released=releasable(state.payment_status, state.fulfillment_status, state.cancelled_at is not None,
                                       state.hold_reasons),
                   done=done)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form for the table."""
        return {
            "format": RECORD_FORMAT,
            "order_id": self.order_id,
            "state": self.state.model_dump(mode="json") if self.state is not None else None,
            "shop": self.shop.model_dump(mode="json") if self.shop is not None else None,
            "order_number": self.order_number,
            "shipping": self.shipping.model_dump(mode="json") if self.shipping is not None else None,
            "customer": _dump(self.customer),
            "billing_address": _dump(self.billing_address),
            "shipping_address": _dump(self.shipping_address),
            "payment_gateway": self.payment_gateway,
            "taxes_included": self.taxes_included,
            "payments": self.payments.model_dump(mode="json"),
            "shipments": self.shipments.model_dump(mode="json"),
            "returns": self.returns.model_dump(mode="json"),
            "parked": [p.to_dict() for p in self.parked],
            "released": self.released,
            "done": sorted(self.done),
            "review_holds": sorted(self.review_holds),
            "lifted": sorted(self.lifted),
            "decisions": sorted(self.decisions),
            "awaiting_review": self.awaiting_review,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderRecord:
        """Inverse of `to_dict`; a bare OrderState dict (no `format` key) is wrapped with `from_state`."""
        if "format" not in data:
            return cls.from_state(OrderState.model_validate(data))
        if data["format"] != RECORD_FORMAT:
            raise ValueError(f"order record format {data['format']!r} is not supported (expected {RECORD_FORMAT})")
        return cls(
            order_id=str(data["order_id"]),
            state=OrderState.model_validate(data["state"]) if data.get("state") is not None else None,
            shop=OrderState.model_validate(data["shop"]) if data.get("shop") is not None else None,
            order_number=data.get("order_number"),
            shipping=Money.model_validate(data["shipping"]) if data.get("shipping") is not None else None,
            customer=Customer.model_validate(data["customer"]) if data.get("customer") is not None else None,
            billing_address=_address(data.get("billing_address")),
            shipping_address=_address(data.get("shipping_address")),
            payment_gateway=data.get("payment_gateway"),
            taxes_included=data.get("taxes_included"),
            payments=PaymentFacts.model_validate(data.get("payments") or {}),
            shipments=ShipmentFacts.model_validate(data.get("shipments") or {}),
            returns=ReturnFacts.model_validate(data.get("returns") or {}),
            parked=tuple(ParkedEvent.from_dict(p) for p in data.get("parked") or []),
            released=bool(data.get("released", False)),
            done=frozenset(str(k) for k in data.get("done") or []),
            review_holds=frozenset(str(k) for k in data.get("review_holds") or []),
            lifted=frozenset(str(k) for k in data.get("lifted") or []),
            decisions=frozenset(str(k) for k in data.get("decisions") or []),
            awaiting_review=bool(data.get("awaiting_review", False)),
        )


def _dump(value: Customer | Address | None) -> dict[str, Any] | None:
    return value.model_dump(mode="json") if value is not None else None


def _address(data: dict[str, Any] | None) -> Address | None:
    return Address.model_validate(data) if data is not None else None
