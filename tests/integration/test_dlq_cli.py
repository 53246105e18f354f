"""`shopstream dlq list|show|replay` in-process against the real broker and the embedded registry.

Each test gets its own topic prefix (the `settings` fixture), creates the whole topology with
`apply`, parks records through the one DLQ writer and then runs `shopstream.cli.main([...])` with
the environment pointing at that broker, registry and prefix.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from confluent_kafka import Message
from prometheus_client import REGISTRY

from shopstream.cli import main
from shopstream.config import Settings
from shopstream.dev.shopify_samples import shopify_order
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure, fingerprint
from shopstream.kafka import AsyncProducer
from shopstream.ops.dlq_filters import (
    DLQ_PREFIX,
    REPLAY_AT,
    REPLAY_COUNT,
    REPLAY_FROM_OFFSET,
    REPLAY_FROM_PARTITION,
    REPLAY_FROM_TOPIC,
)
from shopstream.schemas.models import OrderPlaced
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import Topology, apply, load_topology
from tests.kafka_read import read_all

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

SECRET = "dlq-cli-test"


class HandlerBug(Exception):
    pass


def handler_bug(order_id: str) -> None:
    raise HandlerBug(f"order {order_id} has no lines")


def raised(fn: Callable[..., object], *args: object) -> BaseException:
    try:
        fn(*args)
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


def order_placed(order_id: int) -> OrderPlaced:
    from shopstream.connectors.shopify import ShopifyConnector, sign

    body = json.dumps(shopify_order(order_id, created_at=datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
                                    lines=[("TSHIRT-BLK-M", 2, "19.90")])).encode()
    headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": sign(SECRET, body),
               "X-Shopify-Webhook-Id": f"wh-{order_id}"}
    (out,) = ShopifyConnector(SECRET).translate(headers, body, datetime(2026, 11, 23, 9, 30, 5, tzinfo=UTC))
    assert isinstance(out.record, OrderPlaced)
    return out.record


@dataclass
class World:
    settings: Settings
    orders: str  # physical shop.orders
    orders_dlq: str
    connectors_dlq: str
    log: str
    avro_value: bytes
    fp_bug: str  # fingerprint of the HandlerBug record (offset 0)
    fp_serde: str  # fingerprint of the two undecodable records (offsets 1 and 2)

    def read(self, topic: str, partitions: int = 4) -> list[Message]:
        return read_all(self.settings.kafka_bootstrap_servers, topic, partitions=partitions, idle_s=0.5)


def park(settings: Settings, items: list[tuple[FailedRecord, Failure, str | None]]) -> None:
    async def run() -> None:
        producer = AsyncProducer(settings)
        try:
            writer = DeadLetterWriter(producer, settings.topic("orders-processor"),
                                      load_topology().dlq_routes(settings.topic_prefix))
            for record, failure, to_topic in items:
                await writer.park(record, failure, to_topic)
        finally:
            producer.close()

    asyncio.run(run())


@pytest.fixture
def world(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> World:
    s = settings
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", s.kafka_bootstrap_servers)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", s.schema_registry_url)
    monkeypatch.setenv("SHOPSTREAM_TOPIC_PREFIX", s.topic_prefix)
    report = apply(load_topology(), s.kafka_client_config(), prefix=s.topic_prefix)
    assert report.failed == {} and report.exit_code == 0

    orders = s.topic("shop.orders")
    serde = AvroSerde(make_registry_client(s.schema_registry_url))
    avro_value = serde.encode(orders, order_placed(1001))
    bug = raised(handler_bug, "1001")
    not_avro = raised(serde.decode, b'{"id": 1002')
    not_avro_bin = raised(serde.decode, b"\xff\xfe\x00garbage")
    json_error = raised(json.loads, '{"id": 1')
    assert fingerprint(not_avro) == fingerprint(not_avro_bin)
    original = [("trace", b"t-1"), ("shopstream.source", b"shopify")]
    park(s, [
        (FailedRecord(orders, b"order-1", avro_value, original, partition=1, offset=10, timestamp_ms=1),
         Failure(bug, "process", attempts=1), None),
        (FailedRecord(orders, b"order-2", b'{"id": 1002', [("trace", b"t-2")], partition=2, offset=11),
         Failure(not_avro, "deserialize"), None),
        (FailedRecord(orders, b"order-3", b"\xff\xfe\x00garbage", [], partition=3, offset=12),
         Failure(not_avro_bin, "deserialize"), None),
        (FailedRecord("webhook:shopify", b"shopify", b'{"id": 1', [("X-Shopify-Topic", b"orders/create")]),
         Failure(json_error, "connector"), s.topic("connectors.dlq")),
    ])
    return World(settings=s, orders=orders, orders_dlq=s.topic("shop.orders.dlq"),
                 connectors_dlq=s.topic("connectors.dlq"), log=s.topic("dlq.replay-log"), avro_value=avro_value,
                 fp_bug=fingerprint(bug), fp_serde=fingerprint(not_avro))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["dlq", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def summary(out: str) -> str:
    return out.strip().splitlines()[-1]


def headers_of(msg: Message) -> dict[str, bytes | None]:
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {k: v.encode() if isinstance(v, str) else v for k, v in pairs}


# ---------------------------------------------------------------------------------------------- list


def test_list_counts_ages_and_groups(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["DLQ", "TOPIC", "RECORDS", "OLDEST", "NEWEST"]
    row = next(line for line in lines if line.startswith(world.orders_dlq + " "))
    assert row.split()[1] == "3"
    assert next(line for line in lines if line.startswith(world.connectors_dlq + " ")).split()[1] == "1"
    assert next(line for line in lines if line.startswith(world.settings.topic("payments.dlq") + " ")).split()[1:] \
        == ["0", "-", "-"]
    assert any(f"2  {world.fp_serde}  NotAvroFramed" in line for line in lines)
    assert any(f"1  {world.fp_bug}  HandlerBug" in line and "order 1001 has no lines" in line for line in lines)
    assert any("2  shopstream.serde.NotAvroFramed" in line for line in lines)
    assert summary(out).endswith(", 4 records")
    assert REGISTRY.get_sample_value("shopstream_dlq_backlog", {"dlq_topic": world.orders_dlq}) == 3
    assert REGISTRY.get_sample_value("shopstream_dlq_backlog", {"dlq_topic": world.connectors_dlq}) == 1

    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["total_records"] == 4
    by_topic = {t["topic"]: t for t in doc["topics"]}
    assert set(by_topic) == {t.name for t in load_topology().topics if t.kind == "dlq"}
    orders = by_topic["shop.orders.dlq"]
    assert orders["physical_topic"] == world.orders_dlq and orders["records"] == 3 and orders["present"]
    assert {g["fingerprint"]: g["count"] for g in orders["by_fingerprint"]} == {world.fp_serde: 2, world.fp_bug: 1}
    assert {g["error_class"]: g["count"] for g in orders["by_error_class"]} == {
        "shopstream.serde.NotAvroFramed": 2, f"{__name__}.HandlerBug": 1}
    assert orders["by_fingerprint"][0]["example_message"].startswith("first byte is")
    assert 0 <= orders["newest_age_s"] <= orders["oldest_age_s"] < 120
    assert by_topic["payments.dlq"]["records"] == 0 and by_topic["payments.dlq"]["oldest"] is None


# ---------------------------------------------------------------------------------------------- show


def test_show_decodes_avro_text_and_hex(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "shop.orders.dlq")
    assert code == 0, out
    blocks = out.split("== ")[1:]
    assert len(blocks) == 3
    avro, text, binary = blocks
    assert avro.startswith(f"{world.orders_dlq}  partition 0  offset 0")
    assert "value        avro io.shopstream.events.OrderPlaced (schema id" in avro or \
        "value        avro OrderPlaced" in avro
    assert '"order_id"' in avro and "1001" in avro and "TSHIRT-BLK-M" in avro
    assert f"error        {__name__}.HandlerBug: order 1001 has no lines" in avro
    assert f"original     {world.orders} [1] @ 10" in avro
    assert "key          order-1" in avro
    assert "  trace: t-1" in avro and f"  {DLQ_PREFIX}error.fingerprint: {world.fp_bug}" in avro
    assert f"  {DLQ_PREFIX}error.stacktrace: Traceback" in avro
    assert "value        text (UTF-8)" in text and '  {"id": 1002' in text
    assert "value        hex (not UTF-8)" in binary and b"\xff\xfe\x00garbage".hex() in binary
    assert summary(out) == f"3 record(s) shown from {world.orders_dlq}"


def test_show_selects_by_offset_fingerprint_time_and_limit(world: World,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "shop.orders.dlq", "--offset", "1", "--json")
    assert code == 0
    doc = json.loads(out)
    assert [r["offset"] for r in doc["records"]] == [1]
    rec = doc["records"][0]
    assert rec["key"] == "order-2" and rec["value"] == {"format": "text", "data": '{"id": 1002'}
    assert rec["context"]["fingerprint"] == world.fp_serde and rec["context"]["original_offset"] == 11
    assert ["trace", "t-2"] in rec["headers"]

    doc = json.loads(run(capsys, "show", "shop.orders.dlq", "--offset", "0", "--json")[1])
    value = doc["records"][0]["value"]
    assert value["format"] == "avro" and value["record"].endswith("OrderPlaced")
    assert value["data"]["order_id"] == "1001" or "1001" in json.dumps(value["data"])

    doc = json.loads(run(capsys, "show", "shop.orders.dlq", "--fingerprint", world.fp_serde, "--json")[1])
    assert [r["offset"] for r in doc["records"]] == [1, 2]
    assert doc["records"][1]["value"] == {"format": "hex", "data": b"\xff\xfe\x00garbage".hex()}

    doc = json.loads(run(capsys, "show", "shop.orders.dlq", "--limit", "2", "--json")[1])
    assert [r["offset"] for r in doc["records"]] == [0, 1] and doc["truncated"] is True
    code, out, _ = run(capsys, "show", "shop.orders.dlq", "--limit", "1")
    assert code == 0 and "limit 1 reached" in summary(out)

    doc = json.loads(run(capsys, "show", "shop.orders.dlq", "--since", "1h", "--json")[1])
    assert len(doc["records"]) == 3
    doc = json.loads(run(capsys, "show", "shop.orders.dlq", "--until", "1h", "--json")[1])
    assert doc["records"] == []
    future = datetime.fromtimestamp(time.time() + 3600, tz=UTC).isoformat()
    doc = json.loads(run(capsys, "show", "shop.orders.dlq", "--since", "2h", "--until", future, "--json")[1])
    assert len(doc["records"]) == 3
    doc = json.loads(run(capsys, "show", "connectors.dlq", "--json")[1])
    assert doc["records"][0]["context"]["original_topic"] == "webhook:shopify"


# -------------------------------------------------------------------------------------------- replay


def test_replay_dry_run_then_send_then_nothing_then_force(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "replay", "shop.orders.dlq", "--dry-run")
    assert code == 0, out
    assert sum(line.startswith("would send") for line in out.splitlines()) == 3
    assert summary(out) == (f"dry run: replay of {world.orders_dlq}: selected 3, would send 3, skipped 0, failed 0 "
                            "(dry run: nothing sent, nothing recorded)")
    assert world.read(world.orders) == []
    assert world.read(world.log, partitions=1) == []

    code, out, _ = run(capsys, "replay", "shop.orders.dlq")
    assert code == 0, out
    assert summary(out) == f"replay of {world.orders_dlq}: selected 3, sent 3, skipped 0, failed 0"
    sent = world.read(world.orders)
    assert sorted(m.key() for m in sent) == [b"order-1", b"order-2", b"order-3"]
    by_key = {m.key(): m for m in sent}
    first = by_key[b"order-1"]
    assert first.value() == world.avro_value
    hs = list(first.headers() or [])
    assert hs[:2] == [("trace", b"t-1"), ("shopstream.source", b"shopify")]  # original headers, in order
    assert not any(k.startswith(DLQ_PREFIX) for k, _ in hs)
    h = headers_of(first)
    assert h[REPLAY_FROM_TOPIC] == world.orders_dlq.encode() and h[REPLAY_FROM_PARTITION] == b"0"
    assert h[REPLAY_FROM_OFFSET] == b"0" and h[REPLAY_COUNT] == b"1"
    assert abs(int(h[REPLAY_AT] or b"0") - time.time() * 1000) < 60_000
    assert by_key[b"order-3"].value() == b"\xff\xfe\x00garbage"
    log = {m.key(): json.loads(m.value() or b"") for m in world.read(world.log, partitions=1)}
    assert set(log) == {f"{world.orders_dlq}:0:{o}".encode() for o in range(3)}
    entry = log[f"{world.orders_dlq}:0:0".encode()]
    assert entry["sent_to"] == world.orders and entry["replay_count"] == 1 and entry["fingerprint"] == world.fp_bug
    assert entry["at"].endswith("Z")

    code, out, _ = run(capsys, "replay", "shop.orders.dlq")
    assert code == 0
    assert summary(out) == (f"replay of {world.orders_dlq}: selected 3, sent 0, "
                            "skipped 3 (already replayed: 3), failed 0")
    assert len(world.read(world.orders)) == 3

    code, out, _ = run(capsys, "replay", "shop.orders.dlq", "--force", "--key", "order-2")
    assert code == 0
    assert summary(out) == f"replay of {world.orders_dlq}: selected 1, sent 1, skipped 0, failed 0"
    again = [m for m in world.read(world.orders) if m.key() == b"order-2"]
    assert len(again) == 2

    # The replayed order-1 fails again: parked with its replay count, it is a new dead letter (offset 3).
    park(world.settings, [(FailedRecord(world.orders, first.key(), first.value(), list(first.headers() or []),
                                        partition=first.partition() or 0, offset=first.offset() or 0),
                           Failure(raised(handler_bug, "1001"), "process"), None)])
    code, out, _ = run(capsys, "replay", "shop.orders.dlq", "--max-replays", "1")
    assert code == 0
    assert f"skip         {world.orders_dlq}:0:3  max replays reached (1 of --max-replays 1)" in out
    assert summary(out).endswith("skipped 4 (already replayed: 3, max replays reached: 1), failed 0")
    code, out, _ = run(capsys, "replay", "shop.orders.dlq", "--offset-from", "3")  # default max 3
    assert code == 0 and ", sent 1," in summary(out)
    twice = [m for m in world.read(world.orders) if m.key() == b"order-1"]
    assert sorted(headers_of(m)[REPLAY_COUNT] or b"" for m in twice) == [b"1", b"2"]
    assert headers_of(max(twice, key=lambda m: int(headers_of(m)[REPLAY_COUNT] or b"0")))[REPLAY_FROM_OFFSET] == b"3"


def test_replay_to_override_and_non_topic_originals(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "replay", "connectors.dlq")
    assert code == 0
    assert "re-deliver from the source" in out
    assert summary(out) == (f"replay of {world.connectors_dlq}: selected 1, sent 0, skipped 1 (original is not a "
                            "Kafka topic: `dlq redrive` it, or re-deliver from the source: 1), failed 0")
    code, out, _ = run(capsys, "replay", "connectors.dlq", "--to", "shop.orders")
    assert code == 0, out
    assert ", sent 1," in summary(out)
    (msg,) = world.read(world.orders)
    assert msg.key() == b"shopify" and msg.value() == b'{"id": 1'
    assert headers_of(msg)["X-Shopify-Topic"] == b"orders/create"

    # --to for a DLQ record with a Kafka original goes to --to, not the original.
    code, out, _ = run(capsys, "replay", "shop.orders.dlq", "--offset-from", "0", "--offset-to", "0",
                       "--to", "review.queue")
    assert code == 0 and ", sent 1," in summary(out)
    (moved,) = world.read(world.settings.topic("review.queue"))
    assert moved.key() == b"order-1"
    assert [m.key() for m in world.read(world.orders)] == [b"shopify"]


def test_replay_filters_limit_and_rate(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    def dry(*args: str) -> str:
        code, out, _ = run(capsys, "replay", "shop.orders.dlq", "--dry-run", *args)
        assert code == 0, out
        return summary(out)

    assert "selected 2, would send 2," in dry("--fingerprint", world.fp_serde)
    assert "selected 2, would send 2," in dry("--error-class", "NotAvroFramed")
    assert "selected 1, would send 1," in dry("--error-class", f"{__name__}.HandlerBug")
    assert "selected 0," in dry("--error-class", "Framed")
    assert "selected 1, would send 1," in dry("--key", "order-3")
    assert "selected 2, would send 2," in dry("--offset-from", "1", "--offset-to", "2")
    assert "selected 1, would send 1," in dry("--offset-from", "1", "--offset-to", "2", "--key", "order-2")
    assert "selected 0," in dry("--until", "1h")
    assert "selected 3, would send 3," in dry("--since", "30m")
    assert "selected 1, would send 1," in dry("--limit", "1")
    assert world.read(world.orders) == []

    code, out, _ = run(capsys, "replay", "shop.orders.dlq", "--limit", "1")
    assert code == 0 and summary(out).endswith("selected 1, sent 1, skipped 0, failed 0")
    started = time.monotonic()
    code, out, _ = run(capsys, "replay", "shop.orders.dlq", "--rate", "4")
    elapsed = time.monotonic() - started
    assert code == 0
    assert summary(out).endswith("selected 3, sent 2, skipped 1 (already replayed: 1), failed 0")
    assert elapsed >= 0.25  # two sends at 4/s: the second waits a quarter of a second
    assert sorted(m.key() for m in world.read(world.orders)) == [b"order-1", b"order-2", b"order-3"]


# --------------------------------------------------------------------------------------- bad arguments


@pytest.fixture
def env_only(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The environment of `world` without creating topics (argument checks come before any read)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", settings.schema_registry_url)
    monkeypatch.setenv("SHOPSTREAM_TOPIC_PREFIX", settings.topic_prefix)
    yield settings


@pytest.mark.parametrize(("argv", "message"), [
    (["show", "nope.dlq"], "unknown topic 'nope.dlq'; DLQ topics: shop.orders.dlq, payments.dlq"),
    (["replay", "nope"], "unknown topic 'nope'; DLQ topics: shop.orders.dlq"),
    (["show", "shop.orders"], "shop.orders is an input topic, not a DLQ (its DLQ is shop.orders.dlq); DLQ topics:"),
    (["replay", "commands.erp"], "commands.erp is a derived topic, not a DLQ; DLQ topics:"),
    (["show", "shop.orders.dlq", "--since", "yesterday"],
     "--since: cannot read 'yesterday'; expected ISO-8601 with a zone (2026-11-23T10:00:00Z"),
    (["replay", "shop.orders.dlq", "--until", "2026-11-23 10:00"], "--until: '2026-11-23 10:00' has no time zone"),
    (["replay", "shop.orders.dlq", "--since", "3 days"], "(90m, 2h, 3d"),
    (["show", "shop.orders.dlq", "--offset", "1", "--fingerprint", "abc"],
     "--offset selects one record: it cannot be combined with --fingerprint"),
    (["show", "shop.orders.dlq", "--offset", "1", "--since", "1h"], "--offset selects one record"),
    (["show", "shop.orders.dlq", "--since", "1h", "--until", "2h"], "--since must be before --until"),
    (["show", "shop.orders.dlq", "--limit", "0"], "--limit must be at least 1"),
    (["replay", "shop.orders.dlq", "--offset-from", "5", "--offset-to", "2"], "--offset-from 5 is after --offset-to 2"),
    (["replay", "shop.orders.dlq", "--rate", "0"], "--rate must be a positive number of records per second, got 0"),
    (["replay", "shop.orders.dlq", "--rate", "-3"], "--rate must be a positive number"),
    (["replay", "shop.orders.dlq", "--limit", "0"], "--limit must be at least 1"),
    (["replay", "shop.orders.dlq", "--max-replays", "0"], "--max-replays must be at least 1"),
    (["replay", "shop.orders.dlq", "--to", "nope"], "--to nope: unknown topic; topics: shop.orders, payments"),
    (["replay", "shop.orders.dlq", "--to", "payments.dlq"], "would only park the records again"),
    (["replay", "shop.orders.dlq", "--to", "dlq.replay-log"], "would only park the records again"),
])
def test_bad_arguments_exit_2_with_a_clear_message(env_only: Settings, capsys: pytest.CaptureFixture[str],
                                                   argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err, err
    assert err.startswith(f"shopstream dlq {argv[0]}: ")
    assert out == ""


@pytest.mark.parametrize("argv", [["show", "shop.orders.dlq", "--offset", "x"], ["replay", "shop.orders.dlq",
                                  "--rate", "fast"], ["replay"], ["purge", "shop.orders.dlq"]])
def test_malformed_arguments_are_argparse_errors(env_only: Settings, capsys: pytest.CaptureFixture[str],
                                                 argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["dlq", *argv])
    assert info.value.code == 2
    assert "usage: shopstream dlq" in capsys.readouterr().err


def test_topics_not_created_is_reported(env_only: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", "shop.orders.dlq")
    assert code == 2
    assert f"topic {env_only.topic('shop.orders.dlq')} does not exist on the broker (run `shopstream topics apply`" \
        in err
    code, _, err = run(capsys, "replay", "shop.orders.dlq", "--dry-run")
    assert code == 2 and f"topic {env_only.topic('shop.orders.dlq')} does not exist" in err
    only_dlq = load_topology().topic("shop.orders.dlq").model_copy()
    apply(Topology(topics=(only_dlq,)), env_only.kafka_client_config(), prefix=env_only.topic_prefix)
    code, _, err = run(capsys, "replay", "shop.orders.dlq", "--dry-run")
    assert code == 2 and f"topic {env_only.topic('dlq.replay-log')} does not exist" in err
    code, out, _ = run(capsys, "list")
    assert code == 1
    assert f"{env_only.topic('shop.orders.dlq')}" in out and "ERROR: topic" in out


def test_missing_bootstrap_is_a_config_error(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    code, _, err = run(capsys, "list")
    assert code == 2 and "KAFKA_BOOTSTRAP_SERVERS must be set" in err


def test_unreachable_broker_exits_1_naming_it(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    code, _, err = run(capsys, "list")
    assert code == 1
    assert f"cannot reach Kafka at 127.0.0.1:{port} (KAFKA_BOOTSTRAP_SERVERS)" in err
