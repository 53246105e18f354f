"""The commands a receiver acts on: CreateInvoice, CreateCreditNote, CreateReturnLabel carry what they need."""

from __future__ import annotations

from decimal import Decimal

from shopstream.processors.orders import invoicing
from shopstream.processors.orders.policy import (
    Invoicing,
    OrdersPolicy,
    PolicyAddress,
    ReturnLabelPolicy,
    ReturnsPolicy,
    load_orders_policy,
    load_returns_policy,
)
from shopstream.processors.orders.record import OrderRecord
from shopstream.schemas.models import (
    Address,
    CreateCreditNote,
    CreateInvoice,
    CreateReturnLabel,
    Customer,
    OrderLine,
    OrderPlaced,
    RefundLine,
)
from tests.unit.order_events import (
    ORDER,
    authorized,
    captured,
    context,
    delivered,
    dispatched,
    feed,
    money,
    placed,
    records_of,
    refunded,
    return_requested,
)

BUYER = Customer(customer_id="c-7", email="ada@example.com", name="Ada Lovelace", vat_id="DE123456789")
BILLING = Address(name="Ada Lovelace", line1="Rechnungsweg 1", city="Berlin", postal_code="10115", country_code="DE")
SHIPPING = Address(name="Ada Lovelace", line1="Lieferstr. 2", city="Berlin", postal_code="10117", country_code="DE")
TAXED = [
    OrderLine(line_id="l1", sku="SKU-l1", quantity=2, unit_price=money("11.90"), title="Mug",
              tax_rate=Decimal("0.19"), grams=300),
    OrderLine(line_id="l2", sku="SKU-l2", quantity=1, unit_price=money("10.70"), title="Book",
              tax_rate=Decimal("0.07"), discount=money("1.07")),
]


def _placed(gateway: str | None = None, taxes_included: bool | None = True) -> OrderPlaced:
    base = placed(order_lines=TAXED, shipping="4.90")
    return base.model_copy(update={"customer": BUYER, "billing_address": BILLING, "shipping_address": SHIPPING,
                                   "payment_gateway": gateway, "taxes_included": taxes_included,
                                   "total": money(base.total.amount - Decimal("1.07"))})


TOTAL = "38.33"  # 2 x 11.90 + 10.70 - 1.07 + 4.90


def test_the_order_record_keeps_buyer_and_addresses_and_survives_the_table() -> None:
    record, _ = feed(_placed(gateway="invoice"))
    assert record is not None
    assert (record.customer, record.billing_address, record.shipping_address) == (BUYER, BILLING, SHIPPING)
    assert (record.payment_gateway, record.taxes_included) == ("invoice", True)
    assert OrderRecord.from_dict(record.to_dict()) == record


def test_invoice_on_capture_names_buyer_addresses_lines_with_tax_shipping_and_totals() -> None:
    _, outs = feed(_placed(), authorized(1, TOTAL), captured(2, TOTAL))
    [invoice] = records_of(outs, CreateInvoice, "commands.erp")
    assert invoice.invoice_id == invoicing.invoice_id(ORDER) and invoice.shipment_id is None
    assert (invoice.customer, invoice.billing_address, invoice.shipping_address) == (BUYER, BILLING, SHIPPING)
    assert invoice.customer.vat_id == "DE123456789" and invoice.order_number == "#1001"
    mug, book, ship = invoice.invoice_lines
    assert (mug.sku, mug.quantity, mug.tax_rate, mug.gross, mug.tax, mug.net) == (
        "SKU-l1", 2, Decimal("0.19"), money("23.80"), money("3.80"), money("20.00"))
    assert (book.discount, book.gross, book.tax, book.net) == (money("1.07"), money("9.63"), money("0.63"),
                                                                money("9.00"))
    assert (ship.kind, ship.gross, ship.tax_rate, ship.tax) == ("shipping", money("4.90"), Decimal("0.19"),
                                                                 money("0.78"))
    assert invoice.total_gross == money(TOTAL) == invoice.amount
    assert invoice.total_tax == money("5.21") == invoice.tax
    assert invoice.total_net == money("33.12")
    assert invoice.discounts == money("1.07") and invoice.currency == "EUR"
    assert (invoice.payment_reference, invoice.payment_provider, invoice.policy) == ("pi_1", "stripe",
                                                                                    "invoicing.on_capture")


def test_net_prices_add_the_tax_on_top() -> None:
    record, _ = feed(_placed(taxes_included=False))
    assert record is not None and record.state is not None
    line = invoicing.item_line(TAXED[0], 2, False, Invoicing(), "EUR")
    assert (line.net, line.tax, line.gross) == (money("23.80"), money("4.52"), money("28.32"))


def test_a_line_without_tax_data_uses_the_policy_rate() -> None:
    plain = OrderLine(line_id="x", sku="X", quantity=1, unit_price=money("107"))
    line = invoicing.item_line(plain, 1, True, Invoicing(default_tax_rate=Decimal("0.07")), "EUR")
    assert (line.tax_rate, line.tax, line.net) == (Decimal("0.07"), money("7.00"), money("100.00"))


def test_invoice_ids_are_deterministic_across_replays() -> None:
    events = (_placed(), authorized(1, TOTAL), captured(2, TOTAL))
    first = records_of(feed(*events)[1], CreateInvoice)
    again = records_of(feed(*events)[1], CreateInvoice)
    assert first == again and first[0].invoice_id == invoicing.invoice_id(ORDER)
    assert invoicing.invoice_id(ORDER, "s1") != invoicing.invoice_id(ORDER)
    # redelivery of the capture sends nothing new
    record, _ = feed(*events)
    _, outs = feed(captured(2, TOTAL), record=record)
    assert records_of(outs, CreateInvoice) == []


def test_invoice_on_shipment_bills_each_parcel_and_shipping_once() -> None:
    ctx = context(orders=OrdersPolicy(invoicing=Invoicing(on_shipment_gateways=frozenset({"invoice"}))))
    _, outs = feed(_placed(gateway="invoice"), dispatched(5, "s1", [("SKU-l1", 2)]),
                   dispatched(6, "s2", [("SKU-l2", 1)]), dispatched(6, "s2", [("SKU-l2", 1)]), ctx=ctx)
    first, second = records_of(outs, CreateInvoice)
    assert (first.shipment_id, first.invoice_id) == ("s1", invoicing.invoice_id(ORDER, "s1"))
    assert [(x.kind, x.sku, x.quantity) for x in first.invoice_lines] == [("item", "SKU-l1", 2),
                                                                         ("shipping", None, 1)]
    assert [(x.kind, x.sku, x.quantity) for x in second.invoice_lines] == [("item", "SKU-l2", 1)]
    assert second.shipping is None and first.policy == "invoicing.on_shipment"
    assert first.total_gross.amount + second.total_gross.amount == Decimal(TOTAL)
    assert first.customer == BUYER and second.billing_address == BILLING


def test_credit_note_for_a_partial_amount_refund_references_the_invoice() -> None:
    _, outs = feed(_placed(), authorized(1, TOTAL), captured(2, TOTAL), refunded(10, "5.95"))
    [note] = records_of(outs, CreateCreditNote, "commands.erp")
    assert note.invoice_id == invoicing.invoice_id(ORDER)
    assert note.credit_note_id == invoicing.credit_note_id(ORDER, "ch_1/cumulative", Decimal("5.95"))
    assert note.total_gross == money("5.95") and note.refund_id == "ch_1/cumulative"
    assert note.total_net.amount + note.total_tax.amount == Decimal("5.95")
    assert note.customer == BUYER and note.billing_address == BILLING and note.payment_reference == "pi_1"


def test_a_growing_cumulative_refund_gets_one_credit_note_per_increase() -> None:
    _, outs = feed(_placed(), authorized(1, TOTAL), captured(2, TOTAL), refunded(10, "5"), refunded(11, "8"),
                        refunded(11, "8"))
    notes = records_of(outs, CreateCreditNote)
    assert [n.total_gross for n in notes] == [money("5"), money("3")]
    assert len({n.credit_note_id for n in notes}) == 2


def test_a_refund_before_the_invoice_waits_for_it() -> None:
    _, outs = feed(_placed(), authorized(1, TOTAL), refunded(2, "5", refund_id="re_1"),
                   captured(3, TOTAL))
    kinds = [type(r).__name__ for r in (o.record for out in outs for o in out.outputs)
             if isinstance(r, CreateInvoice | CreateCreditNote)]
    assert kinds == ["CreateInvoice", "CreateCreditNote"]


def test_a_line_refund_credits_the_lines_with_their_tax_rate() -> None:
    refund = refunded(10, "11.90", refund_id="re_l").model_copy(
        update={"lines": [RefundLine(sku="SKU-l1", quantity=1)]})
    _, outs = feed(_placed(), authorized(1, TOTAL), captured(2, TOTAL), refund)
    [note] = records_of(outs, CreateCreditNote)
    [line] = note.lines
    assert (line.sku, line.quantity, line.tax_rate, line.gross, line.tax) == (
        "SKU-l1", 1, Decimal("0.19"), money("11.90"), money("1.90"))


def test_return_label_has_both_addresses_carrier_weight_and_email() -> None:
    policy = ReturnsPolicy(label=ReturnLabelPolicy(
        carrier="dhl", service="retoure", default_unit_grams=250,
        ship_to=PolicyAddress(company="Returns WH", line1="Hafen 1", city="Hamburg", country_code="DE")))
    ctx = context(returns=policy)
    _, outs = feed(_placed(), authorized(1, TOTAL), captured(2, TOTAL), dispatched(5, "s1"), delivered(60, "s1"),
                   return_requested(24 * 60, (("l1", 1), ("l2", 1))), ctx=ctx)
    [label] = records_of(outs, CreateReturnLabel, "commands.fulfillment")
    assert label.ship_from == SHIPPING and label.ship_to is not None and label.ship_to.city == "Hamburg"
    assert (label.carrier, label.service, label.customer_email, label.customer_name) == (
        "dhl", "retoure", "ada@example.com", "Ada Lovelace")
    assert label.weight_grams == 300 + 250  # the mug's own weight, the book's from the policy
    assert [(x.sku, x.quantity) for x in label.lines] == [("SKU-l1", 1), ("SKU-l2", 1)]


def test_shipped_policies_load_with_invoicing_and_label_sections() -> None:
    orders = load_orders_policy()
    assert orders.invoicing.per_shipment("invoice") and not orders.invoicing.per_shipment("shopify_payments")
    label = load_returns_policy().label
    assert label.carrier and label.ship_to is not None and label.ship_to.country_code


def test_an_order_invoiced_whole_is_not_invoiced_again_per_shipment() -> None:
    record, _ = feed(_placed(gateway="invoice"), authorized(1, TOTAL), captured(2, TOTAL))
    assert record is not None and "invoice" in record.done
    ctx = context(orders=OrdersPolicy(invoicing=Invoicing(on_shipment=True)))
    _, outs = feed(dispatched(5, "s1", [("SKU-l1", 2)]), record=record, ctx=ctx)
    assert records_of(outs, CreateInvoice) == []
