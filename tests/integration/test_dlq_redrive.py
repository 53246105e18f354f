"""`shopstream dlq redrive connectors.dlq` on the real broker, registry and Redis: a carrier status nobody
mapped is refused and parked; once the status is added (SHOPSTREAM_CARRIER_MAPPING) the parked body is
re-submitted through the carrier connector (signature verified again, same delivery id) and published;
a second run sends nothing."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from shopstream.config import Settings
from shopstream.connectors.signing import shopstream_headers
from shopstream.ops.dlq_redrive import RedriveOptions, dlq_redrive
from shopstream.topology import apply, load_topology
from tests.webhook_client import client_for, read_topic

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

SECRET = "carrier-redrive-secret-" + "x" * 16


def carrier_update(order_id: str, status: str) -> bytes:
    return json.dumps({"tracking_number": "1Z-REDRIVE", "carrier": "UPS", "order_id": order_id, "status": status,
                       "status_system": "aftership", "occurred_at": "2024-05-02T08:15:00+02:00",
                       "lines": [{"sku": "TSHIRT-BLK-M", "quantity": 1}]}).encode()


def run_redrive(settings: Settings, **options: object) -> tuple[int, str]:
    out = io.StringIO()
    code = dlq_redrive(settings, load_topology(), "connectors.dlq", RedriveOptions(**options), out=out)  # type: ignore[arg-type]
    return code, out.getvalue()


async def test_redrive_after_adding_a_missing_carrier_status(settings: Settings, tmp_path: Path) -> None:
    s = settings.model_copy(update={"carrier_secret": SecretStr(SECRET)})
    report = apply(load_topology(), s.kafka_client_config(), prefix=s.topic_prefix, timeout_s=30)
    assert report.failed == {}
    body = carrier_update("9001", "Teleported")
    delivery = str(uuid.uuid4())
    async with client_for(s) as client:
        resp = await client.post("/webhooks/carrier", data=body, headers=shopstream_headers(SECRET, body, delivery))
        assert resp.status == 422 and "Teleported" in (await resp.json())["error"]
    (parked,) = read_topic(s, "connectors.dlq", partitions=1, want=1)
    assert parked.value() == body

    # Still unmapped: a dry run says it would be refused again, and publishes nothing.
    code, text = await asyncio.to_thread(run_redrive, s, dry_run=True)
    assert code == 0 and "would be refused again" in text, text

    mapping = tmp_path / "carrier.yaml"
    mapping.write_text("systems:\n  aftership:\n    Teleported:\n      event: ShipmentDispatched\n")
    fixed = s.model_copy(update={"carrier_mapping": str(mapping)})
    code, text = await asyncio.to_thread(run_redrive, fixed, dry_run=True)
    assert code == 0 and "would publish 1 event(s)" in text, text
    code, text = await asyncio.to_thread(run_redrive, fixed)
    assert code == 0 and "accepted" in text, text
    (shipment,) = read_topic(s, "fulfillment.shipments", want=1)
    assert shipment.key() == b"9001"

    # Done: a second run skips it; the source's own resend of the same delivery is a duplicate now.
    code, text = await asyncio.to_thread(run_redrive, fixed)
    assert code == 0 and "already redriven" in text, text
    async with client_for(fixed) as client:
        resp = await client.post("/webhooks/carrier", data=body, headers=shopstream_headers(SECRET, body, delivery))
        assert resp.status == 200 and (await resp.json())["status"] == "duplicate"
