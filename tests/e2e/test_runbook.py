"""The README's DLQ runbook, followed literally against the running stack (`shopstream dev`).

A new source system ("acme") publishes an order before anyone added its status mapping: the orders
worker parks it on shop.orders.dlq. The operator lists, shows, fixes (adds the mapping), rehearses,
replays and verifies — with exactly the commands the README gives.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime

import pytest

from shopstream.config import load_settings
from shopstream.processors.orders.mapping import mappings_dir
from shopstream.schemas.models import EventMeta, Money, OrderLine, OrderPlaced
from shopstream.serde import AvroSerde, make_registry_client
from tests.e2e.conftest import RunningStack
from tests.e2e.test_shopify_slice import _poll_order
from tests.kafka_write import make_producer

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def _acme_order(order_id: str) -> OrderPlaced:
    now = datetime.now(UTC)
    return OrderPlaced(
        meta=EventMeta(event_id=f"0000aaaa-0000-4000-8000-{random.randint(0, 16**12 - 1):012x}",
                       event_type="OrderPlaced", occurred_at=now, recorded_at=now, source="acme"),
        order_id=order_id, placed_at=now, currency="EUR", total=Money(amount="12.00", currency="EUR"),
        lines=[OrderLine(line_id="1", sku="ACME-1", quantity=1, unit_price=Money(amount="12.00", currency="EUR"))],
        source_financial_status="paid",
    )


def _fingerprint_of(stack: RunningStack, needle: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = stack.cli("dlq", "list", "--json")
        assert done.returncode == 0, done.stderr
        for topic in json.loads(done.stdout)["topics"]:
            if topic["topic"] == "shop.orders.dlq":
                for group in topic["by_fingerprint"]:
                    if needle in (group["example_message"] or ""):
                        return str(group["fingerprint"])
        time.sleep(1)
    raise AssertionError(f"no dead letter mentioning {needle!r}; the service logs follow in the report")


def test_runbook_find_fix_replay_verify(stack: RunningStack) -> None:
    order_id = str(random.randint(10**12, 10**13))
    settings = load_settings(kafka_bootstrap_servers=stack.bootstrap, schema_registry_url=stack.registry,
                             topic_prefix=stack.prefix)
    topic = settings.topic("shop.orders")
    producer = make_producer(settings)
    producer.produce(topic, key=order_id.encode(),
                     value=AvroSerde(make_registry_client(stack.registry)).encode(topic, _acme_order(order_id)))
    assert producer.flush(10) == 0

    # 1. What failed?
    fingerprint = _fingerprint_of(stack, "acme")
    listing = stack.cli("dlq", "list")
    assert listing.returncode == 0 and "shop.orders.dlq" in listing.stdout and fingerprint in listing.stdout

    # 2. Look at the records of one failure.
    shown = stack.cli("dlq", "show", "shop.orders.dlq", "--fingerprint", fingerprint, "--limit", "5")
    assert shown.returncode == 0, shown.stderr
    assert "no status mapping for source 'acme'" in shown.stdout
    assert order_id in shown.stdout

    # 3. Fix the cause: a status mapping for the new source system.
    shopify = (mappings_dir() / "shopify.yaml").read_text()
    (stack.mappings_dir / "acme.yaml").write_text(shopify.replace("source: shopify", "source: acme"))

    # 4. Rehearse the replay.
    rehearsal = stack.cli("dlq", "replay", "shop.orders.dlq", "--fingerprint", fingerprint, "--dry-run")
    assert rehearsal.returncode == 0, rehearsal.stderr
    assert "would send" in rehearsal.stdout
    time.sleep(2)
    assert _order_status(stack, order_id) == 404  # nothing was sent

    # 5. Replay.
    replay = stack.cli("dlq", "replay", "shop.orders.dlq", "--fingerprint", fingerprint)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "sent 1" in replay.stdout

    # 6. Verify: readable, and a second replay sends nothing.
    view = _poll_order(stack, int(order_id))
    assert view["payment_status"] == "paid" and view["total"] == {"amount": "12.00", "currency": "EUR"}
    again = stack.cli("dlq", "replay", "shop.orders.dlq", "--fingerprint", fingerprint)
    assert again.returncode == 0 and "sent 0" in again.stdout and "already replayed" in again.stdout


def _order_status(stack: RunningStack, order_id: str) -> int:
    from shopstream.dev.shopify_samples import get_json

    return get_json(f"{stack.api}/v1/orders/{order_id}", stack.token)[0]
