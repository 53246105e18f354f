"""SIGKILL the views sink mid-stream, restart it: Redis holds the newest version of every key, none went back.

Input: 150 orders (OrderState on `orders.state`) and 150 SKUs (AtpLevel on `inventory.atp`), 20 versions
each, fed round by round from a paced thread while the real `shopstream worker views` writes them to Redis;
about one record in ten is an older version sent again after a newer one (a replay upstream). Once it has
written the first round and a third of the feed is out, the sink is SIGKILLed (mid-batch as likely as not:
between its Redis write and its commit), records go on arriving while it is down, and it is started again.
The oracle is the test's own feed. At the end every order and ATP document in Redis equals the document
of the newest version fed for its key; and a sampler reading every key all along never saw a key's
version go down (the Lua version guard under the redelivery a crash causes).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from shopstream.config import Settings
from shopstream.schemas.models import AtpLevel, OrderState
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from shopstream.views.atp import atp_document, atp_key, level_datum
from shopstream.views.orders import order_document, order_key
from tests.integration.test_order_view import make_state
from tests.integration.test_shop_sync import level
from tests.kafka_write import Feed, Record, produce_all
from tests.workers import sigkill_mid_feed, start_worker, stop, wait_for

pytestmark = pytest.mark.broker

ORDERS = [f"crash-order-{n:03d}" for n in range(150)]
SKUS = [f"CRASH-{n:03d}" for n in range(150)]
VERSIONS = 20


class Sampler(threading.Thread):
    """Reads every key of the views over and over; remembers each key's highest version and every step back."""

    def __init__(self, client: redis.Redis, keys: Sequence[str]) -> None:
        super().__init__(daemon=True)
        self.client, self.keys = client, list(keys)
        self.highest: dict[str, int] = {}
        self.went_back: list[tuple[str, int, int]] = []
        self.reads = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for key, raw in zip(self.keys, self.client.mget(self.keys), strict=True):
                if raw is None:
                    continue
                version = json.loads(raw)["version"]
                if version < self.highest.get(key, 0):
                    self.went_back.append((key, self.highest[key], version))
                self.highest[key] = max(version, self.highest.get(key, 0))
            self.reads += 1
            time.sleep(0.02)


def _feed(settings: Settings, serde: AvroSerde) -> tuple[list[list[Record]], dict[str, Any]]:
    """Rounds of records (round v: version v of every key, shuffled, plus some older versions again), and the
    oracle: each Redis key's document of its newest version."""
    rng = random.Random(20)
    orders_topic, atp_topic = settings.topic("orders.state"), settings.topic("inventory.atp")
    states: dict[str, list[OrderState]] = {o: [] for o in ORDERS}
    levels: dict[str, list[AtpLevel]] = {s: [] for s in SKUS}
    rounds: list[list[Record]] = []
    for version in range(1, VERSIONS + 1):
        records: list[Record] = []
        for order_id in ORDERS:
            states[order_id].append(make_state(order_id, version, total=f"{rng.randint(1, 500)}.5"))
            records.append((orders_topic, order_id.encode(), serde.encode(orders_topic, states[order_id][-1])))
        for sku in SKUS:
            levels[sku].append(level(sku, rng.randint(-3, 40), version))
            records.append((atp_topic, sku.encode(), serde.encode(atp_topic, levels[sku][-1])))
        rng.shuffle(records)
        stale = [rng.choice(records) for _ in range(len(records) // 10)] if version > 2 else []
        rounds.append(records + [_older(r, states, levels, version, rng, serde) for r in stale])
    expected: dict[str, Any] = {order_key(settings.redis_key_prefix, o): order_document(s[-1])
                                for o, s in states.items()}
    expected.update({atp_key(settings.redis_key_prefix, sku): json.loads(atp_document(level_datum(lv[-1])))
                     for sku, lv in levels.items()})
    return rounds, json.loads(json.dumps(expected))  # as the views store them (JSON text)


def _older(record: Record, states: dict[str, list[OrderState]], levels: dict[str, list[AtpLevel]], version: int,
           rng: random.Random, serde: AvroSerde) -> Record:
    """The same key's record of an older version (1 .. version - 1), sent again."""
    topic, key, _ = record
    older = rng.randint(1, version - 1) - 1
    model = states[key.decode()][older] if key.decode() in states else levels[key.decode()][older]
    return topic, key, serde.encode(topic, model)


def test_sigkill_mid_stream_then_restart_holds_the_newest_of_every_key(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    rounds, expected = _feed(settings, serde)
    client = redis.Redis.from_url(settings.redis_url)
    sampler = Sampler(client, sorted(expected))
    produce_all(settings, rounds[0])  # round 1 waits on the topics: the sink shows it works before the feed
    feed = Feed(settings, [r for records in rounds[1:] for r in records], seconds=8.0)
    log = tmp_path / "worker.log"
    sampler.start()
    worker = start_worker("views", settings, log)
    try:
        wait_for(lambda: len(sampler.highest) == len(expected), 90, log, "the first round in Redis")
        sigkill_mid_feed(worker, feed, log)
        at_kill = sum(sampler.highest.values())
        time.sleep(1.0)  # records go on arriving while it is down
        worker = start_worker("views", settings, log)
        feed.join()

        def stored() -> dict[str, Any]:
            keys = sorted(expected)
            return {k: json.loads(raw) for k, raw in zip(keys, client.mget(keys), strict=True) if raw is not None}

        wait_for(lambda: stored() == expected, 60, log, "the newest version of every key in Redis")
        reads = sampler.reads
        wait_for(lambda: sampler.reads > reads + 2, 10, what="the sampler's last reads")
        final = stored()  # still the newest after a few more sampler rounds
        assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        sampler.halt.set()
        stop(worker)
        sampler.join(timeout=10)
        client.close()

    assert at_kill < len(expected) * VERSIONS, "the sink had written everything before the kill"
    assert not sampler.went_back, f"{len(sampler.went_back)} reads went back a version, e.g. {sampler.went_back[:3]}"
    assert final == expected
