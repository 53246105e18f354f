"""Carrier and returns webhooks through the connectors service in-process, on the real broker, registry
and Redis: signed deliveries are published framed and keyed by order id; a bad signature publishes
nothing; an unknown carrier status is a 422 with the body parked; delivery ids dedupe.
"""

from __future__ import annotations

import json
import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import SecretStr

from shopstream.config import Settings
from shopstream.connectors.signing import shopstream_headers
from shopstream.schemas.models import ReturnInspected, ShipmentDelivered
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from tests.webhook_client import client_for, partitions_of, read_topic

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

CARRIER_SECRET = "carrier-integration-secret"
RETURNS_SECRET = "returns-integration-secret"


@pytest.fixture
def logistics_settings(settings: Settings) -> Settings:
    """The test's settings with every topic created under its prefix, and the shared secrets set."""
    report = apply(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix, timeout_s=30)
    assert report.failed == {}
    return settings.model_copy(update={"carrier_secret": SecretStr(CARRIER_SECRET),
                                       "returns_secret": SecretStr(RETURNS_SECRET)})


def signed(body: bytes, secret: str, delivery_id: str | None = None) -> dict[str, str]:
    return shopstream_headers(secret, body, delivery_id)


def tracking_update(order_id: str, status: str = "Delivered") -> bytes:
    return json.dumps({
        "tracking_number": "1Z999AA10123456784", "carrier": "UPS", "order_id": order_id, "status": status,
        "status_system": "aftership", "occurred_at": "2024-05-02T08:15:00+02:00", "location": "Hamburg, DE",
        "detail": "Left at front door", "lines": [{"sku": "TSHIRT-BLK-M", "quantity": 2}],
    }).encode()


async def test_signed_carrier_delivered_is_published_once_keyed_by_order_id(logistics_settings: Settings) -> None:
    s = logistics_settings
    body = tracking_update("880011")
    delivery = uuid.uuid4().hex
    async with client_for(s) as client:
        # Bad signature first: 401 and nothing published.
        resp = await client.post("/webhooks/carrier", data=body, headers=signed(body, "wrong-secret", delivery))
        assert resp.status == 401
        resp = await client.post("/webhooks/carrier", data=body, headers={"Content-Type": "application/json"})
        assert resp.status == 401

        resp = await client.post("/webhooks/carrier", data=body, headers=signed(body, CARRIER_SECRET, delivery))
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
        assert answer["status"] == "accepted" and len(answer["events"]) == 1
        again = await client.post("/webhooks/carrier", data=body, headers=signed(body, CARRIER_SECRET, delivery))
        assert (await again.json()) == {"status": "duplicate", "delivery_id": delivery}

        # An ignored status is acknowledged; an unknown one is refused with the reason.
        pending = tracking_update("880011", "Pending")
        resp = await client.post("/webhooks/carrier", data=pending, headers=signed(pending, CARRIER_SECRET))
        assert resp.status == 200 and (await resp.json())["status"] == "ignored"
        unknown = tracking_update("880011", "Teleported")
        resp = await client.post("/webhooks/carrier", data=unknown, headers=signed(unknown, CARRIER_SECRET))
        assert resp.status == 422
        assert "'Teleported'" in (await resp.json())["error"]

    records = read_topic(s, "fulfillment.shipments", want=1)
    assert len(records) == 1
    msg = records[0]
    n = partitions_of("fulfillment.shipments")
    assert msg.key() == b"880011"
    assert msg.partition() == DefaultPartitioner()(b"880011", list(range(n)), list(range(n)))
    value = msg.value()
    assert isinstance(value, bytes) and value[0] == 0 and len(value) > 5  # Confluent framing
    decoded = AvroSerde(make_registry_client(s.schema_registry_url)).decode(value)
    assert type(decoded) is ShipmentDelivered
    assert decoded.order_id == "880011" and decoded.carrier == "UPS"
    assert decoded.tracking_number == "1Z999AA10123456784"
    assert decoded.meta.event_id == answer["events"][0] and decoded.meta.source == "carrier"
    assert decoded.meta.source_event_id == delivery

    parked = read_topic(s, "connectors.dlq", want=1)
    assert len(parked) == 1 and parked[0].value() == unknown


async def test_signed_return_inspected_is_published_on_returns(logistics_settings: Settings) -> None:
    s = logistics_settings
    body = json.dumps({
        "type": "inspected", "return_id": "RMA-880012-1", "order_id": "880012",
        "occurred_at": "2024-05-10T09:00:00Z", "location": "WH-BER", "inspector": "kim",
        "lines": [{"sku": "TSHIRT-BLK-M", "quantity": 1, "condition_grade": "good", "restockable": True},
                  {"sku": "MUG-01", "quantity": 1, "condition_grade": "unsellable", "restockable": False}],
    }).encode()
    async with client_for(s) as client:
        resp = await client.post("/webhooks/returns", data=body, headers=signed(body, CARRIER_SECRET))
        assert resp.status == 401  # the carrier's secret is not the returns secret
        resp = await client.post("/webhooks/returns", data=body, headers=signed(body, RETURNS_SECRET))
        assert resp.status == 200, await resp.text()
        answer = await resp.json()

    (msg,) = read_topic(s, "returns", want=1)
    assert msg.key() == b"880012"
    decoded = AvroSerde(make_registry_client(s.schema_registry_url)).decode(msg.value())
    assert type(decoded) is ReturnInspected
    assert decoded.return_id == "RMA-880012-1" and decoded.meta.event_id == answer["events"][0]
    assert [(li.sku, li.condition_grade, li.restockable) for li in decoded.lines] == [
        ("TSHIRT-BLK-M", "good", True), ("MUG-01", "unsellable", False)]
