"""The ERP delta feed (`POST /webhooks/erp`) through the connectors service in-process, on the real broker,
registry and Redis: signed StockAdjusted / GoodsReceived land framed on `inventory.stock` keyed by SKU
(murmur2 partition); a wrong, missing or unconfigured secret publishes nothing; an invalid batch is a 422
naming the bad event, publishes nothing and parks the raw body; resends are deduped (and keep their
event ids when re-batched).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import SecretStr

from shopstream.config import Settings
from shopstream.connectors.signing import shopstream_headers
from shopstream.schemas.models import GoodsReceived, StockAdjusted
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from tests.webhook_client import client_for, partitions_of, read_topic

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

ERP_SECRET = "erp-integration-secret"


@pytest.fixture
def erp_settings(settings: Settings) -> Settings:
    """The test's settings with every topic created under its prefix and the ERP secret set."""
    report = apply(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix, timeout_s=30)
    assert report.failed == {}
    return settings.model_copy(update={"erp_secret": SecretStr(ERP_SECRET)})


def signed(body: bytes, secret: str = ERP_SECRET) -> dict[str, str]:
    return shopstream_headers(secret, body)


def adjustment(event_id: str, sku: str, delta: int, **extra: Any) -> dict[str, Any]:
    return {"type": "stock_adjusted", "id": event_id, "sku": sku, "delta": delta, "reason": "count_correction",
            "adjusted_at": "2024-05-10T09:00:00+02:00", **extra}


def receipt(event_id: str, sku: str, quantity: int, **extra: Any) -> dict[str, Any]:
    return {"type": "goods_received", "id": event_id, "sku": sku, "quantity": quantity,
            "received_at": "2024-05-10T07:30:00Z", **extra}


def encode(body: object) -> bytes:
    return json.dumps(body).encode()


async def test_batch_is_published_on_inventory_stock_keyed_by_sku_and_resends_are_deduped(
        erp_settings: Settings) -> None:
    s = erp_settings
    batch = encode({"events": [
        adjustment("ADJ-1", "SKU-A", -3, location="WH-BER", reference="INV-77"),
        receipt("GR-1", "SKU-B", 120, location="WH-BER", purchase_order="PO-3301", supplier="ACME"),
        adjustment("ADJ-2", "SKU-C", 5),
    ]})
    async with client_for(s) as client:
        resp = await client.post("/webhooks/erp", data=batch, headers=signed(batch))
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
        assert answer["status"] == "accepted" and len(answer["events"]) == 3

        # The same batch again: a duplicate at the front, nothing published.
        again = await client.post("/webhooks/erp", data=batch, headers=signed(batch))
        assert again.status == 200
        duplicate = await again.json()
        assert duplicate["status"] == "duplicate" and duplicate["delivery_id"].startswith("batch:")

        # One of its events resent alone: a new delivery for the front, but the same event id, so the
        # inventory processor applies it once.
        single = encode(adjustment("ADJ-2", "SKU-C", 5))
        resp = await client.post("/webhooks/erp", data=single, headers=signed(single))
        assert resp.status == 200
        resent = await resp.json()
        assert resent["status"] == "accepted" and resent["events"] == [answer["events"][2]]
        again = await client.post("/webhooks/erp", data=single, headers=signed(single))
        assert (await again.json()) == {"status": "duplicate", "delivery_id": "stock_adjusted:ADJ-2"}

    records = read_topic(s, "inventory.stock", want=4)
    assert len(records) == 4
    serde = AvroSerde(make_registry_client(s.schema_registry_url))
    n = partitions_of("inventory.stock")
    decoded = []
    for msg in records:
        value = msg.value()
        assert isinstance(value, bytes) and value[0] == 0 and len(value) > 5  # Confluent framing
        key = msg.key()
        assert key is not None
        assert msg.partition() == DefaultPartitioner()(key, list(range(n)), list(range(n)))
        assert dict(msg.headers() or [])["shopstream.source"] == b"erp"
        record = serde.decode(value)
        assert isinstance(record, StockAdjusted | GoodsReceived) and key == record.sku.encode()
        decoded.append(record)
    by_id = {r.meta.source_event_id: r for r in decoded if r.meta.source_event_id != "ADJ-2"}
    adj = by_id["ADJ-1"]
    assert isinstance(adj, StockAdjusted)
    assert (adj.sku, adj.location, adj.delta, adj.reason, adj.reference) == (
        "SKU-A", "WH-BER", -3, "count_correction", "INV-77")
    assert adj.meta.event_id == answer["events"][0] and adj.meta.source == "erp"
    gr = by_id["GR-1"]
    assert isinstance(gr, GoodsReceived)
    assert (gr.sku, gr.location, gr.quantity, gr.purchase_order, gr.supplier) == (
        "SKU-B", "WH-BER", 120, "PO-3301", "ACME")
    assert gr.meta.event_id == answer["events"][1]
    twice = [r for r in decoded if r.meta.source_event_id == "ADJ-2"]
    assert len(twice) == 2 and {r.meta.event_id for r in twice} == {answer["events"][2]}
    assert all(isinstance(r, StockAdjusted) and r.location == "default" and r.delta == 5 for r in twice)


async def test_wrong_missing_or_unconfigured_secret_is_401_and_publishes_nothing(erp_settings: Settings) -> None:
    s = erp_settings
    body = encode(adjustment("ADJ-9", "SKU-Z", -1))
    async with client_for(s) as client:
        resp = await client.post("/webhooks/erp", data=body, headers=signed(body, "wrong-secret"))
        assert resp.status == 401
        resp = await client.post("/webhooks/erp", data=body, headers={"Content-Type": "application/json"})
        assert resp.status == 401
        tampered = body.replace(b"-1", b"-9")
        resp = await client.post("/webhooks/erp", data=tampered, headers=signed(body))
        assert resp.status == 401
    unconfigured = s.model_copy(update={"erp_secret": SecretStr("")})
    async with client_for(unconfigured) as client:
        resp = await client.post("/webhooks/erp", data=body, headers=signed(body, ""))
        assert resp.status == 401
        assert "signature" in (await resp.json())["error"]
    assert read_topic(s, "inventory.stock", want=1, settle_s=0.5, timeout_s=3) == []
    assert read_topic(s, "connectors.dlq", want=1, settle_s=0.5, timeout_s=3) == []


async def test_invalid_batch_is_422_nothing_published_body_parked_and_a_corrected_resend_goes_through(
        erp_settings: Settings) -> None:
    s = erp_settings
    bad = encode({"events": [adjustment("ADJ-10", "SKU-A", -2), receipt("GR-10", "SKU-B", 0)]})
    async with client_for(s) as client:
        resp = await client.post("/webhooks/erp", data=bad, headers=signed(bad))
        assert resp.status == 422
        reason = (await resp.json())["error"]
        assert "1 of 2 events invalid, nothing published" in reason
        assert "events.1 (id 'GR-10'): quantity: Input should be greater than or equal to 1" in reason
        not_json = b"stock_adjusted;SKU-A;-2"
        resp = await client.post("/webhooks/erp", data=not_json, headers=signed(not_json))
        assert resp.status == 422 and "body is not JSON" in (await resp.json())["error"]

        # The ERP fixes the receipt and resends with the same ids: not mistaken for a duplicate.
        fixed = encode({"events": [adjustment("ADJ-10", "SKU-A", -2), receipt("GR-10", "SKU-B", 10)]})
        resp = await client.post("/webhooks/erp", data=fixed, headers=signed(fixed))
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "accepted"

    parked = read_topic(s, "connectors.dlq", want=2)
    assert sorted(m.value() or b"" for m in parked) == sorted([bad, not_json])
    headers = dict(parked[0].headers() or [])
    # The signature is kept (dlq redrive verifies the stored body again); nothing outside the allowlist is.
    kept = {k for k in headers if k.startswith("http.")}
    assert kept <= {"http.x-shopstream-signature", "http.x-shopstream-delivery-id", "http.content-type",
                    "http.user-agent"}, kept
    published = read_topic(s, "inventory.stock", want=2)
    serde = AvroSerde(make_registry_client(s.schema_registry_url))
    records: list[StockAdjusted | GoodsReceived] = []
    for m in published:
        record = serde.decode(m.value())
        assert isinstance(record, StockAdjusted | GoodsReceived)
        records.append(record)
    assert sorted((type(r).__name__, r.sku) for r in records) == [("GoodsReceived", "SKU-B"),
                                                                  ("StockAdjusted", "SKU-A")]
    gr = next(r for r in records if isinstance(r, GoodsReceived))
    assert gr.quantity == 10

