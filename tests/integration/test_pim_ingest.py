"""`shopstream ingest pim FILE` in-process against the real broker and the embedded registry: rows published
keyed by SKU, bad rows reported with their line numbers and parked on connectors.dlq."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Message

from shopstream.cli import main
from shopstream.config import Settings
from shopstream.kafka import partition_for
from shopstream.schemas.models import ProductDeleted, ProductUpserted
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply, load_topology
from tests.kafka_read import read_all

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", settings.schema_registry_url)
    monkeypatch.setenv("SHOPSTREAM_TOPIC_PREFIX", settings.topic_prefix)
    report = apply(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    assert report.failed == {} and report.exit_code == 0
    return settings


def read(settings: Settings, logical: str) -> list[Message]:
    (topic,) = (t for t in load_topology().topics if t.name == logical)
    return read_all(settings.kafka_bootstrap_servers, settings.topic(logical), partitions=topic.partitions,
                    idle_s=0.5)


def test_csv_rows_are_published_by_sku_and_bad_rows_parked_with_their_lines(
        env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "export.csv"
    path.write_text("sku;title;family;price;attr:material;updated_at\n"
                    "A-1;Alpha Gürtel;accessories;19.90;leather;2026-12-05T10:00:00Z\n"
                    ";No SKU;accessories;1;x;2026-12-05T10:00:00Z\n"
                    "A-3;Gamma;accessories;abc;x;2026-12-05T10:00:00Z\n"
                    "A-4;Delta;accessories;5.00;;2026-12-05T10:00:00Z\n", encoding="utf-8")
    code = main(["ingest", "pim", str(path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "read 4, published 2 (2 events), rejected 2" in out and "products/s" in out
    assert f"{path}:3:" in err and f"{path}:4:" in err
    serde = AvroSerde(make_registry_client(env.schema_registry_url))
    partitions = next(t.partitions for t in load_topology().topics if t.name == "catalog.products")
    records = {}
    for msg in read(env, "catalog.products"):
        record = serde.decode(msg.value())
        assert isinstance(record, ProductUpserted) and record.meta.source == "pim"
        assert msg.key() == record.sku.encode() and msg.partition() == partition_for(msg.key(), partitions)
        records[record.sku] = record
    assert set(records) == {"A-1", "A-4"}
    assert records["A-1"].attributes[0].code == "material" and str(records["A-1"].price.amount) == "19.9000"
    parked = read(env, "connectors.dlq")
    lines = sorted(dict(m.headers() or [])["shopstream.ingest.line"] for m in parked)
    assert lines == [b"3", b"4"]


def test_json_lines_with_a_deletion_and_an_unusable_file(env: Settings, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text('{"sku": "B-1", "title": "Beta", "updated_at": "2026-12-05T10:00:00Z"}\n'
                    '{"sku": "B-2", "deleted": true, "updated_at": "2026-12-05T11:00:00Z"}\n', encoding="utf-8")
    assert main(["ingest", "pim", str(path)]) == 0
    serde = AvroSerde(make_registry_client(env.schema_registry_url))
    kinds = sorted(type(serde.decode(m.value())).__name__ for m in read(env, "catalog.products"))
    assert kinds == [ProductDeleted.__name__, ProductUpserted.__name__]
    empty = tmp_path / "empty.csv"
    empty.write_text("title,price\nx,1\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["ingest", "pim", str(empty)]) == 2
    assert "no sku column" in capsys.readouterr().err
