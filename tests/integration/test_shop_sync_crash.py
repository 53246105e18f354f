"""SIGKILL the shop-sync worker mid-stream, restart it: the shop ends at every SKU's latest figure, never older.

Input: 120 SKUs whose AtpLevels arrive in 45 paced rounds (one new version per SKU per round, a random walk
that goes negative — the shop shows 0 — and often repeats a figure), fed live on `inventory.atp` while the
real `shopstream worker shop-sync` (window 300 ms) turns them into SyncShopStock on `commands.shop`. Once it
has sent commands and a third of the rounds are on the topic, it is SIGKILLed, rounds go on arriving while it
is down, and it is started again. The oracle is the test's own feed. At the end:
- every SKU's last command shows the shop-visible figure (max(0, available)) of its newest version;
- every command carries a figure the feed had at that version;
- per SKU, the commands' ATP versions never go down (a re-send of the same figure after the restart is
  the worker's documented at-least-once; an older figure after a newer one would move the shop back).
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path

import pytest

from shopstream.config import Settings
from shopstream.processors.inventory.shop_sync import shop_visible
from shopstream.schemas.models import SyncShopStock
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.integration.test_shop_sync import PARTITIONS, Topic, level
from tests.kafka_write import Feed, Record, produce_all
from tests.workers import sigkill_mid_feed, start_worker, stop, wait_for

pytestmark = pytest.mark.broker

SKUS = [f"CRASH-{n:03d}" for n in range(120)]
ROUNDS = 45
WINDOW_MS = 300


def _walk() -> dict[str, list[int]]:
    """Per SKU, `available` at versions 1..ROUNDS (index version - 1)."""
    rng = random.Random(10)
    walks: dict[str, list[int]] = {}
    for sku in SKUS:
        value, values = rng.randint(-2, 8), []
        for _ in range(ROUNDS):
            value = max(-5, min(12, value + rng.choice([-3, -1, 0, 0, 1, 2])))
            values.append(value)
        walks[sku] = values
    return walks


def _records(settings: Settings, serde: AvroSerde, walks: dict[str, list[int]], versions: range) -> list[Record]:
    """The AtpLevels of `versions`, round by round (every SKU once per round, shuffled)."""
    topic = settings.topic("inventory.atp")
    out: list[Record] = []
    for version in versions:
        skus = list(SKUS)
        random.Random(version).shuffle(skus)
        out += [(topic, sku.encode(), serde.encode(topic, level(sku, walks[sku][version - 1], version)))
                for sku in skus]
    return out


def test_sigkill_mid_stream_then_restart_ends_at_every_latest_figure(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    walks = _walk()
    fed = {sku: {v + 1: shop_visible(a) for v, a in enumerate(values)} for sku, values in walks.items()}
    expected = {sku: shop_visible(values[-1]) for sku, values in walks.items()}

    produce_all(settings, _records(settings, serde, walks, range(1, 2)))  # round 1 waits on the topic
    feed = Feed(settings, _records(settings, serde, walks, range(2, ROUNDS + 1)), seconds=8.0)

    log = tmp_path / "worker.log"
    env = {"SHOPSTREAM_SHOP_SYNC_WINDOW_MS": str(WINDOW_MS)}
    commands_topic = Topic(settings, settings.topic("commands.shop"), PARTITIONS)
    sent: dict[str, list[SyncShopStock]] = {}
    decoded = 0

    def read() -> dict[str, list[SyncShopStock]]:
        """Every command so far per SKU, in topic order (one SKU: one partition)."""
        nonlocal decoded
        records = commands_topic.read()
        for msg in records[decoded:]:
            cmd = serde.decode(msg.value())
            assert isinstance(cmd, SyncShopStock) and msg.key() == cmd.sku.encode()
            sent.setdefault(cmd.sku, []).append(cmd)
        decoded = len(records)
        return sent

    worker = start_worker("shop-sync", settings, log, **env)
    try:
        wait_for(lambda: len(read()) >= len(SKUS) // 2, 90, log, "the first round's commands")
        sigkill_mid_feed(worker, feed, log)
        at_kill = len(commands_topic.read())
        time.sleep(1.0)  # rounds go on arriving while it is down
        worker = start_worker("shop-sync", settings, log, **env)
        feed.join()

        def converged() -> bool:
            got = read()
            return all(sku in got and got[sku][-1].available == figure for sku, figure in expected.items())

        wait_for(converged, 60, log, "every SKU's latest figure")
        time.sleep(WINDOW_MS / 1000 + 1.5)  # a late window would have closed by now
        got = read()
        assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        commands_topic.close()
        stop(worker)

    assert decoded > at_kill > 0, (at_kill, decoded)
    last = {sku: cmds[-1].available for sku, cmds in got.items()}
    assert last == expected
    for sku, cmds in got.items():
        versions = [c.atp_version or 0 for c in cmds]
        for cmd in cmds:
            assert fed[sku][cmd.atp_version or 0] == cmd.available, (sku, cmd.atp_version, cmd.available)
        went_back = [(a, b) for a, b in itertools.pairwise(versions) if b < a]
        assert not went_back, f"{sku}: an older figure was sent after a newer one: {went_back} in {versions}"
