"""The broker restarts mid-stream: every processor ends in the state its oracle computes (issue 10).

One durable broker per module (`durable_broker`: Tansu on S3 storage in a moto_server, conftest.py)
is SIGKILLed and started again on the same port while a stream of events is being produced and the
real worker subprocess is working through it; the feed goes on across the restart. The inputs and
oracles are the SIGKILL crash tests' (test_orders_crash.py, test_inventory_crash.py,
test_order_reservations_crash.py, test_shop_sync.py), scaled down: every record is an S3 object in
moto, so the durable broker takes ~150 single-record batches/s where the in-memory one takes thousands.

The tests are black-box: records go in on topics, results are read from topics and Redis, workers
run as `shopstream worker …` processes (tests/workers.py). Each test also requires that its worker
rode out the restart in the same process (a processor that exits on a broker blip would crash-loop
its pod at every broker roll), and prints how long the restart and the catch-up took.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from subprocess import STDOUT, Popen
from typing import Any

import pytest
import redis

from shopstream.config import Settings
from shopstream.dev.broker import DurableBroker
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import latest_order_states, read_all
from tests.kafka_write import Feed, Record, produce_all
from tests.workers import start_worker, stop

pytestmark = [pytest.mark.broker, pytest.mark.timeout(600)]

def restart_mid_feed(broker: DurableBroker, feed: Feed) -> float:
    """Start the feed, SIGKILL and restart the broker once half of it is out; returns the restart's seconds."""
    feed.start()
    while feed.sent < len(feed.records) // 2:
        time.sleep(0.05)
    took = broker.restart()
    print(f"broker restart (SIGKILL → answering metadata on the same port): {took:.2f} s")
    return took


def converge(check: Callable[[], Any], worker: Popen[bytes], log: Path, what: str, timeout_s: float = 240) -> float:
    """Poll `check` until truthy while the worker stays alive (the same process throughout); returns the seconds."""
    began = time.monotonic()
    while not check():
        assert worker.poll() is None, f"the worker exited ({worker.returncode}) after the broker restart:\n" \
                                      + log.read_text(errors="replace")[-4000:]
        assert time.monotonic() - began < timeout_s, f"timed out waiting for {what}:\n" \
                                                     + log.read_text(errors="replace")[-4000:]
        time.sleep(2)
    took = time.monotonic() - began
    print(f"{what}: after {took:.1f} s")
    return took


@pytest.fixture
def settings(durable_settings: Settings) -> Settings:
    apply_topology(load_topology(), durable_settings.kafka_client_config(), prefix=durable_settings.topic_prefix)
    return durable_settings


@pytest.fixture
def serde(settings: Settings) -> AvroSerde:
    return AvroSerde(make_registry_client(settings.schema_registry_url))


# --- orders worker ----------------------------------------------------------------------------------

def test_orders_worker_rides_out_a_broker_restart(settings: Settings, serde: AvroSerde,
                                                  durable_broker: DurableBroker, tmp_path: Path) -> None:
    from tests.orders_feed import TOPIC_OF, essence, lifecycle_events, oracle

    events = lifecycle_events(300)
    expected = oracle(events)
    records = []
    for event in events:
        topic = settings.topic(TOPIC_OF.get(type(event).__name__, "shop.orders"))
        records.append((topic, event.order_id.encode(), serde.encode(topic, event)))
    third = len(records) // 3
    produce_all(settings, records[:third])

    def latest() -> dict[str, Any]:
        return latest_order_states(settings.kafka_bootstrap_servers, settings.topic("orders.state"), serde)

    log = tmp_path / "orders.log"
    worker = start_worker("orders", settings, log)
    try:
        converge(lambda: len(latest()) >= 20, worker, log, "the first order states")
        feed = Feed(settings, records[third:], seconds=12)
        restart_mid_feed(durable_broker, feed)
        feed.join()  # half of these reached the broker only after the restart: the worker must read them

        def settled() -> bool:
            got = latest()
            return len(got) == len(expected) and all(essence(got[k]) == essence(v) for k, v in expected.items())

        converge(settled, worker, log, "every order equal to the oracle")
    finally:
        stop(worker)


# --- inventory worker -------------------------------------------------------------------------------

def test_inventory_worker_rides_out_a_broker_restart(settings: Settings, serde: AvroSerde,
                                                     durable_broker: DurableBroker, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from shopstream.connectors.ingest import ingest_erp_stock
    from shopstream.processors.inventory.config import load_inventory_config
    from shopstream.processors.inventory.figures import levels
    from tests import stock_feed

    monkeypatch.setattr(stock_feed, "SKUS", 400)  # the crash test's generators, scaled to the S3 broker's pace
    monkeypatch.setattr(stock_feed, "ORDERS", 150)
    reservations = stock_feed.reservations(random.Random(7))
    as_ofs = [stock_feed.T0, stock_feed.T0 + timedelta(minutes=30), stock_feed.T0 + timedelta(minutes=60)]
    expected = stock_feed.oracle(reservations, as_ofs)
    config = load_inventory_config()
    want = {sku: levels(state, config.policy(sku).online_locations) for sku, state in expected.items()}
    topic = settings.topic("inventory.reservations")
    records = [(topic, ev.sku.encode(), serde.encode(topic, ev)) for ev in reservations]
    half = len(records) // 2

    log = tmp_path / "inventory.log"
    worker = start_worker("inventory", settings, log)
    try:
        assert ingest_erp_stock(settings, stock_feed.export(0), file_name="first.csv", as_of=as_ofs[0]).published == 400
        produce_all(settings, records[:half])
        converge(lambda: len(stock_feed.latest_levels(settings, serde)) >= 100, worker, log, "the first ATP levels")
        # The worker is mid-way through the first snapshot or the second when the broker goes.
        second = ingest_erp_stock(settings, stock_feed.export(1), file_name="second.csv", as_of=as_ofs[1])
        assert second.published == 400
        feed = Feed(settings, records[half:], seconds=10)
        restart_mid_feed(durable_broker, feed)
        feed.join()
        report = ingest_erp_stock(settings, stock_feed.export(2), file_name="third.csv", as_of=as_ofs[2])
        assert (report.published, report.unchanged) == (400, 400)

        def settled() -> bool:
            got = stock_feed.latest_levels(settings, serde)
            return len(got) == len(want) and all(
                (got[k].on_hand, got[k].reserved, got[k].safety_stock, got[k].incoming, got[k].available)
                == (w.on_hand, w.reserved, w.safety_stock, w.incoming, w.available) for k, w in want.items())

        converge(settled, worker, log, "every SKU's ATP equal to the oracle")
    finally:
        stop(worker)


# --- shop-sync worker -------------------------------------------------------------------------------

def test_shop_sync_rides_out_a_broker_restart(settings: Settings, serde: AvroSerde,
                                              durable_broker: DurableBroker, tmp_path: Path) -> None:
    from shopstream.schemas.models import SyncShopStock
    from tests.integration.test_shop_sync import level

    rng = random.Random(5)
    skus = [f"R-{i:03d}" for i in range(120)]
    versions = {sku: 0 for sku in skus}
    levels = []
    for _ in range(5 * len(skus)):  # each SKU moves ~5 times, SKUs interleaved, versions rising per SKU
        sku = rng.choice(skus)
        versions[sku] += 1
        levels.append(level(sku, rng.randint(-5, 30), versions[sku]))
    final = {lv.sku: max(0, lv.available) for lv in levels}  # the latest level per SKU comes last
    topic = settings.topic("inventory.atp")
    records = [(topic, lv.sku.encode(), serde.encode(topic, lv)) for lv in levels]
    fifth = len(records) // 5
    produce_all(settings, records[:fifth])

    def latest_commands() -> dict[str, SyncShopStock]:
        out: dict[str, SyncShopStock] = {}
        for msg in read_all(settings.kafka_bootstrap_servers, settings.topic("commands.shop"), idle_s=0.5):
            cmd = serde.decode(msg.value())
            assert isinstance(cmd, SyncShopStock) and msg.key() == cmd.sku.encode()
            if cmd.sku not in out or (cmd.atp_version or 0) >= (out[cmd.sku].atp_version or 0):
                out[cmd.sku] = cmd
        return out

    log = tmp_path / "shop-sync.log"
    worker = start_worker("shop-sync", settings, log, SHOPSTREAM_SHOP_SYNC_WINDOW_MS="1000")
    try:
        converge(lambda: len(latest_commands()) >= 20, worker, log, "the first shop commands")
        feed = Feed(settings, records[fifth:], seconds=10)
        restart_mid_feed(durable_broker, feed)
        feed.join()

        def settled() -> bool:
            got = latest_commands()
            return set(got) == set(final) and all(got[sku].available == final[sku] for sku in final)

        converge(settled, worker, log, "every SKU's latest visible figure commanded")
    finally:
        stop(worker)
    assert worker.returncode == 0, log.read_text(errors="replace")[-3000:]


# --- views sink -------------------------------------------------------------------------------------

def test_views_sink_rides_out_a_broker_restart(settings: Settings, serde: AvroSerde, redis_url: str,
                                               durable_broker: DurableBroker, tmp_path: Path) -> None:
    from tests.integration.test_order_view import make_state
    from tests.integration.test_shop_sync import level

    rng = random.Random(3)
    states, atp = settings.topic("orders.state"), settings.topic("inventory.atp")
    records: list[Record] = []
    want: dict[str, int] = {}  # Redis key -> the version its document must end at
    # Sized to the durable broker: every record is an S3 object in moto, which served 60-130 requests/s
    # here, and a record costs a batch PUT, a conditional watermark PUT and the sink's listings. 250 keys
    # (940 records fed in 10 s) outran it by a third: the feed's last records timed out after 30 s.
    for n in range(100):
        order_id, sku = f"V-{n}", f"VS-{n}"
        for version in range(1, rng.randint(2, 5)):
            records.append((states, order_id.encode(), serde.encode(states, make_state(order_id, version))))
            want[f"{settings.redis_key_prefix}order:{order_id}"] = version
        for version in range(1, rng.randint(2, 5)):
            records.append((atp, sku.encode(), serde.encode(atp, level(sku, rng.randint(-3, 50), version))))
            want[f"{settings.redis_key_prefix}atp:{sku}"] = version
    rng.shuffle(records)  # keys interleave; one key's versions may arrive out of order: the guard keeps the newest
    quarter = len(records) // 4
    produce_all(settings, records[:quarter])
    client = redis.Redis.from_url(redis_url)

    def stored() -> dict[str, int]:
        keys = list(want)
        docs = client.mget(keys)
        return {k: json.loads(d)["version"] for k, d in zip(keys, docs, strict=True) if d is not None}

    log = tmp_path / "views.log"
    worker = start_worker("views", settings, log)
    try:
        converge(lambda: len(stored()) >= 20, worker, log, "the first view documents")
        feed = Feed(settings, records[quarter:], seconds=15)
        restart_mid_feed(durable_broker, feed)
        feed.join()
        converge(lambda: stored() == want, worker, log, "every view document at its newest version")
    finally:
        stop(worker)
        client.close()


# --- connectors service -----------------------------------------------------------------------------

def test_connectors_service_rides_out_a_broker_restart(settings: Settings, durable_broker: DurableBroker,
                                                       tmp_path: Path) -> None:
    """Webhooks keep coming across the restart and are retried like Shopify does on a non-2xx answer:
    every one is acknowledged in the end, and every acknowledged order is on `shop.orders`."""
    from shopstream.children import spawn
    from shopstream.dev.ports import free_port, wait_for_port
    from shopstream.schemas.models import OrderPlaced
    from tests import processes
    from tests.integration.test_webhook_front import SECRET, shopify_request

    port, log = free_port(), tmp_path / "connectors.log"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "SCHEMA_REGISTRY_URL": settings.schema_registry_url, "SHOPSTREAM_TOPIC_PREFIX": settings.topic_prefix,
           "REDIS_URL": settings.redis_url, "SHOPSTREAM_REDIS_PREFIX": settings.redis_key_prefix,
           "SHOPSTREAM_CONNECTORS_PORT": str(port), "SHOPSTREAM_SHOPIFY_SECRET": SECRET,
           "SHOPSTREAM_LOG_LEVEL": "INFO",
           "KAFKA_ENABLE_IDEMPOTENCE": str(settings.kafka_idempotence).lower()}
    processes.track("connectors serve", log)
    with open(log, "ab") as out:
        service = spawn([sys.executable, "-m", "shopstream.cli", "connectors", "serve"], env=env, stdout=out,
                        stderr=STDOUT)
    ids = [8_100_000 + n for n in range(150)]
    answers: dict[int, list[int]] = {order_id: [] for order_id in ids}

    def post(order_id: int) -> None:
        body, headers = shopify_request(order_id, f"restart-{order_id}")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # Shopify retries a delivery that was not acknowledged
            request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/shopify", body, headers)
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    answers[order_id].append(resp.status)
            except urllib.error.HTTPError as exc:
                answers[order_id].append(exc.code)
            except OSError:
                answers[order_id].append(0)
            if answers[order_id][-1] == 200:
                return
            time.sleep(0.5)

    def poster() -> None:
        for order_id in ids:
            threading.Thread(target=post, args=(order_id,), daemon=True).start()
            time.sleep(10 / len(ids))

    try:
        assert wait_for_port("127.0.0.1", port, 60), log.read_text(errors="replace")[-3000:]
        sender = threading.Thread(target=poster, daemon=True)
        sender.start()
        time.sleep(5)
        print(f"broker restart (SIGKILL → answering metadata on the same port): {durable_broker.restart():.2f} s")
        sender.join()

        def all_acknowledged() -> bool:
            return all(codes and codes[-1] == 200 for codes in answers.values())

        converge(all_acknowledged, service, log, "every webhook acknowledged", timeout_s=120)
        serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        published = {str(e.order_id) for e in (serde.decode(m.value()) for m in
                                                read_all(settings.kafka_bootstrap_servers,
                                                         settings.topic("shop.orders"), idle_s=1.0))
                     if isinstance(e, OrderPlaced)}
        assert published == {str(i) for i in ids}
        retried = {i: codes for i, codes in answers.items() if len(codes) > 1}
        print(f"{len(retried)} webhooks needed a retry, answers e.g. {list(retried.items())[:3]}")
    finally:
        stop(service)
