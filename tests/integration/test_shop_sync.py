"""`shopstream worker shop-sync` on the real broker: coalesced SyncShopStock commands per SKU.

The real worker subprocess reads AtpLevels from `inventory.atp` with a 6 s window
(`SHOPSTREAM_SHOP_SYNC_WINDOW_MS`), and `commands.shop` must show:
- 1,000 changes of one SKU within the window (on the topic before the worker starts, so the
  producer's speed cannot stretch them over two windows) -> exactly one command, with the final value and version;
- a second SKU changing in the same window -> its own single command (shop-visible: max(0, available));
- changes that do not alter the shop-visible figure (other figures changed; a deeper oversell while
  the shop already shows 0) -> no command, even after their window would have ended;
- a later visible change -> one more command;
- an undecodable record -> `inventory.atp.dlq` with its context, and the partition goes on.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from shopstream.config import Settings
from shopstream.dlq import header_map
from shopstream.processors.inventory.shop_sync_worker import GROUP_ID
from shopstream.schemas.models import AtpLevel, EventMeta, SyncShopStock
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_write import make_producer
from tests.workers import start_worker, stop, wait_for

pytestmark = pytest.mark.broker

WINDOW_MS = 6000
PARTITIONS = 4
BASE = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def level(sku: str, available: int, version: int, on_hand: int | None = None) -> AtpLevel:
    at = BASE + timedelta(seconds=version)
    on_hand = available + 3 if on_hand is None else on_hand
    return AtpLevel(
        meta=EventMeta(event_id=str(uuid.uuid4()), event_type="AtpLevel", occurred_at=at, recorded_at=at,
                       source="shopstream.inventory", correlation_id=f"corr-{sku}-{version}"),
        sku=sku, on_hand=on_hand, reserved=on_hand - available, safety_stock=0, incoming=0, available=available,
        version=version, updated_at=at)


class Topic:
    """Everything on a topic so far, read continuously without a consumer group."""

    def __init__(self, settings: Settings, name: str, partitions: int) -> None:
        self.consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "test-reader",
                                  "enable.auto.commit": False})
        self.consumer.assign([TopicPartition(name, p, 0) for p in range(partitions)])
        self.records: list[Message] = []

    def read(self) -> list[Message]:
        for msg in self.consumer.consume(1000, 0.3):
            err = msg.error()
            if err is None:
                self.records.append(msg)
            elif err.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise AssertionError(f"reader error: {err}")
        return self.records

    def close(self) -> None:
        self.consumer.close()


def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> dict[int, int]:
    """Write (key, value) records to inventory.atp; returns the highest offset written per partition."""
    producer = make_producer(settings)
    topic = settings.topic("inventory.atp")
    written: dict[int, int] = {}

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        written[msg.partition() or 0] = max(written.get(msg.partition() or 0, -1), msg.offset() or 0)

    for key, value in records:
        producer.produce(topic, value, key, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(60) == 0
    return written


def committed(settings: Settings, partitions: dict[int, int]) -> bool:
    """True when the worker's group committed past the given offsets."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "group.id": settings.topic(GROUP_ID), "enable.auto.commit": False})
    try:
        tps = consumer.committed([TopicPartition(settings.topic("inventory.atp"), p) for p in partitions], timeout=10)
    finally:
        consumer.close()
    return all(tp.offset > partitions[tp.partition] for tp in tps)


def test_shop_sync_coalesces_per_sku_and_sends_only_visible_changes(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    atp_topic = settings.topic("inventory.atp")

    def encoded(*levels: AtpLevel) -> list[tuple[bytes, bytes]]:
        return [(lv.sku.encode(), serde.encode(atp_topic, lv)) for lv in levels]

    # Phase 1 is on the topic before the worker starts: a warm-up SKU, then a burst of 1,000 changes
    # to A and 10 to B. The worker reads them all within milliseconds of joining, so they fall inside
    # one window however slowly this (possibly loaded) machine produces them.
    warm = level("W", 1, 1)
    burst_a = [level("A", (v * 37) % 23 - 5, v) for v in range(1, 1001)]
    burst_a[-1] = level("A", 17, 1000)
    burst_b = [level("B", 10 - 2 * v, v) for v in range(1, 11)]  # ends at -10: the shop shows 0
    sent_levels: dict[tuple[str, int], AtpLevel] = {(lv.sku, lv.version): lv for lv in [*burst_a, *burst_b]}
    records = encoded(*burst_a)
    records[500:500] = encoded(*burst_b)
    produce(settings, encoded(warm) + records)

    log = tmp_path / "worker.log"
    worker = start_worker("shop-sync", settings, log, SHOPSTREAM_SHOP_SYNC_WINDOW_MS=str(WINDOW_MS))
    commands_topic = Topic(settings, settings.topic("commands.shop"), PARTITIONS)
    dlq_topic = Topic(settings, settings.topic("inventory.atp.dlq"), 1)

    def commands() -> dict[str, list[SyncShopStock]]:
        out: dict[str, list[SyncShopStock]] = {}
        for msg in commands_topic.read():
            cmd = serde.decode(msg.value())
            assert isinstance(cmd, SyncShopStock)
            assert msg.key() == cmd.sku.encode()
            out.setdefault(cmd.sku, []).append(cmd)
        return out

    def figures(sku: str) -> list[tuple[int, int | None]]:
        return [(c.available, c.atp_version) for c in commands().get(sku, [])]

    try:
        # Group joins take seconds on Tansu: allow for them before the first window even opens.
        wait_for(lambda: figures("W") and figures("A") and figures("B"), 90, log, "the burst's commands")

        # Phase 2: nothing the shop can see changes; plus a record nobody can decode.
        quiet = encoded(level("A", 17, 1001, on_hand=40),    # on_hand and reserved moved, available did not
                        level("B", -25, 11))                  # deeper oversell: the shop still shows 0
        quiet.append((b"G", b"not avro at all"))
        written = produce(settings, quiet)
        wait_for(lambda: committed(settings, written), 60, log, "the worker to commit past phase 2")
        dlq = wait_for(lambda: dlq_topic.read(), 30, log, "the dead letter")
        time.sleep(WINDOW_MS / 1000 + 2)  # a window opened by phase 2 would have ended by now

        # Phase 3: a visible change of A again.
        after = level("A", 22, 1002)
        sent_levels[("A", 1002)] = after
        produce(settings, encoded(after))
        wait_for(lambda: len(figures("A")) >= 2, 60, log, "the command of phase 3")
        time.sleep(1.0)

        got = commands()
        assert figures("W") == [(1, 1)]
        assert figures("A") == [(17, 1000), (22, 1002)]
        assert figures("B") == [(0, 10)]
        assert set(got) == {"W", "A", "B"}
        for sku, cmds in got.items():
            for cmd in cmds:
                cause = warm if sku == "W" else sent_levels[(sku, cmd.atp_version or 0)]
                assert cmd.meta.causation_id == cause.meta.event_id
                assert cmd.meta.correlation_id == cause.meta.correlation_id
                assert cmd.meta.occurred_at == cause.updated_at
                assert cmd.meta.event_type == "SyncShopStock" and cmd.meta.source == "shopstream.shop-sync"

        assert len(dlq) == 1
        headers = header_map(dlq[0].headers())
        assert dlq[0].key() == b"G" and dlq[0].value() == b"not avro at all"
        assert headers["shopstream.dlq.original.topic"] == atp_topic.encode()
        assert headers["shopstream.dlq.stage"] == b"deserialize"
        assert headers["shopstream.dlq.error.class"].endswith(b"NotAvroFramed")
        assert headers["shopstream.dlq.processor"] == settings.topic(GROUP_ID).encode()

        metrics_ok = worker.poll() is None
        assert metrics_ok, "worker died:\n" + log.read_text(errors="replace")[-3000:]
    finally:
        commands_topic.close()
        dlq_topic.close()
        stop(worker)
    assert worker.returncode == 0, log.read_text(errors="replace")[-3000:]
