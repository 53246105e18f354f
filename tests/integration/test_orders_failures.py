"""Failure handling of the orders worker on the real broker: poison records are parked, not blocking.

One partition carries good events, undecodable bytes and an event whose source has no status mapping.
The good ones are applied; both bad ones are on shop.orders.dlq with every context header; the
mapping is then added (SHOPSTREAM_MAPPINGS_DIR) and the parked event replayed with `shopstream dlq
replay`: it is applied and the state equals the oracle; a second replay changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from shopstream.config import Settings
from shopstream.connectors.shopify import ShopifyConnector, sign
from shopstream.dev.shopify_samples import shopify_order
from shopstream.processors.orders.lifecycle import apply
from shopstream.processors.orders.mapping import load_mapping, mappings_dir
from shopstream.schemas.models import OrderPlaced, OrderState, OrderUpdated
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import latest_order_states, read_all
from tests.kafka_write import make_producer
from tests.workers import start_worker, stop, wait_for

pytestmark = pytest.mark.broker

CONTEXT_HEADERS = {
    "original.topic", "original.partition", "original.offset", "original.timestamp", "original.key",
    "processor", "processor.version", "stage", "error.class", "error.message", "error.stacktrace",
    "error.fingerprint", "attempts", "first.failure", "last.failure",
}


def _ids_on_partition(partition: int, count: int) -> list[str]:
    """Order ids whose murmur2 partition (4 partitions) is `partition`: one partition for the whole test."""
    chooser, found, n = DefaultPartitioner(), [], 7_100_000
    while len(found) < count:
        if chooser(str(n).encode(), [0, 1, 2, 3], [0, 1, 2, 3]) == partition:
            found.append(str(n))
        n += 1
    return found


def _event(order_id: str, topic: str, source: str = "shopify", minutes: int = 0) -> OrderPlaced | OrderUpdated:
    base = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    order = shopify_order(int(order_id), financial_status="pending" if minutes == 0 else "paid", created_at=base)
    order["updated_at"] = (base + timedelta(minutes=minutes)).isoformat()
    body = json.dumps(order).encode()
    (out,) = ShopifyConnector("s").translate(
        {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": sign("s", body)}, body, base + timedelta(hours=1))
    record = out.record
    if source != "shopify":
        record = record.model_copy(update={"meta": record.meta.model_copy(update={"source": source})})
    assert isinstance(record, OrderPlaced | OrderUpdated)
    return record


def _states(settings: Settings, serde: AvroSerde) -> dict[str, OrderState]:
    return latest_order_states(settings.kafka_bootstrap_servers, settings.topic("orders.state"), serde)


def test_poison_records_are_parked_and_the_partition_moves_on(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    a, b, c = _ids_on_partition(0, 3)
    topic = settings.topic("shop.orders")
    placed_a, placed_b = _event(a, "orders/create"), _event(b, "orders/create")
    from_acme = _event(c, "orders/create", source="acme")
    paid_a = _event(a, "orders/updated", minutes=5)
    producer = make_producer(settings)
    for key, value in ((a, serde.encode(topic, placed_a)), (a, b"\x00\x00not avro at all"),
                       (b, serde.encode(topic, placed_b)), (c, serde.encode(topic, from_acme)),
                       (a, serde.encode(topic, paid_a))):
        producer.produce(topic, key=key.encode(), value=value, headers=[("trace", b"t-1")])
    assert producer.flush(10) == 0

    mappings = tmp_path / "mappings"
    mappings.mkdir()
    log = tmp_path / "worker.log"
    worker = start_worker("orders", settings, log, SHOPSTREAM_MAPPINGS_DIR=str(mappings))
    try:
        states = wait_for(lambda: (lambda s: s if a in s and s[a].version == 2 and b in s else None)(
            _states(settings, serde)), 120, log)
        assert states[a].payment_status == "paid"
        assert c not in states

        parked = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(
            read_all(settings.kafka_bootstrap_servers, settings.topic("shop.orders.dlq"), partitions=1, idle_s=0.5)),
            30, log)
        by_key = {m.key(): m for m in parked}
        garbage, acme = by_key[a.encode()], by_key[c.encode()]
        assert garbage.value() == b"\x00\x00not avro at all"
        for msg in (garbage, acme):
            headers = dict(msg.headers())
            assert {f"shopstream.dlq.{h}" for h in CONTEXT_HEADERS} <= set(headers)
            assert headers["trace"] == b"t-1"  # original headers kept
            assert headers["shopstream.dlq.original.topic"] == topic.encode()
            assert headers["shopstream.dlq.original.partition"] == b"0"
            assert headers["shopstream.dlq.processor"] == b"orders"
            assert headers["shopstream.dlq.attempts"] == b"1"
        assert dict(garbage.headers())["shopstream.dlq.stage"] == b"deserialize"
        assert dict(acme.headers())["shopstream.dlq.stage"] == b"process"
        assert b"acme" in dict(acme.headers())["shopstream.dlq.error.message"]
        offsets = sorted(int(dict(m.headers())["shopstream.dlq.original.offset"]) for m in parked)
        assert offsets[0] < offsets[1]

        # The operator fixes the cause: a status mapping for the new source system.
        (mappings / "acme.yaml").write_text(
            (mappings_dir() / "shopify.yaml").read_text().replace("source: shopify", "source: acme"))
        acme_fp = dict(acme.headers())["shopstream.dlq.error.fingerprint"].decode()
        replay_env = {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                      "SCHEMA_REGISTRY_URL": settings.schema_registry_url,
                      "SHOPSTREAM_TOPIC_PREFIX": settings.topic_prefix}
        assert _cli(["dlq", "replay", "shop.orders.dlq", "--fingerprint", acme_fp], replay_env) == 0

        expected = apply(None, from_acme, load_mapping("acme", mappings)).state
        states = wait_for(lambda: (lambda s: s if c in s else None)(_states(settings, serde)), 60, log)
        assert states[c] == expected

        # Replaying again sends nothing and changes nothing.
        assert _cli(["dlq", "replay", "shop.orders.dlq", "--fingerprint", acme_fp], replay_env) == 0
        time.sleep(3)
        assert _states(settings, serde)[c] == expected
        assert len(read_all(settings.kafka_bootstrap_servers, topic, idle_s=0.5)) == 6  # 5 produced + 1 replay
    finally:
        stop(worker)


def _cli(argv: list[str], env: dict[str, str]) -> int:
    done = subprocess.run([sys.executable, "-m", "shopstream.cli", *argv], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)
    print(done.stdout, done.stderr)
    return done.returncode
