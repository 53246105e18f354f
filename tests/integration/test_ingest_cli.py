"""`shopstream ingest erp-stock FILE` in-process against the real broker and the embedded registry.

Each test gets its own topic prefix (the `settings` fixture) and creates the topology with `apply`;
the CLI reads the environment set here, so it runs exactly as an operator would run it.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from confluent_kafka import Message

from shopstream.cli import main
from shopstream.config import Settings
from shopstream.kafka import partition_for
from shopstream.schemas.models import StockSnapshotBatch, StockSnapshotLine
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from tests.kafka_read import read_all

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

AS_OF = "2026-11-23T06:00:00Z"
AS_OF_DT = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", settings.schema_registry_url)
    monkeypatch.setenv("SHOPSTREAM_TOPIC_PREFIX", settings.topic_prefix)
    # The ingest's unchanged-row digest lives in Redis: each test under its own key prefix.
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("SHOPSTREAM_REDIS_PREFIX", settings.redis_key_prefix)
    report = apply(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    assert report.failed == {} and report.exit_code == 0
    return settings


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["ingest", "erp-stock", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def read(settings: Settings, logical: str) -> list[Message]:
    (topic,) = (t for t in load_topology().topics if t.name == logical)
    return read_all(settings.kafka_bootstrap_servers, settings.topic(logical), partitions=topic.partitions,
                    idle_s=0.5)


def headers_of(msg: Message) -> dict[str, bytes]:
    return {k: v for k, v in (msg.headers() or []) if isinstance(v, bytes)}


def decode_batches(settings: Settings) -> list[StockSnapshotBatch]:
    """The StockSnapshotBatch records on inventory.stock, each checked to sit where its SKUs belong."""
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    (topic,) = (t for t in load_topology().topics if t.name == "inventory.stock")
    out = []
    for msg in read(settings, "inventory.stock"):
        batch = serde.decode(msg.value())
        assert isinstance(batch, StockSnapshotBatch)
        assert batch.meta.source == "erp" and batch.meta.event_type == "StockSnapshotBatch"
        assert msg.key() == batch.lines[0].sku.encode()  # the key lands on the lines' partition
        assert {partition_for(line.sku.encode(), topic.partitions) for line in batch.lines} == {msg.partition()}
        out.append(batch)
    return out


def decode_stock(settings: Settings) -> dict[tuple[str, str], tuple[StockSnapshotBatch, StockSnapshotLine]]:
    out: dict[tuple[str, str], tuple[StockSnapshotBatch, StockSnapshotLine]] = {}
    for batch in decode_batches(settings):
        for line in batch.lines:
            assert (line.sku, batch.location) not in out
            out[(line.sku, batch.location)] = (batch, line)
    return out


def test_mixed_file_publishes_valid_rows_and_parks_rejected_ones(
        env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wawi-export.csv"
    path.write_bytes("\ufeffSKU;On_Hand;Location;Safety_Stock;Incoming\r\n"   # 1
                     "TSHIRT-BLK-M;12;WH1;2;5\r\n"                          # 2
                     "TSHIRT-BLK-L;-3;WH1;;\r\n"                             # 3 negative
                     "MUG-01;0;;;\r\n"                                       # 4 default location
                     "TSHIRT-BLK-M;9;WH1;;\r\n"                              # 5 duplicate of line 2
                     "TSHIRT-BLK-M;4;WH2;;1\r\n".encode())                   # 6
    code, out, err = run(capsys, str(path), "--as-of", AS_OF)
    assert code == 1, (out, err)
    assert out.strip().splitlines()[-1] == f"erp-stock {path}: read 5, published 3, unchanged 0, rejected 2"
    assert f"{path}:3: on_hand is negative: '-3'" in err
    assert f"{path}:5: duplicate SKU 'TSHIRT-BLK-M' at location 'WH1': first seen on line 2" in err

    stock = decode_stock(env)
    assert set(stock) == {("TSHIRT-BLK-M", "WH1"), ("MUG-01", "default"), ("TSHIRT-BLK-M", "WH2")}
    batch, line = stock[("TSHIRT-BLK-M", "WH1")]
    assert (line.on_hand, line.safety_stock, line.incoming, batch.as_of) == (12, 2, 5, AS_OF_DT)
    batch, line = stock[("MUG-01", "default")]
    assert (line.on_hand, line.safety_stock, line.incoming, batch.as_of) == (0, None, None, AS_OF_DT)
    batch, line = stock[("TSHIRT-BLK-M", "WH2")]
    assert (line.on_hand, line.incoming) == (4, 1)

    dlq = sorted(read(env, "connectors.dlq"), key=lambda m: int(headers_of(m)["shopstream.ingest.line"]))
    assert [m.value() for m in dlq] == [b"TSHIRT-BLK-L;-3;WH1;;", b"TSHIRT-BLK-M;9;WH1;;"]
    negative, duplicate = (headers_of(m) for m in dlq)
    assert dlq[0].key() == b"erp-stock"
    assert negative["shopstream.dlq.original.topic"] == b"file:erp-stock"
    assert negative["shopstream.dlq.stage"] == b"connector"
    assert negative["shopstream.dlq.error.class"] == b"shopstream.connectors.erp_stock.BadQuantity"
    assert negative["shopstream.dlq.error.message"] == b"line 3: on_hand is negative: '-3'"
    assert negative["shopstream.ingest.file"] == str(path).encode()
    assert negative["shopstream.ingest.line"] == b"3"
    assert negative["shopstream.ingest.header"] == b"SKU;On_Hand;Location;Safety_Stock;Incoming"
    assert negative["shopstream.ingest.as_of"] == b"2026-11-23T06:00:00+00:00"
    assert duplicate["shopstream.dlq.error.class"] == b"shopstream.connectors.erp_stock.DuplicateRow"
    assert duplicate["shopstream.ingest.line"] == b"5"
    assert b"first seen on line 2" in duplicate["shopstream.dlq.error.message"]


def test_clean_file_exits_0_and_reingest_repeats_the_event_ids(
        env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "stock.csv"
    path.write_text("sku,on_hand\n" + "".join(f"SKU-{i},{i}\n" for i in range(20)))
    code, out, err = run(capsys, str(path), "--as-of", "2026-11-23T07:00:00+01:00")
    assert code == 0, err
    assert out.strip().splitlines()[-1] == f"erp-stock {path}: read 20, published 20, unchanged 0, rejected 0"
    assert err == ""

    # The same file again, from stdin: same event ids, so downstream sees duplicates, not new counts.
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    code, out, _ = run(capsys, "-", "--as-of", AS_OF)
    assert code == 0
    # Every row repeats the last published figures: counted as unchanged, published anyway.
    assert out.strip().splitlines()[-1] == "erp-stock -: read 20, published 20, unchanged 20, rejected 0"

    ids: dict[str, list[str]] = {}
    for batch in decode_batches(env):
        assert batch.as_of == AS_OF_DT and batch.location == "default"
        for line in batch.lines:
            assert line.on_hand == int(line.sku.split("-")[1])
            ids.setdefault(line.sku, []).append(batch.meta.event_id)
    assert len(ids) == 20
    assert all(len(v) == 2 and v[0] == v[1] for v in ids.values())  # both runs: the same batches
    assert read(env, "connectors.dlq") == []


def test_file_level_errors_exit_2_and_publish_nothing(
        env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(capsys, str(tmp_path / "missing.csv"))
    assert code == 2 and "missing.csv: no such file" in err

    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("article;stock\nA;1\n")
    code, _, err = run(capsys, str(bad_header))
    assert code == 2 and "lacks required column(s) sku, on_hand" in err

    good = tmp_path / "good.csv"
    good.write_text("sku,on_hand\nA,1\n")
    code, _, err = run(capsys, str(good), "--as-of", "2026-11-23T06:00:00")
    assert code == 2 and "no time zone" in err
    code, _, err = run(capsys, str(good), "--as-of", "soon")
    assert code == 2 and "not an ISO-8601 time" in err

    monkeypatch.delenv("SCHEMA_REGISTRY_URL")
    code, _, err = run(capsys, str(good))
    assert code == 2 and "SCHEMA_REGISTRY_URL" in err

    assert read(env, "inventory.stock") == []
    assert read(env, "connectors.dlq") == []


def test_changed_only_publishes_the_rows_that_changed(
        env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = tmp_path / "monday.csv"
    first.write_text("sku;on_hand;safety_stock\n" + "".join(f"SKU-{i};{i};1\n" for i in range(10)))
    code, out, _ = run(capsys, str(first), "--as-of", "2026-11-23T06:00:00Z", "--changed-only")
    assert code == 0
    assert out.strip().splitlines()[-1] == f"erp-stock {first}: read 10, published 10, unchanged 0, rejected 0"

    # Tuesday: two figures changed, one SKU is new, the rest repeat Monday's.
    second = tmp_path / "tuesday.csv"
    rows = {f"SKU-{i}": (i, 1) for i in range(10)} | {"SKU-3": (30, 1), "SKU-7": (7, 0), "SKU-NEW": (5, 1)}
    second.write_text("sku;on_hand;safety_stock\n" + "".join(f"{sku};{a};{b}\n" for sku, (a, b) in rows.items()))
    code, out, _ = run(capsys, str(second), "--as-of", "2026-11-24T06:00:00Z", "--changed-only")
    assert code == 0
    assert out.strip().splitlines()[-1] == (
        f"erp-stock {second}: read 11, published 3, unchanged 8 (not published: 8), rejected 0")
    tuesday = [(line.sku, line.on_hand, line.safety_stock) for batch in decode_batches(env)
               if batch.as_of == datetime(2026, 11, 24, 6, 0, tzinfo=UTC) for line in batch.lines]
    assert sorted(tuesday) == [("SKU-3", 30, 1), ("SKU-7", 7, 0), ("SKU-NEW", 5, 1)]


def test_unchanged_rows_are_published_but_not_written_to_the_digest_again(
        env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = tmp_path / "monday.csv"
    first.write_text("sku;on_hand;location;incoming\n" + "".join(
        f"SKU-{i};{i};{'WH1' if i % 2 else 'WH2'};\n" for i in range(20)) + '"SKU\nWRAPPED";7;WH3;1\n')
    code, out, _ = run(capsys, str(first), "--as-of", "2026-11-23T06:00:00Z")
    assert code == 0 and out.strip().endswith("read 21, published 21, unchanged 0, rejected 0")

    client = redis.Redis.from_url(env.redis_url)
    wh1, wh2, wh3 = (f"{env.redis_key_prefix}erp-stock:last:{loc}" for loc in ("WH1", "WH2", "WH3"))
    assert client.hget(wh2, "SKU-4") == b"4,," and client.hget(wh3, "SKU\nWRAPPED") == b"7,,1"
    # WATCH fails the transaction below when anything wrote the key meanwhile, even a HSET of the
    # value it already held: so it sees whether the unchanged rows were written again.
    watch = client.pipeline()
    watch.watch(wh1, wh3)

    second = tmp_path / "tuesday.csv"  # every WH1 and WH3 row as on Monday; SKU-4 at WH2 changed
    second.write_text(first.read_text().replace("SKU-4;4;WH2;", "SKU-4;40;WH2;5"))
    code, out, _ = run(capsys, str(second), "--as-of", "2026-11-24T06:00:00Z")
    assert code == 0
    assert out.strip().splitlines()[-1] == f"erp-stock {second}: read 21, published 21, unchanged 20, rejected 0"
    tuesday = [line.sku for batch in decode_batches(env) if batch.as_of == datetime(2026, 11, 24, 6, tzinfo=UTC)
               for line in batch.lines]
    assert len(tuesday) == 21  # unchanged rows are still published

    watch.multi()
    watch.hlen(wh1)
    assert watch.execute() == [10]  # raises WatchError had WH1 or WH3 been written
    assert client.hget(wh2, "SKU-4") == b"40,,5"  # the changed row is remembered
    assert client.hget(wh2, "SKU-6") == b"6,,"
    client.close()
