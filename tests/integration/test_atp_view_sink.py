"""The view sink serving the ATP view end to end: real broker, real Redis, the embedded registry.

AtpLevel records on `inventory.atp` -> `worker views` (run_sink in a thread) -> Redis -> the read
API answers; an older version arriving after a newer one changes nothing; a tombstone deletes;
poison records (not Avro, another record type, a key that is not the SKU) go to `inventory.atp.dlq`
with the original bytes and the context headers, and the partition moves on. The same sink, in
the same run, keeps serving the order view from `orders.state`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shopstream.config import Settings
from shopstream.dlq import header_map
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from shopstream.views.atp import AtpView
from shopstream.views.orders import OrderView
from shopstream.views.sink import ATP_TOPIC, GROUP_ID, ORDERS_TOPIC
from tests.integration.test_order_view import make_state
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.unit.test_atp_view import make_level
from tests.workers import api_client, running_sink, wait_for

pytestmark = pytest.mark.broker


@pytest.fixture
def topics(settings: Settings) -> Settings:
    apply(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    return settings


@pytest.fixture
def sink(topics: Settings) -> Iterator[None]:
    with running_sink(topics, batch_size=50):
        yield


def produce(settings: Settings, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = make_producer(settings)
    for key, value in records:
        producer.produce(settings.topic(topic), key=key, value=value)
    assert producer.flush(30) == 0


def versions(view: AtpView, expected: dict[str, int | None]) -> Callable[[], bool]:
    def check() -> bool:
        for sku, version in expected.items():
            doc = view.get(sku)
            if (doc["version"] if doc else None) != version:
                return False
        return True
    return check


async def test_atp_records_reach_the_view_and_the_api(topics: Settings, sink: None) -> None:
    settings = topics
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    atp = settings.topic(ATP_TOPIC)

    def level(sku: str, version: int, **kw: Any) -> tuple[bytes, bytes]:
        return sku.encode(), serde.encode(atp, make_level(sku, version, **kw))

    produce(settings, ATP_TOPIC, [
        level("SKU-1", 1, on_hand=10),
        level("SKU-1", 3, on_hand=30),
        level("SKU-1", 2, on_hand=20),                               # older, arrives after the newer one
        (b"SKU-1", b"definitely not avro"),                          # poison on SKU-1's partition
        (b"SKU-2", serde.encode(atp, make_level("SKU-X", 1))),       # key is not the record's SKU
        (b"SKU-3", serde.encode(atp, make_state("SKU-3", 1))),       # another record type
        *[level(f"BULK-{i}", 1, on_hand=i) for i in range(120)],
        level("GONE", 1), (b"GONE", None),                           # tombstone
    ])
    produce(settings, ORDERS_TOPIC, [(b"O-1", serde.encode(settings.topic(ORDERS_TOPIC), make_state("O-1", 2)))])

    view = AtpView.from_url(settings.redis_url, settings.redis_key_prefix)
    orders = OrderView.from_url(settings.redis_url, settings.redis_key_prefix)
    try:
        wait_for(versions(view, {"SKU-1": 3, "GONE": None, **{f"BULK-{i}": 1 for i in range(120)}}),
                 what="the ATP view to reach the newest versions")
        wait_for(lambda: (doc := orders.get_order("O-1")) is not None and doc["version"] == 2,
                 what="the order view (same sink)")
        # The sink goes on after the poison record: a later record on the same partition lands.
        produce(settings, ATP_TOPIC, [level("SKU-1", 4, on_hand=40)])
        wait_for(versions(view, {"SKU-1": 4}), what="the record after the poison one")
        assert view.get("SKU-X") is None and view.get("SKU-2") is None and view.get("SKU-3") is None
    finally:
        view.close()
        orders.close()

    # The read API answers from what the sink wrote.
    async with api_client(settings) as client:
        resp = await client.get("/v1/atp/SKU-1")
        assert resp.status == 200
        body = await resp.json()
        assert {k: body[k] for k in ("sku", "on_hand", "reserved", "safety_stock", "incoming", "available",
                                     "version", "updated_at")} == {
            "sku": "SKU-1", "on_hand": 40, "reserved": 3, "safety_stock": 2, "incoming": 40, "available": 35,
            "version": 4, "updated_at": "2024-05-01T12:00:00.123Z"}
        assert body["locations"] == [{"location": "main", "on_hand": 40, "reserved": 3, "safety_stock": 2,
                                      "incoming": 40, "as_of": "2024-05-01T06:00:00.000Z"}]
        resp = await client.get("/v1/atp", params=[("sku", "BULK-7"), ("sku", "GONE"), ("sku", "SKU-1")])
        assert resp.status == 200
        batch = await resp.json()
        assert [(d["sku"], d["on_hand"]) for d in batch["items"]] == [("BULK-7", 7), ("SKU-1", 40)]
        assert batch["unknown"] == ["GONE"]
        assert (await client.get("/v1/atp/GONE")).status == 404

    dlqs = load_topology().dlq_routes(settings.topic_prefix)
    parked = read_all(settings.kafka_bootstrap_servers, dlqs[atp], partitions=1, idle_s=0.5)
    by_key = {m.key(): m for m in parked}
    assert sorted(by_key) == [b"SKU-1", b"SKU-2", b"SKU-3"], [m.key() for m in parked]
    assert by_key[b"SKU-1"].value() == b"definitely not avro"
    for key, stage, error in ((b"SKU-1", b"deserialize", b"NotAvroFramed"), (b"SKU-2", b"sink", b"ValueError"),
                              (b"SKU-3", b"deserialize", b"UnknownRecord")):
        h = header_map(by_key[key].headers())
        assert h["shopstream.dlq.original.topic"] == atp.encode()
        assert h["shopstream.dlq.stage"] == stage, key
        assert h["shopstream.dlq.error.class"].endswith(error), (key, h["shopstream.dlq.error.class"])
        assert h["shopstream.dlq.processor"] == settings.topic(GROUP_ID).encode()
    assert read_all(settings.kafka_bootstrap_servers, dlqs[settings.topic(ORDERS_TOPIC)], partitions=1,
                    idle_s=0.5) == []
