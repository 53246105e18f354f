"""Commands a receiver can act on, end to end, read as any Kafka consumer would read them.

A Shopify order paid through Stripe goes through the public faces (signed webhooks) of one
`shopstream dev` stack; the ERP's and the carrier's commands are read from `commands.erp` /
`commands.fulfillment` with confluent-kafka's stock `AvroDeserializer` (no shopstream model), as an
ERP or a label service written in another team would consume them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from shopstream.dev.shopify_samples import shopify_order
from tests.e2e.conftest import RunningStack
from tests.e2e.test_order_lifecycle import (
    LINES,
    TOTAL,
    _accepted,
    _delivered_order,
    _order_id,
    _wait,
    charge,
    payment_intent,
    poll_status,
    post_return,
    post_stripe,
    shopify_create,
)

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


class StockReader:
    """Records of a topic decoded by confluent-kafka's own AvroDeserializer (plain dicts)."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.deserializer = AvroDeserializer(SchemaRegistryClient({"url": stack.registry}))

    def records(self, topic: str, event_type: str, key: str) -> list[dict[str, Any]]:
        out = []
        for msg in self.stack.read_topic(topic):
            if msg.key() != key.encode():
                continue
            value = self.deserializer(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
            if isinstance(value, dict) and value["meta"]["event_type"] == event_type:
                out.append(value)
        return out

    def wait(self, topic: str, event_type: str, key: str,
             where: Callable[[dict[str, Any]], bool] = lambda _: True) -> list[dict[str, Any]]:
        def probe() -> list[dict[str, Any]] | None:
            return [r for r in self.records(topic, event_type, key) if where(r)] or None
        return _wait(f"{event_type} of {key} on {topic}", probe, self.stack)


@pytest.fixture(scope="module")
def reader(stack: RunningStack) -> StockReader:
    return StockReader(stack)


def test_paid_order_gets_an_invoice_a_partial_refund_a_credit_note(stack: RunningStack, reader: StockReader) -> None:
    order_id = _order_id()
    shopify_create(stack, shopify_order(order_id, financial_status="pending", lines=LINES))
    _accepted(post_stripe(stack, "payment_intent.succeeded", payment_intent(order_id, TOTAL)))
    [invoice] = reader.wait("commands.erp", "CreateInvoice", str(order_id))
    assert invoice["customer"]["email"] == f"jane.doe+{order_id}@example.com"
    assert invoice["billing_address"]["name"] == "Jane Doe" and invoice["billing_address"]["city"] == "Berlin"
    assert invoice["shipping_address"]["line1"] == "Hauptstr. 1"
    items = [x for x in invoice["invoice_lines"] if x["kind"] == "item"]
    assert [(x["sku"], x["quantity"]) for x in items] == [(sku, q) for sku, q, _ in LINES]
    for line in invoice["invoice_lines"]:
        assert line["tax_rate"] == Decimal("0.19")  # the policy's default: the Shopify order itemises no tax
        assert line["net"]["amount"] + line["tax"]["amount"] == line["gross"]["amount"]
    assert invoice["total_gross"]["amount"] == TOTAL == invoice["amount"]["amount"]
    assert invoice["total_net"]["amount"] + invoice["total_tax"]["amount"] == TOTAL
    assert invoice["payment_reference"] == f"pi_{order_id}" and invoice["currency"] == "EUR"
    assert invoice["invoice_id"]

    _accepted(post_stripe(stack, "charge.refunded", charge(order_id, TOTAL, Decimal("10.00"))))
    poll_status(stack, order_id, payment_status="partially_refunded")
    [note] = reader.wait("commands.erp", "CreateCreditNote", str(order_id))
    assert note["invoice_id"] == invoice["invoice_id"]
    assert note["total_gross"]["amount"] == Decimal("10.00")
    assert note["customer"]["email"] == invoice["customer"]["email"]


def test_return_inside_the_window_gets_a_label_with_both_addresses(stack: RunningStack, reader: StockReader) -> None:
    order_id = _order_id()
    now = datetime.now(UTC).replace(microsecond=0)
    _delivered_order(stack, order_id, now - timedelta(days=5), now - timedelta(days=2))
    return_id = f"RMA-{order_id}-1"
    _accepted(post_return(stack, order_id, "requested", return_id, now - timedelta(hours=1), [
        {"sku": "TSHIRT-BLK-M", "quantity": 1, "line_id": str(order_id * 100 + 1), "reason": "too_small"}]))
    [label] = reader.wait("commands.fulfillment", "CreateReturnLabel", str(order_id))
    assert label["return_id"] == return_id
    assert (label["ship_from"]["name"], label["ship_from"]["line1"]) == ("Jane Doe", "Hauptstr. 1")
    assert label["ship_to"]["city"] == "Hamburg" and label["ship_to"]["country_code"] == "DE"  # returns_policy.yaml
    assert (label["carrier"], label["service"]) == ("dhl", "retoure")
    assert label["customer_email"] == f"jane.doe+{order_id}@example.com"
    assert label["weight_grams"] == 500  # one unit, no weight from the shop: the policy's default
