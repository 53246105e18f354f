"""Shopify refunds and fulfillments through the connectors service in-process, on the real broker,
registry and Redis: a signed `refunds/create` becomes one framed RefundIssued on `payments`, a
`fulfillments/update` with `shipment_status: delivered` one ShipmentDelivered on
`fulfillment.shipments`, both keyed (and partitioned) by the order id.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import SecretStr

from shopstream.config import Settings
from shopstream.connectors.shopify import sign
from shopstream.schemas.models import RefundIssued, ShipmentDelivered
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from tests.webhook_client import client_for, partitions_of, read_topic

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

SECRET = "logistics-test-secret"


@pytest.fixture
def shop_settings(settings: Settings) -> Settings:
    """The test's settings with a Shopify secret, and every topic created under its prefix."""
    s = settings.model_copy(update={"shopify_secret": SecretStr(SECRET)})
    report = apply(load_topology(), s.kafka_client_config(), prefix=s.topic_prefix, timeout_s=30)
    assert report.failed == {}
    return s


def signed(topic: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", "X-Shopify-Topic": topic,
                  "X-Shopify-Hmac-Sha256": sign(SECRET, body), "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                  "X-Shopify-Event-Id": str(uuid.uuid4()), "X-Shopify-Shop-Domain": "demo-shop.myshopify.com"}


def refund(order_id: int) -> dict[str, Any]:
    return {
        "id": 509562969, "order_id": order_id, "created_at": "2024-05-02T10:00:00+02:00",
        "processed_at": "2024-05-02T10:00:00+02:00", "note": "damaged in transit", "restock": False,
        "refund_line_items": [{"id": 104689539, "quantity": 1, "line_item_id": order_id * 100 + 1,
                               "restock_type": "no_restock", "subtotal": 19.9,
                               "line_item": {"id": order_id * 100 + 1, "variant_id": 40000001,
                                             "sku": "TSHIRT-BLK-M", "quantity": 2, "price": "19.90"}}],
        "transactions": [{"id": 179259969, "order_id": order_id, "kind": "refund", "gateway": "shopify_payments",
                          "status": "success", "amount": "19.90", "currency": "EUR", "parent_id": 801038806}],
        "order_adjustments": [],
    }


def delivered_fulfillment(order_id: int) -> dict[str, Any]:
    return {
        "id": 255858046, "order_id": order_id, "status": "success", "shipment_status": "delivered",
        "created_at": "2024-05-01T09:00:00+02:00", "updated_at": "2024-05-03T14:12:00+02:00",
        "service": "manual", "tracking_company": "DHL Express", "tracking_number": "JJD000390007",
        "tracking_numbers": ["JJD000390007"], "tracking_url": None, "tracking_urls": [],
        "location_id": 655441491, "name": "#1001.1",
        "line_items": [{"id": order_id * 100 + 1, "variant_id": 40000001, "sku": "TSHIRT-BLK-M", "quantity": 2,
                        "price": "19.90"}],
    }


async def test_refund_and_delivered_fulfillment_are_published_keyed_by_order(shop_settings: Settings) -> None:
    s = shop_settings
    order_id = 880033
    refund_body, refund_headers = signed("refunds/create", refund(order_id))
    ship_body, ship_headers = signed("fulfillments/update", delivered_fulfillment(order_id))
    async with client_for(s) as client:
        bad = dict(refund_headers, **{"X-Shopify-Hmac-Sha256": sign("not-the-secret", refund_body)})
        resp = await client.post("/webhooks/shopify", data=refund_body, headers=bad)
        assert resp.status == 401

        resp = await client.post("/webhooks/shopify", data=refund_body, headers=refund_headers)
        assert resp.status == 200, await resp.text()
        refund_answer = await resp.json()
        assert refund_answer["status"] == "accepted" and len(refund_answer["events"]) == 1

        resp = await client.post("/webhooks/shopify", data=ship_body, headers=ship_headers)
        assert resp.status == 200, await resp.text()
        ship_answer = await resp.json()
        assert ship_answer["status"] == "accepted" and len(ship_answer["events"]) == 1

    serde = AvroSerde(make_registry_client(s.schema_registry_url))
    key = str(order_id).encode()

    (msg,) = read_topic(s, "payments", want=1)
    assert msg.key() == key
    parts = list(range(partitions_of("payments")))
    assert msg.partition() == DefaultPartitioner()(key, parts, parts)
    value = msg.value()
    assert isinstance(value, bytes) and value[0] == 0 and len(value) > 5  # Confluent framing
    decoded = serde.decode(value)
    assert type(decoded) is RefundIssued
    assert decoded.order_id == str(order_id) and decoded.refund_id == "509562969"
    assert decoded.amount.amount == Decimal("19.90") and decoded.amount.currency == "EUR"
    assert [(ln.sku, ln.quantity) for ln in decoded.lines] == [("TSHIRT-BLK-M", 1)]
    assert decoded.meta.event_id == refund_answer["events"][0]

    (shipment,) = read_topic(s, "fulfillment.shipments", want=1)
    assert shipment.key() == key
    parts = list(range(partitions_of("fulfillment.shipments")))
    assert shipment.partition() == DefaultPartitioner()(key, parts, parts)
    ship_value = shipment.value()
    assert isinstance(ship_value, bytes) and ship_value[0] == 0
    delivered = serde.decode(ship_value)
    assert type(delivered) is ShipmentDelivered
    assert delivered.order_id == str(order_id) and delivered.shipment_id == "255858046"
    assert delivered.carrier == "DHL Express" and delivered.tracking_number == "JJD000390007"
    assert delivered.meta.event_id == ship_answer["events"][0]
