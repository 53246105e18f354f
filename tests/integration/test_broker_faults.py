"""Broker faults mid-stream: nothing is acknowledged that was not applied or parked (issue 10).

Each test runs its own Tansu behind a `BrokerProxy` (tests/broker_proxy.py: the broker advertises
the proxy, so every client connection goes through it) and the real worker process.

Orders: once the worker has applied and committed a first lot of OrderPlaced, the broker stops
taking its writes (`fail_produce("shopstream-orders")`: fetches, offset commits and the group keep working, so
an acknowledged record would be committed) and a second lot arrives. The output send fails (producer
timeout 2 s), the in-place retries run out (bound 3 s), the DLQ write fails the same way, and the
worker must stop with exit code 75 instead of acknowledging the record. (A full `cut` is no test of
this: the worker then mostly waits for a fetch with nothing in flight, and nothing can be committed
anyway.) Checked:
every input below the group's committed offset has its state on `orders.state` (nothing committed
past an unapplied record); after the fault heals and the worker is started again, every order is
applied or parked.

Inventory: once a first lot of reservations is applied and committed, the broker stops taking the
worker's table changelog writes only (its AtpLevel outputs still go out) and a second lot arrives.
The refused changelog record latches the worker's producer and the worker must stop with exit code
76 before any commit (librdkafka gives up on the record after `message.timeout.ms`, 30 s). After a
restart and a third lot, no SKU's ATP state went back: every (SKU, version) on `inventory.atp`
carries one set of figures (a rolled-back state would re-use versions for other figures), and each
SKU ends at the version and reservation count of all its events.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message

from shopstream.config import Settings, load_settings
from shopstream.halt import EXIT_DELIVERY_FAILED, EXIT_PARK_FAILED
from shopstream.schemas.models import AtpLevel, EventMeta, ReservationChanged
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.broker_proxy import BrokerProxy, proxied_tansu
from tests.integration.test_orders_failures import _event
from tests.kafka_read import committed_offsets, latest_order_states, read_all
from tests.kafka_write import make_producer
from tests.workers import start_worker, stop, wait_for

pytestmark = pytest.mark.broker

ORDERS = 120
FIRST_LOT = 40
# Short enough that a cut of a few seconds exhausts them; the defaults (30 s, 120 s) would make the
# test wait minutes for the same path.
FAULT_ENV = {"KAFKA_PRODUCER_TIMEOUT_S": "2", "SHOPSTREAM_RETRY_MAX_ELAPSED_S": "3"}


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[BrokerProxy]:
    with proxied_tansu(tmp_path / "tansu.log") as proxy:
        yield proxy


@pytest.fixture
def faulty_settings(proxy: BrokerProxy, registry_url: str, redis_url: str, redis_prefix: str,
                    unique: str) -> Settings:
    """Settings whose broker is reachable only through the proxy."""
    return load_settings(kafka_bootstrap_servers=proxy.bootstrap, schema_registry_url=registry_url,
                         redis_url=redis_url, topic_prefix=f"t{unique}.", redis_key_prefix=redis_prefix,
                         kafka_session_timeout_s=6)


def _committed(settings: Settings, group: str, topic: str) -> dict[int, int]:
    return committed_offsets(settings.kafka_bootstrap_servers, group, topic)


def test_orders_worker_never_commits_past_a_record_it_could_neither_apply_nor_park(
        faulty_settings: Settings, proxy: BrokerProxy, tmp_path: Path) -> None:
    settings = faulty_settings
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    topic = settings.topic("shop.orders")
    where: dict[tuple[int, int], str] = {}  # (partition, offset) -> order id, from the delivery reports

    def delivered(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        where[(msg.partition() or 0, msg.offset() or 0)] = (msg.key() or b"").decode()

    producer = make_producer(settings)  # librdkafka's client id: its writes pass `fail_produce("shopstream-orders")`
    ids = [str(7_300_000 + i) for i in range(ORDERS)]

    def produce(lot: list[str]) -> None:
        for order_id in lot:
            producer.produce(topic, key=order_id.encode(),
                             value=serde.encode(topic, _event(order_id, "orders/create")), on_delivery=delivered)
        assert producer.flush(30) == 0

    def states() -> set[str]:
        return set(latest_order_states(settings.kafka_bootstrap_servers, settings.topic("orders.state"), serde))

    first, second = ids[:FIRST_LOT], ids[FIRST_LOT:]
    produce(first)
    group = settings.topic("orders")
    log = tmp_path / "worker.log"
    worker = start_worker("orders", settings, log, **FAULT_ENV)
    restarted: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: set(first) <= states(), 120, log, "the first lot applied")
        wait_for(lambda: sum(max(0, o) for o in _committed(settings, group, topic).values()) == len(first),
                 30, log, "the first lot committed")
        proxy.fail_produce("shopstream-orders")  # the worker's outputs and DLQ writes now fail
        produce(second)
        code = wait_for(lambda: worker.poll(), 90, log, "the worker to stop on the failed park")
        assert code == EXIT_PARK_FAILED, log.read_text(errors="replace")[-3000:]
        proxy.heal()

        # Nothing committed past an unapplied record: every input below each committed offset has its state.
        applied = states()
        committed = _committed(settings, group, topic)
        below = {order_id for (partition, offset), order_id in where.items() if offset < committed[partition]}
        assert len(below) >= len(first), committed
        assert below <= applied, sorted(below - applied)[:10]

        restarted = start_worker("orders", settings, log, **FAULT_ENV)

        dlq = settings.topic("shop.orders.dlq")

        missing: set[str] = set()

        def settled() -> bool:
            parked = {(m.key() or b"").decode()
                      for m in read_all(settings.kafka_bootstrap_servers, dlq, partitions=1, idle_s=0.3)}
            missing.clear()
            missing.update(set(ids) - states() - parked)
            return not missing

        try:
            wait_for(settled, 120, log, "every order applied or parked after the fault healed")
        except AssertionError as exc:
            # Committed past them: the restarted worker acknowledged them without output; not: never delivered.
            raise AssertionError(f"{len(missing)} orders neither applied nor parked, e.g. {sorted(missing)[:5]} "
                                 f"at {sorted(k for k, v in where.items() if v in missing)[:5]}; committed now "
                                 f"{_committed(settings, group, topic)}, at the halt {committed}") from exc
    finally:
        stop(worker)
        if restarted is not None:
            stop(restarted)


SKUS = 8
LOT = 3  # reservations per SKU and lot


def _reservation(sku: str, n: int) -> ReservationChanged:
    at = datetime(2026, 11, 2, 8, 0, tzinfo=UTC) + timedelta(seconds=n)
    return ReservationChanged(
        meta=EventMeta(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sku}/{n}")), event_type="ReservationChanged",
                       occurred_at=at, recorded_at=at, source="shopstream.orders"),
        sku=sku, order_id=f"O-{sku}-{n}", action="reserve", quantity=1)


def test_inventory_worker_halts_on_a_refused_changelog_record_and_no_version_goes_back(
        faulty_settings: Settings, proxy: BrokerProxy, tmp_path: Path) -> None:
    settings = faulty_settings
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    topic = settings.topic("inventory.reservations")
    skus = [f"F-{i}" for i in range(SKUS)]
    producer = make_producer(settings)

    def produce(lot: int) -> None:
        for sku in skus:
            for n in range(lot * LOT, (lot + 1) * LOT):
                producer.produce(topic, key=sku.encode(), value=serde.encode(topic, _reservation(sku, n)))
        assert producer.flush(30) == 0

    def levels() -> list[AtpLevel]:
        out = []
        for msg in read_all(settings.kafka_bootstrap_servers, settings.topic("inventory.atp"), idle_s=0.3):
            level = serde.decode(msg.value())
            assert isinstance(level, AtpLevel)
            out.append(level)
        return out

    latest: dict[str, int] = {}

    def at_version(version: int) -> bool:
        latest.clear()
        for level in levels():
            latest[level.sku] = max(latest.get(level.sku, 0), level.version)
        return all(latest.get(sku) == version for sku in skus)

    group, log = settings.topic("inventory"), tmp_path / "worker.log"
    produce(0)
    worker = start_worker("inventory", settings, log)
    restarted: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: at_version(LOT), 120, log, "the first lot applied")
        wait_for(lambda: sum(max(0, o) for o in _committed(settings, group, topic).values()) == SKUS * LOT,
                 30, log, "the first lot committed")
        proxy.fail_produce(topic="-atp-changelog")  # outputs pass, the table's changelog records do not
        produce(1)
        code = wait_for(lambda: worker.poll(), 120, log, "the worker to stop on the refused changelog record")
        assert code == EXIT_DELIVERY_FAILED, log.read_text(errors="replace")[-3000:]
        proxy.heal()
        restarted = start_worker("inventory", settings, log)
        produce(2)
        try:
            wait_for(lambda: at_version(3 * LOT), 120, log, "every lot applied after the restart")
        except AssertionError as exc:
            raise AssertionError(f"latest versions {latest}, committed {_committed(settings, group, topic)}") from exc

        figures: dict[tuple[str, int], set[tuple[int, int]]] = {}
        for level in levels():
            figures.setdefault((level.sku, level.version), set()).add((level.reserved, level.available))
        rolled_back = {key: seen for key, seen in figures.items() if len(seen) > 1}
        assert not rolled_back, rolled_back
        for sku in skus:  # every reservation counted once, at the version of all of them
            assert {reserved for reserved, _ in figures[(sku, 3 * LOT)]} == {3 * LOT}, figures[(sku, 3 * LOT)]
    finally:
        stop(worker)
        if restarted is not None:
            stop(restarted)
