"""Helpdesk webhooks through the connectors service in-process, on the real broker, registry and Redis:
a signed Zendesk ticket lands on `support.tickets`; a wrong signature is 401 with nothing published; a
redelivered event is a duplicate; Freshdesk, Gorgias and the generic source answer on their routes.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from pydantic import SecretStr

from shopstream.config import Settings
from shopstream.connectors.signing import shopstream_headers
from shopstream.connectors.zendesk import zendesk_sign
from shopstream.schemas.models import TicketCreated
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from tests.webhook_client import client_for, read_topic

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

ZENDESK = "zendesk-integration-secret"


@pytest.fixture
def helpdesk_settings(settings: Settings) -> Settings:
    """The test's settings with every topic created under its prefix, and the helpdesk secrets set."""
    report = apply(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix, timeout_s=30)
    assert report.failed == {}
    return settings.model_copy(update={"zendesk_secret": SecretStr(ZENDESK), "freshdesk_secret": SecretStr("a:b"),
                                       "gorgias_secret": SecretStr("tok"), "helpdesk_secret": SecretStr("hd")})


def zendesk_body(ticket_id: str) -> bytes:
    return json.dumps({"type": "zen:event-type:ticket.created", "id": f"evt-{ticket_id}",
                       "time": "2026-12-06T10:00:00Z",
                       "detail": {"id": ticket_id, "subject": "Wo ist meine Bestellung #1001?",
                                  "description": "Hallo, wo ist meine Bestellung #1001?", "priority": "NORMAL",
                                  "status": "NEW", "requester_id": "366", "tags": [], "via": {"channel": "email"},
                                  "created_at": "2026-12-06T10:00:00Z"}}).encode()


def zendesk_headers(body: bytes, secret: str = ZENDESK) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"Content-Type": "application/json", "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Signature": zendesk_sign(secret, stamp, body)}


async def test_zendesk_ticket_published_once_and_wrong_signature_publishes_nothing(
        helpdesk_settings: Settings) -> None:
    s = helpdesk_settings
    bad, good = zendesk_body("bad-1"), zendesk_body(uuid.uuid4().hex[:8])
    async with client_for(s) as client:
        resp = await client.post("/webhooks/helpdesk/zendesk", data=bad, headers=zendesk_headers(bad, "wrong"))
        assert resp.status == 401
        resp = await client.post("/webhooks/helpdesk/zendesk", data=good, headers=zendesk_headers(good))
        assert resp.status == 200, await resp.text()
        again = await client.post("/webhooks/helpdesk/zendesk", data=good, headers=zendesk_headers(good))
        assert (await again.json())["status"] == "duplicate"
        resp = await client.post("/webhooks/helpdesk/nosuch", data=good, headers=zendesk_headers(good))
        assert resp.status == 404
        resp = await client.post("/webhooks/zendesk", data=good, headers=zendesk_headers(good))
        assert resp.status == 404  # helpdesks answer under /webhooks/helpdesk/ only

        fresh = json.dumps({"freshdesk_webhook": {"ticket_id": 5, "ticket_subject": "Rechnung",
                                                  "ticket_created_at": "2026-12-06T10:00:00Z"}}).encode()
        auth = {"Authorization": "Basic " + base64.b64encode(b"a:b").decode()}
        assert (await client.post("/webhooks/helpdesk/freshdesk", data=fresh, headers=auth)).status == 200
        assert (await client.post("/webhooks/helpdesk/freshdesk", data=fresh)).status == 401
        gorgias = json.dumps({"event": "ticket-created", "ticket": {
            "id": 7, "subject": "Return", "created_datetime": "2026-12-06T10:00:00Z"}}).encode()
        assert (await client.post("/webhooks/helpdesk/gorgias", data=gorgias,
                                  headers={"X-Shopstream-Token": "tok"})).status == 200
        generic = json.dumps({"type": "created", "ticket_id": "G-1", "occurred_at": "2026-12-06T10:00:00Z",
                              "subject": "Hi"}).encode()
        assert (await client.post("/webhooks/helpdesk", data=generic,
                                  headers=shopstream_headers("hd", generic))).status == 200

    records = read_topic(s, "support.tickets", want=4)
    assert len(records) == 4
    serde = AvroSerde(make_registry_client(s.schema_registry_url))
    keys = [r.key().decode() for r in records]
    assert not any("bad-1" in k for k in keys)
    zendesk = [serde.decode(r.value()) for r in records if r.key().decode().startswith("zendesk:")]
    assert len(zendesk) == 1 and isinstance(zendesk[0], TicketCreated)
    assert zendesk[0].subject == "Wo ist meine Bestellung #1001?"
