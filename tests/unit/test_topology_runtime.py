"""The topology is what the runtime reads: table partitions and changelogs, the overlay setting, the
production overlay, and the `topics apply|check` options that reach it (no broker involved)."""

from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from shopstream.cli import main
from shopstream.config import load_settings
from shopstream.topology import (
    PRODUCTION_OVERLAY_PATH,
    TopologyError,
    changelog_name,
    check,
    check_production,
    known_record_names,
    load_topology,
    load_topology_for,
)

ORDER_INPUTS = ("shop.orders", "payments", "fulfillment.shipments", "returns")
SKU_INPUTS = ("inventory.stock", "inventory.reservations")
ORDER_GROUP = ("shop.orders", "payments", "fulfillment.shipments", "returns", "orders.state",
               "orders.status-changes", "review.decisions", "orders-orders-changelog")


def _order_group_overlay(tmp_path: Path, partitions: int) -> Path:
    overlay = tmp_path / "order12.yaml"
    overlay.write_text("topics:\n" + "".join(f"  {name}: {{partitions: {partitions}}}\n" for name in ORDER_GROUP))
    return overlay


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SHOPSTREAM_TOPOLOGY_OVERLAY", "SHOPSTREAM_TOPIC_PREFIX", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(var, raising=False)


# ------------------------------------------------------------------------------ changelogs and tables


def test_changelogs_are_declared_internal_compacted_and_copartitioned() -> None:
    topology = load_topology()
    for app, table, group, key in (("orders", "orders", "order", "order_id"), ("inventory", "atp", "sku", "sku")):
        topic = topology.topic(changelog_name(app, table))
        assert topic.name == f"{app}-{table}-changelog"  # Faust's `<app id>-<table>-changelog`
        assert topic.kind == "internal" and topic.compacted and topic.key == key
        assert topic.copartition_group == group and topic.dlq is None
        assert topology.internal_topics(app) == [topic]


def test_table_partitions_follow_the_copartition_group(tmp_path: Path) -> None:
    assert load_topology().table_changelog("orders", "orders", ORDER_INPUTS).partitions == 4
    raised = load_topology(overlay=_order_group_overlay(tmp_path, 12))
    assert check(raised) == []
    assert raised.copartition_partitions(ORDER_INPUTS) == 12
    assert raised.table_changelog("orders", "orders", ORDER_INPUTS).partitions == 12
    assert raised.table_changelog("inventory", "atp", SKU_INPUTS).partitions == 4  # the other group is untouched


def test_orders_processor_table_has_the_groups_partitions(tmp_path: Path) -> None:
    """Built, not started: the state store's changelog and partitions come from the overlay named by the setting."""
    from shopstream.processors.orders.app import OrdersProcessor

    settings = load_settings(kafka_bootstrap_servers="127.0.0.1:9", schema_registry_url="http://127.0.0.1:9",
                             topic_prefix="t1.", state_dir=str(tmp_path),
                             topology_overlay=str(_order_group_overlay(tmp_path, 12)))
    processor = OrdersProcessor(settings)
    assert processor.partitions == 12
    assert processor.changelog == "orders-orders-changelog"
    assert settings.topic(processor.changelog) == "t1.orders-orders-changelog"  # what topics apply creates
    assert processor.topology.topic(processor.changelog).partitions == 12


def test_orders_processor_under_the_production_overlay(tmp_path: Path) -> None:
    from shopstream.processors.orders.app import OrdersProcessor

    settings = load_settings(kafka_bootstrap_servers="127.0.0.1:9", schema_registry_url="http://127.0.0.1:9",
                             state_dir=str(tmp_path), topology_overlay=str(PRODUCTION_OVERLAY_PATH))
    processor = OrdersProcessor(settings)
    # `topics apply` creates the changelog as the topology says: RF 3, ISR 2, the group's partitions.
    changelog = processor.topology.topic(processor.changelog)
    assert changelog.replication_factor == 3
    assert changelog.kafka_configs()["min.insync.replicas"] == "2"
    assert processor.partitions == 12


def test_table_changelog_errors_name_the_problem(tmp_path: Path) -> None:
    topology = load_topology()
    with pytest.raises(TopologyError, match="'orders-nope-changelog' declared"):
        topology.table_changelog("orders", "nope", ORDER_INPUTS)
    with pytest.raises(TopologyError, match="not one co-partition group"):
        topology.copartition_partitions(["shop.orders", "inventory.stock"])
    with pytest.raises(TopologyError, match="not one co-partition group"):
        topology.copartition_partitions(["commands.erp"])
    only_inputs = tmp_path / "inputs-only.yaml"
    only_inputs.write_text("topics:\n" + "".join(f"  {n}: {{partitions: 8}}\n" for n in ORDER_GROUP[:-1]))
    lagging = load_topology(overlay=only_inputs)
    assert any("orders-orders-changelog=4" in p for p in check(lagging))
    with pytest.raises(TopologyError, match="differing partition counts"):
        lagging.table_changelog("orders", "orders", ORDER_INPUTS)


# ------------------------------------------------------------------------------------------ overlay


def test_overlay_setting_reaches_every_reader(tmp_path: Path) -> None:
    overlay = _order_group_overlay(tmp_path, 6)
    assert load_topology_for(load_settings()).topic("payments").partitions == 4
    from_setting = load_topology_for(load_settings(topology_overlay=str(overlay)))
    assert from_setting.topic("payments").partitions == 6
    assert str(overlay) in from_setting.source
    # An explicit overlay (the CLI's --overlay) wins over the setting.
    explicit = load_topology_for(load_settings(topology_overlay=str(overlay)), overlay=PRODUCTION_OVERLAY_PATH)
    assert explicit.topic("payments").partitions == 12


def test_production_overlay_is_package_data_and_consistent() -> None:
    assert PRODUCTION_OVERLAY_PATH.is_file()
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["shopstream.topology"]
    assert any(fnmatch("overlays/production.yaml", p) for p in patterns)  # shipped in the wheel, too
    production = load_topology(overlay=PRODUCTION_OVERLAY_PATH)
    assert check(production, known_records=known_record_names()) == []
    assert check_production(production) == []


def test_production_overlay_gives_rf3_and_isr2_everywhere() -> None:
    production = load_topology(overlay=PRODUCTION_OVERLAY_PATH)
    kinds = {t.kind for t in production.topics}
    assert kinds == {"input", "derived", "internal", "dlq"}
    for topic in production.topics:
        assert topic.replication_factor == 3, topic.name
        assert topic.configs["min.insync.replicas"] == "2", topic.name
    for name in ("orders-orders-changelog", "inventory-atp-changelog", "connectors.dlq", "payments.dlq"):
        assert production.topic(name).replication_factor == 3
    # groups are raised together, changelogs with them
    assert {t.partitions for t in production.group("order")} == {12}
    assert {t.partitions for t in production.group("sku")} == {12}


def test_check_production_lists_weak_topics() -> None:
    problems = check_production(load_topology())
    assert any("'orders-orders-changelog': replication_factor 1 < 3" in p for p in problems)
    assert any("'connectors.dlq': min.insync.replicas 1 < 2" in p for p in problems)
    assert len(problems) == 2 * len(load_topology().topics)


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_check_production_fails_on_base_passes_on_overlay(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "check"]) == 0
    assert main(["topics", "check", "--production"]) == 1
    out = capsys.readouterr().out
    assert "replication_factor 1 < 3" in out and "problem(s)" in out
    assert main(["topics", "check", "--production", "--overlay", str(PRODUCTION_OVERLAY_PATH)]) == 0
    assert "topology ok" in capsys.readouterr().out


def test_cli_check_production_reads_the_overlay_setting(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SHOPSTREAM_TOPOLOGY_OVERLAY", str(PRODUCTION_OVERLAY_PATH))
    assert main(["topics", "check", "--production"]) == 0
    assert "production.yaml" in capsys.readouterr().out


def test_cli_bad_overlay_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("topics:\n  no.such: {partitions: 2}\n")
    assert main(["topics", "check", "--overlay", str(bad)]) == 2
    assert "no.such" in capsys.readouterr().err
    assert main(["topics", "apply", "--dry-run", "--overlay", str(bad)]) == 2


def test_cli_apply_dry_run_prints_the_plan_without_a_broker(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """No KAFKA_BOOTSTRAP_SERVERS: a dry run needs none, and contacts nothing."""
    monkeypatch.setenv("SHOPSTREAM_TOPIC_PREFIX", "prod.")
    assert main(["topics", "apply", "--overlay", str(PRODUCTION_OVERLAY_PATH), "--dry-run"]) == 0
    out = capsys.readouterr().out
    production = load_topology(overlay=PRODUCTION_OVERLAY_PATH)
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("prod.")}
    assert set(rows) == set(production.physical_names("prod."))
    for name, line in rows.items():
        assert "replication_factor=3" in line, name
        assert "min.insync.replicas=2" in line, name
    assert re.search(r"prod\.orders-orders-changelog\s+internal\s+partitions=12\s+replication_factor=3", out)
    assert "nothing contacted, nothing created" in out


def test_cli_apply_dry_run_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "apply", "--dry-run", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dry_run"] is True and doc["problems"] == []
    by_name = {t["name"]: t for t in doc["topics"]}
    assert by_name["inventory-atp-changelog"]["configs"]["cleanup.policy"] == "compact"
    assert by_name["shop.orders"]["replication_factor"] == 1


def test_cli_apply_without_dry_run_still_needs_a_broker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "apply"]) == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in capsys.readouterr().err


def test_changelogs_are_no_replay_target() -> None:
    """Replaying dead letters into a Faust changelog would write foreign records into table state."""
    from shopstream.ops.dlq_common import resolve_target
    from shopstream.ops.dlq_filters import UsageError

    topology = load_topology()
    assert resolve_target(topology, "inventory.reservations", "t1.") == "t1.inventory.reservations"
    with pytest.raises(UsageError, match="internal topic"):
        resolve_target(topology, "orders-orders-changelog")
    with pytest.raises(UsageError) as unknown:
        resolve_target(topology, "nope")
    assert "orders-orders-changelog" not in str(unknown.value) and "shop.orders" in str(unknown.value)
