"""Invoices and credit notes an ERP can issue as they are: `CreateInvoice`, `CreateCreditNote`. Pure.

`canonical` calls `outputs(record, state, done, policy, cause)` after every applied step; it returns the
commands whose condition now holds and the `done` keys that remember them, so each is sent once.

When an order is invoiced (orders policy `invoicing`, `policy.Invoicing.per_shipment`):
  invoicing.on_capture   one invoice for the whole order (lines + shipping) once captured equals the
                         total exactly (`payments.invoice_due`); done key `invoice`.
  invoicing.on_shipment  (policy `on_shipment`, or the order's payment gateway listed in
                         `on_shipment_gateways`: Kauf auf Rechnung) one invoice per shipment handed
                         over to the carrier, in (hand-over time, shipment id) order, billing the units
                         the shipment carries that no earlier invoice billed (an unlined shipment bills
                         everything left); shipping goes on the first one. Done key
                         `invoice:<shipment id>` (`invoice.skip:<shipment id>` when nothing was left).
A credit note (`CreateCreditNote`) follows every refund the provider reported (RefundIssued facts,
full or partial, lines or amount) once an invoice exists, referencing the invoice it corrects: for a
refund naming lines, the first invoice billing one of its SKUs, else the latest invoice. A refund id
whose figure grows (Stripe's cumulative refund) gets one credit note per increase; done key
`credit:<refund id>=<figure credited so far>`.

Amounts (exact Decimals, rounded half-up to the currency's minor units per line):
  line amount  unit_price x quantity - discount (as the shop charged it)
  prices       gross when the order says `taxes_included` (else the policy's `prices_include_tax`)
  tax          the line's own `tax` when the source itemised it (pro rata for part of a line), else
               from its `tax_rate` or the policy's `default_tax_rate` (shipping: `shipping_tax_rate`):
               gross prices: tax = amount x rate / (1 + rate); net prices: tax = amount x rate
  totals       sums of the lines' net, tax and gross; for a whole-order invoice of gross prices the
               gross total is the order total (the lines are the order's own amounts)

Ids are deterministic, so a replay or a re-emission after a crash names the same document and the ERP
dedupes on it: invoice `uuid5(ORDERS_NAMESPACE, "invoice:<order id>[:<shipment id>]")`, credit note
`uuid5(ORDERS_NAMESPACE, "credit-note:<order id>:<refund id>:<figure>")`; `meta.event_id` as every
output of the orders processor (`output_meta`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel

from shopstream.schemas.models import (
    CreateCreditNote,
    CreateInvoice,
    EventMeta,
    InvoiceLine,
    Money,
    OrderLine,
    OrderState,
    RefundLine,
)

from . import payments
from .output_meta import ORDERS_NAMESPACE, output_meta
from .policy import Invoicing
from .record import OrderRecord
from .returns import quantize
from .shipments import ShipmentFact

RULE_ON_CAPTURE = "invoicing.on_capture"
RULE_ON_SHIPMENT = "invoicing.on_shipment"
_ZERO = Decimal(0)


def invoice_id(order_id: str, shipment_id: str | None = None) -> str:
    """The deterministic id of an order's invoice (of one shipment's, for invoice on shipment)."""
    return str(uuid.uuid5(ORDERS_NAMESPACE, f"invoice:{order_id}" + (f":{shipment_id}" if shipment_id else "")))


def credit_note_id(order_id: str, refund_id: str, figure: Decimal) -> str:
    """The deterministic id of the credit note for a refund id's figure."""
    return str(uuid.uuid5(ORDERS_NAMESPACE, f"credit-note:{order_id}:{refund_id}:{payments.plain(figure)}"))


@dataclass(frozen=True)
class _Priced:
    rate: Decimal
    net: Decimal
    tax: Decimal
    gross: Decimal


def _price(amount: Decimal, rate: Decimal, own_tax: Decimal | None, gross_prices: bool, currency: str) -> _Priced:
    """Net, tax and gross of an amount as charged (see the module docstring)."""
    amount = quantize(amount, currency)
    if own_tax is not None:
        tax = quantize(own_tax, currency)
    elif gross_prices:
        tax = quantize(amount * rate / (1 + rate), currency)
    else:
        tax = quantize(amount * rate, currency)
    if gross_prices:
        return _Priced(rate, amount - tax, tax, amount)
    return _Priced(rate, amount, tax, amount + tax)


def _money(amount: Decimal, currency: str) -> Money:
    return Money(amount=amount, currency=currency)


def _gross_prices(rec: OrderRecord, policy: Invoicing) -> bool:
    return rec.taxes_included if rec.taxes_included is not None else policy.prices_include_tax


def item_line(line: OrderLine, quantity: int, gross_prices: bool, policy: Invoicing, currency: str) -> InvoiceLine:
    """An invoice line billing `quantity` units of an order line (pro rata discount and itemised tax)."""
    share = Decimal(quantity) / Decimal(line.quantity) if line.quantity else Decimal(0)
    discount = line.discount.amount * share if line.discount is not None else _ZERO
    own_tax = line.tax.amount * share if line.tax is not None else None
    rate = line.tax_rate if line.tax_rate is not None else policy.default_tax_rate
    priced = _price(line.unit_price.amount * quantity - discount, rate, own_tax, gross_prices, currency)
    return InvoiceLine(line_id=line.line_id, kind="item", sku=line.sku, title=line.title, quantity=quantity,
                       unit_price=line.unit_price,
                       discount=_money(quantize(discount, currency), currency) if line.discount is not None else None,
                       tax_rate=priced.rate, net=_money(priced.net, currency), tax=_money(priced.tax, currency),
                       gross=_money(priced.gross, currency))


def shipping_line(shipping: Money, gross_prices: bool, policy: Invoicing) -> InvoiceLine:
    """The shipping charge as an invoice line (kind `shipping`)."""
    rate = policy.shipping_tax_rate if policy.shipping_tax_rate is not None else policy.default_tax_rate
    cur = shipping.currency
    priced = _price(shipping.amount, rate, None, gross_prices, cur)
    return InvoiceLine(kind="shipping", title="shipping", quantity=1, unit_price=shipping, tax_rate=rate,
                       net=_money(priced.net, cur), tax=_money(priced.tax, cur), gross=_money(priced.gross, cur))


def _sum(lines: Sequence[InvoiceLine], part: str, currency: str) -> Money:
    return _money(sum((getattr(x, part).amount for x in lines), _ZERO), currency)


def build_invoice(rec: OrderRecord, state: OrderState, cause: EventMeta, policy: Invoicing,
                  billed: Sequence[tuple[OrderLine, int]], with_shipping: bool,
                  shipment: ShipmentFact | None = None) -> CreateInvoice:
    """The CreateInvoice of the given (order line, quantity) pairs, with shipping when asked."""
    cur = state.currency
    gross_prices = _gross_prices(rec, policy)
    lines = [item_line(line, qty, gross_prices, policy, cur) for line, qty in billed if qty > 0]
    shipping = rec.shipping if with_shipping and rec.shipping is not None and rec.shipping.currency == cur else None
    if shipping is not None and shipping.amount > 0:
        lines.append(shipping_line(shipping, gross_prices, policy))
    discounts = [x.discount.amount for x in lines if x.discount is not None]
    payment_id, provider = payments.main_payment(rec.payments)
    gross = _sum(lines, "gross", cur)
    sid = shipment.shipment_id if shipment is not None else None
    return CreateInvoice(
        meta=output_meta("CreateInvoice", cause, f"shipment:{sid}" if sid else ""), order_id=rec.order_id,
        order_number=rec.order_number, amount=gross, tax=_sum(lines, "tax", cur), shipping=shipping,
        lines=[line.model_copy(update={"quantity": qty}) for line, qty in billed if qty > 0],
        customer=rec.customer, billing_address=rec.billing_address or rec.shipping_address,
        invoice_id=invoice_id(rec.order_id, sid), shipment_id=sid, currency=cur,
        shipping_address=rec.shipping_address, invoice_lines=lines,
        discounts=_money(sum(discounts, _ZERO), cur) if discounts else None,
        total_net=_sum(lines, "net", cur), total_tax=_sum(lines, "tax", cur), total_gross=gross,
        payment_reference=payment_id, payment_provider=provider,
        policy=RULE_ON_SHIPMENT if sid else RULE_ON_CAPTURE)


def _handed_over(rec: OrderRecord) -> list[ShipmentFact]:
    def when(s: ShipmentFact) -> tuple[str, str]:
        at = s.dispatched_at or s.delivered_at
        return (at.isoformat() if at is not None else "", s.shipment_id)
    return sorted((s for s in rec.shipments.shipments.values() if s.handed_over), key=when)


def _shipment_invoices(rec: OrderRecord, state: OrderState, done: set[str], policy: Invoicing,
                       cause: EventMeta) -> list[BaseModel]:
    """One invoice per handed-over shipment not invoiced yet (invoice on shipment)."""
    out: list[BaseModel] = []
    left = {line.line_id: line.quantity for line in state.lines}
    first = True
    for shipment in _handed_over(rec):
        key = f"invoice:{shipment.shipment_id}"
        billed = _billable(state.lines, left, shipment)
        if key in done or f"invoice.skip:{shipment.shipment_id}" in done:
            first = first and key not in done
            continue
        if not any(q for _, q in billed):
            done.add(f"invoice.skip:{shipment.shipment_id}")
            continue
        done.add(key)
        out.append(build_invoice(rec, state, cause, policy, billed, with_shipping=first, shipment=shipment))
        first = False
    return out


def _billable(lines: Sequence[OrderLine], left: dict[str, int], shipment: ShipmentFact) -> list[tuple[OrderLine, int]]:
    """The (order line, units) a shipment bills, taking them off `left` (what no earlier shipment billed)."""
    by_sku = dict(shipment.lines)
    whole = shipment.unlined or not by_sku  # no item detail: the parcel is taken to carry all that is left
    billed: list[tuple[OrderLine, int]] = []
    for line in lines:
        want = left[line.line_id] if whole else min(left[line.line_id], by_sku.get(line.sku, 0))
        if not whole:
            by_sku[line.sku] = by_sku.get(line.sku, 0) - want
        left[line.line_id] -= want
        billed.append((line, want))
    return billed


def _issued(rec: OrderRecord, state: OrderState, done: set[str]) -> list[tuple[str, set[str]]]:
    """The invoices issued so far, oldest first: (invoice id, SKUs billed)."""
    if "invoice" in done:
        return [(invoice_id(rec.order_id), {line.sku for line in state.lines})]
    out: list[tuple[str, set[str]]] = []
    left = {line.line_id: line.quantity for line in state.lines}
    for shipment in _handed_over(rec):
        billed = _billable(state.lines, left, shipment)
        if f"invoice:{shipment.shipment_id}" in done:
            out.append((invoice_id(rec.order_id, shipment.shipment_id), {line.sku for line, q in billed if q}))
    return out


def _credited(done: set[str], refund_id: str) -> Decimal:
    prefix = f"credit:{refund_id}="
    return max((Decimal(k[len(prefix):]) for k in done if k.startswith(prefix)), default=_ZERO)


def _credit_lines(refund: payments.Refund, amount: Decimal, state: OrderState, rec: OrderRecord,
                  policy: Invoicing) -> list[InvoiceLine]:
    """Per refunded SKU when the refund names lines adding up to `amount`; else one line of kind `refund`."""
    cur = state.currency
    gross_prices = _gross_prices(rec, policy)
    whole = [item_line(x, x.quantity, gross_prices, policy, cur) for x in state.lines]
    if refund.lines and amount == refund.amount.amount:
        lines = [_credit_line(r, state.lines, whole, cur) for r in refund.lines]
        if all(x is not None for x in lines) and sum(x.gross.amount for x in lines if x is not None) == amount:
            return [x for x in lines if x is not None]
    rates = {x.tax_rate for x in whole}
    rate = rates.pop() if len(rates) == 1 else policy.default_tax_rate
    tax = quantize(amount * rate / (1 + rate), cur)
    return [InvoiceLine(kind="refund", title=f"refund {refund.refund_id}", quantity=1, unit_price=_money(amount, cur),
                        tax_rate=rate, net=_money(amount - tax, cur), tax=_money(tax, cur), gross=_money(amount, cur))]


def _credit_line(refunded: RefundLine, lines: Sequence[OrderLine], whole: Sequence[InvoiceLine],
                 cur: str) -> InvoiceLine | None:
    for line, billed in zip(lines, whole, strict=True):
        if line.sku != refunded.sku or not line.quantity:
            continue
        gross = (refunded.amount.amount if refunded.amount is not None
                 else quantize(billed.gross.amount * refunded.quantity / line.quantity, cur))
        tax = quantize(gross * billed.tax_rate / (1 + billed.tax_rate), cur)
        return InvoiceLine(line_id=line.line_id, kind="item", sku=line.sku, title=line.title,
                           quantity=refunded.quantity, unit_price=line.unit_price, tax_rate=billed.tax_rate,
                           net=_money(gross - tax, cur), tax=_money(tax, cur), gross=_money(gross, cur))
    return None


def _credit_notes(rec: OrderRecord, state: OrderState, done: set[str], policy: Invoicing,
                  cause: EventMeta) -> list[BaseModel]:
    issued = _issued(rec, state, done)
    if not issued:
        return []  # no invoice to correct yet: the refund waits for it (conditions are judged on the record)
    out: list[BaseModel] = []
    payment_id, _ = payments.main_payment(rec.payments)
    for refund in sorted(rec.payments.refunds.values(), key=lambda r: (r.at, r.refund_id)):
        figure = refund.amount.amount
        delta = figure - _credited(done, refund.refund_id)
        if delta <= 0:
            continue
        done.add(f"credit:{refund.refund_id}={payments.plain(figure)}")
        skus = {x.sku for x in refund.lines}
        ref = next((iid for iid, billed in issued if billed & skus), issued[-1][0])
        lines = _credit_lines(refund, delta, state, rec, policy)
        cur = state.currency
        out.append(CreateCreditNote(
            meta=output_meta("CreateCreditNote", cause, f"{refund.refund_id}={payments.plain(figure)}"),
            credit_note_id=credit_note_id(rec.order_id, refund.refund_id, figure), invoice_id=ref,
            order_id=rec.order_id, order_number=rec.order_number, refund_id=refund.refund_id,
            payment_reference=refund.payment_id or payment_id, return_id=refund.return_id, reason=refund.reason,
            currency=cur, customer=rec.customer, billing_address=rec.billing_address or rec.shipping_address,
            lines=lines, total_net=_sum(lines, "net", cur), total_tax=_sum(lines, "tax", cur),
            total_gross=_money(delta, cur)))
    return out


def outputs(rec: OrderRecord, state: OrderState, done: set[str], policy: Invoicing,
            cause: EventMeta) -> list[BaseModel]:
    """Invoices and credit notes whose condition holds now and were not sent (adds their `done` keys)."""
    out: list[BaseModel] = []
    if policy.per_shipment(rec.payment_gateway):
        if "invoice" not in done:  # invoiced whole already (before the policy changed): never twice
            out += _shipment_invoices(rec, state, done, policy, cause)
    elif "invoice" not in done and payments.invoice_due(state.captured.amount, state.total):
        done.add("invoice")
        out.append(build_invoice(rec, state, cause, policy, [(x, x.quantity) for x in state.lines],
                                 with_shipping=True))
    out += _credit_notes(rec, state, done, policy, cause)
    return out
