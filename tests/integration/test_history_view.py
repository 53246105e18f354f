"""The order history view end to end: real broker, real Redis, the embedded registry, the read API.

OrderStatusChanged records on `orders.status-changes` -> `worker views` (run_sink in a thread) ->
the sorted set `{prefix}order-history:{order_id}` -> `GET /v1/orders/{id}/history`. Proves: the
trail comes back ordered by version whatever the arrival order; replaying the same records twice
changes nothing; unknown orders answer 404 (an order the order view knows answers an empty trail);
poison records (not Avro, another record type, a key that is not the order id, a null value) go to
`orders.status-changes.dlq` with their original bytes and the partition moves on. Also the Lua
script on its own against real Redis: the per-order bound and the order of equal versions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient
from confluent_kafka.admin import NewTopic

from shopstream.api.app import HISTORY_NOT_FOUND
from shopstream.config import Settings
from shopstream.dlq import header_map
from shopstream.kafka import make_admin
from shopstream.metrics import RECORDS_IN
from shopstream.schemas.models import OrderStatusChanged
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import load_topology
from shopstream.views.history import HistoryView, history_document, history_key, in_history_order
from shopstream.views.orders import OrderView, order_document
from shopstream.views.sink import CHANGES_TOPIC, GROUP_ID, PROCESSOR
from tests.integration.test_order_view import make_state
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.unit.test_history_view import make_change, snap
from tests.workers import api_client, running_sink, wait_for

pytestmark = pytest.mark.broker

# H-1's trail: versions 1..6, produced out of order; 6 comes after the poison records.
TRAIL = [
    make_change("H-1", 1, current=snap(), rule="shopify.pending"),
    make_change("H-1", 2, previous=snap(), current=snap("ready_to_fulfill", "paid"), source="stripe",
                cause_type="PaymentCaptured", rule="payments.captured"),
    make_change("H-1", 3, previous=snap("ready_to_fulfill", "paid"),
                current=snap("on_hold", "paid", holds=("address_check",)), rule="holds.address_check"),
    make_change("H-1", 4, previous=snap("on_hold", "paid", holds=("address_check",)),
                current=snap("ready_to_fulfill", "paid"), rule="holds.released"),
    make_change("H-1", 5, previous=snap("ready_to_fulfill", "paid"),
                current=snap("shipped", "paid", "shipped"), source="carrier", cause_type="ShipmentDispatched",
                rule="shipments.dispatched"),
]
LATE = make_change("H-1", 6, previous=snap("shipped", "paid", "shipped"),
                   current=snap("delivered", "paid", "delivered"), source="carrier",
                   cause_type="ShipmentDelivered", rule="shipments.delivered")
OTHER = [make_change("H-2", 1, current=snap()),
         make_change("H-2", 2, previous=snap(), current=snap("cancelled", "voided"), rule="shopify.cancelled")]


@pytest.fixture
def topics(settings: Settings) -> Settings:
    """`orders.status-changes` and its DLQ companion, as the topology declares them."""
    topology = load_topology()
    admin = make_admin(settings)  # keep a reference: a collected AdminClient fails its futures
    new = [NewTopic(settings.topic(t.name), t.partitions, t.replication_factor, config=t.kafka_configs())
           for t in (topology.topic(CHANGES_TOPIC), topology.topic(topology.dlq_for(CHANGES_TOPIC)))]
    for future in admin.create_topics(new).values():
        future.result(timeout=30)
    return settings


@pytest.fixture
def sink(topics: Settings) -> Iterator[None]:
    with running_sink(topics, batch_size=5):
        yield


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[TestClient]:
    async with api_client(settings) as client:
        yield client


def produce(settings: Settings, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = make_producer(settings)
    for key, value in records:
        producer.produce(settings.topic(CHANGES_TOPIC), key=key, value=value)
    assert producer.flush(30) == 0


def duplicates(settings: Settings) -> float:
    return RECORDS_IN.labels(PROCESSOR, settings.topic(CHANGES_TOPIC), "duplicate")._value.get()


async def history(api: TestClient, order_id: str, **params: str) -> tuple[int, dict[str, Any]]:
    resp = await api.get(f"/v1/orders/{order_id}/history", params=params)
    assert resp.content_type == "application/json"
    return resp.status, await resp.json()


async def test_history_in_order_idempotent_404_and_poison_parked(topics: Settings, sink: None,
                                                                 api: TestClient) -> None:
    settings = topics
    topic = settings.topic(CHANGES_TOPIC)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))

    def record(change: OrderStatusChanged) -> tuple[bytes, bytes]:
        return change.order_id.encode(), serde.encode(topic, change)

    wrong_type = serde.encode(topic, make_state("H-2", 7))
    stray = serde.encode(topic, make_change("H-9", 1))
    produce(settings, [
        *[record(TRAIL[i]) for i in (0, 2, 1, 4, 3)],           # arrival order is not version order
        *[record(c) for c in OTHER],
        (b"H-1", b"definitely not avro"),                         # poison on H-1's partition
        (b"H-2", wrong_type),                                     # another record type
        (b"H-3", stray),                                          # key is not the record's order id
        (b"H-1", None),                                           # a null value never erases the trail
    ])
    # The sink goes on after the poison records: a later record on the same partition lands.
    produce(settings, [record(LATE)])

    view = HistoryView.from_url(settings.redis_url, settings.redis_key_prefix)
    try:
        wait_for(lambda: len(view.get("H-1")) == 6 and len(view.get("H-2")) == 2, what="both trails")

        expected = [history_document(c) for c in [*TRAIL, LATE]]
        status, body = await history(api, "H-1")
        assert status == 200
        assert body == {"order_id": "H-1", "changes": expected}
        assert [c["version"] for c in body["changes"]] == [1, 2, 3, 4, 5, 6]
        assert body["changes"][2]["changed"] == ["status", "hold_reasons"]
        assert body["changes"][2]["current"]["hold_reasons"] == ["address_check"]
        first = await (await api.get("/v1/orders/H-1/history")).read()

        status, body = await history(api, "H-1", limit="2")
        assert status == 200 and [c["version"] for c in body["changes"]] == [5, 6]
        status, body = await history(api, "H-2")
        assert status == 200 and body["changes"] == [history_document(c) for c in OTHER]

        # Replaying the same records twice (a rewound consumer group, a redelivery) changes nothing.
        before = duplicates(settings)
        replay = [record(c) for c in [*TRAIL, LATE, *OTHER]]
        produce(settings, replay + replay)
        wait_for(lambda: duplicates(settings) - before >= 2 * len(replay), what="the replayed records")
        assert duplicates(settings) - before == 2 * len(replay)
        assert await (await api.get("/v1/orders/H-1/history")).read() == first
        raw = redis.Redis.from_url(settings.redis_url)
        try:
            assert raw.zcard(history_key(settings.redis_key_prefix, "H-1")) == 6
            assert raw.zcard(history_key(settings.redis_key_prefix, "H-2")) == 2
        finally:
            raw.close()
        assert view.get("H-3") == [] and view.get("H-9") == []
    finally:
        view.close()

    # Unknown order: 404 with a reason; an order the order view knows but without changes: [].
    status, body = await history(api, "NOPE-42")
    assert (status, body) == (404, {"error": "order not found", "order_id": "NOPE-42", "reason": HISTORY_NOT_FOUND})
    orders = OrderView.from_url(settings.redis_url, settings.redis_key_prefix)
    try:
        orders.put(order_document(make_state("O-QUIET", 1)))
    finally:
        orders.close()
    assert await history(api, "O-QUIET") == (200, {"order_id": "O-QUIET", "changes": []})
    status, body = await history(api, "-bad")
    assert status == 400 and body["error"] == "invalid order_id" and body["reason"]
    status, body = await history(api, "H-1", limit="0")
    assert status == 400 and body["error"] == "invalid request" and "limit" in body["reason"]

    dlq = load_topology().dlq_routes(settings.topic_prefix)[topic]
    parked = read_all(settings.kafka_bootstrap_servers, dlq, partitions=1, idle_s=0.5)
    found: dict[tuple[bytes | None, bytes | None], tuple[bytes, bytes]] = {}
    for msg in parked:
        h = header_map(msg.headers())
        assert h["shopstream.dlq.original.topic"] == topic.encode()
        assert h["shopstream.dlq.processor"] == settings.topic(GROUP_ID).encode()
        found[(msg.key(), msg.value())] = (h["shopstream.dlq.stage"], h["shopstream.dlq.error.class"].split(b".")[-1])
    assert len(parked) == 4, found
    assert found == {
        (b"H-1", b"definitely not avro"): (b"deserialize", b"NotAvroFramed"),
        (b"H-1", None): (b"deserialize", b"NotAvroFramed"),
        (b"H-2", wrong_type): (b"deserialize", b"UnexpectedRecord"),
        (b"H-3", stray): (b"sink", b"ValueError"),
    }


# ------------------------------------------------------------------- the script alone, on real Redis


@pytest.fixture
def small_view(redis_url: str, redis_prefix: str) -> Iterator[HistoryView]:
    view = HistoryView.from_url(redis_url, redis_prefix, max_entries=3)
    yield view
    view.close()


def test_bound_keeps_the_newest_and_an_old_replay_stays_out(small_view: HistoryView) -> None:
    changes = [make_change("B-1", v) for v in range(1, 6)]
    assert small_view.put_changes(changes) == [True] * 5  # each landed; the bound trimmed the oldest
    assert [d["version"] for d in small_view.get("B-1")] == [3, 4, 5]
    # A replay of a trimmed change is trimmed again at once (not written); a newer one pushes out 3.
    assert small_view.put_changes([changes[0], changes[4], make_change("B-1", 6)]) == [False, False, True]
    assert [d["version"] for d in small_view.get("B-1")] == [4, 5, 6]


def test_equal_versions_stand_in_event_id_order_and_match_the_pure_order(small_view: HistoryView) -> None:
    a, b = make_change("T-1", 2, cause="x"), make_change("T-1", 2, cause="y")
    assert small_view.put_changes([b, make_change("T-1", 1), a, b]) == [True, True, True, False]
    stored = small_view.get("T-1")
    assert stored == in_history_order(history_document(c) for c in (a, b, make_change("T-1", 1)))
    assert [d["version"] for d in stored] == [1, 2, 2]


def test_a_duplicate_rendered_differently_changes_nothing(small_view: HistoryView) -> None:
    change = make_change("D-1", 1)
    entry = small_view.entry(change, b"D-1")
    assert small_view.put_many([entry]) == [True]
    rerendered = entry._replace(document=entry.document.replace('"rule":"shopify.paid"', '"rule":"other"'))
    assert rerendered.document != entry.document
    assert small_view.put_many([rerendered]) == [False]
    assert small_view.get("D-1") == [history_document(change)]
    with pytest.raises(redis.exceptions.ResponseError, match="does not start with its event_id"):
        small_view.put_many([entry._replace(document='{"version":1}')])
