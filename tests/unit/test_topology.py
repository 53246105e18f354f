"""The topic topology as data: the shipped file, each `check()` problem, loading errors, retention parsing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from shopstream.topology import (
    DEFAULT_TOPOLOGY_PATH,
    ApplyReport,
    Drift,
    TopologyError,
    Unverified,
    apply,
    check,
    known_record_names,
    load_topology,
    parse_duration_ms,
    parse_topology,
)

DESIGN_TOPICS = [
    "shop.orders", "payments", "inventory.stock", "fulfillment.shipments", "returns", "catalog.products",
    "support.tickets", "orders.state", "orders.status-changes", "inventory.reservations", "inventory.atp",
    "commands.shop", "commands.erp", "commands.fulfillment", "commands.payments", "commands.support",
    "alerts.anomalies", "review.queue", "connectors.dlq",
]
INPUTS = ["shop.orders", "payments", "inventory.stock", "fulfillment.shipments", "returns",
          "catalog.products", "support.tickets"]


# ------------------------------------------------------------------------------------ the shipped file


def test_shipped_topology_passes_check() -> None:
    topology = load_topology()
    assert check(topology) == []
    assert check(topology, known_records=known_record_names()) == []


def test_shipped_topology_has_every_design_topic_and_dlq() -> None:
    topology = load_topology()
    names = topology.names()
    for name in DESIGN_TOPICS:
        assert name in names
    for name in [*INPUTS, "orders.state", "inventory.reservations"]:
        topic = topology.topic(name)
        assert topic.consumed
        assert topic.dlq == f"{name}.dlq"
        dlq = topology.topic(f"{name}.dlq")
        assert dlq.kind == "dlq"
        assert dlq.dlq_of == (name,)
        assert dlq.cleanup_policy == "delete"
        assert dlq.retention_ms == 14 * 86_400_000
        assert dlq.retention_ms > topic.retention_ms or topic.retention_ms == -1
    assert len(names) == len(set(names))


def test_shipped_topology_keys_records_and_policies() -> None:
    t = load_topology()
    assert t.topic("orders.state").compacted and t.topic("orders.state").key == "order_id"
    assert t.topic("inventory.atp").cleanup_policy == "compact"
    assert t.topic("inventory.atp").configs["segment.ms"] == "3600000"
    assert t.topic("inventory.reservations").kind == "internal"
    assert t.topic("commands.erp").records == ("ReorderRequest", "CreateInvoice", "CreateCreditNote")
    assert t.topic("commands.fulfillment").records == (
        "ReleaseOrder", "HoldOrder", "CancelFulfillment", "CreateReturnLabel")
    assert t.topic("payments").records == (
        "PaymentAuthorized", "PaymentCaptured", "PaymentFailed", "RefundIssued", "ChargebackOpened")
    assert {x.name for x in t.group("order")} >= {"shop.orders", "payments", "fulfillment.shipments",
                                                  "returns", "orders.state"}
    assert {x.name for x in t.group("sku")} >= {"inventory.stock", "inventory.reservations", "inventory.atp"}
    for topic in t.topics:
        configs = topic.kafka_configs()
        assert configs["retention.ms"] == str(topic.retention_ms)
        assert configs["cleanup.policy"] == topic.cleanup_policy
        assert topic.partitions >= 1 and topic.replication_factor == 1
    assert t.topic("shop.orders").partitions == 4


def test_topic_lookup_and_physical_names() -> None:
    t = load_topology()
    assert t.topic("payments").physical_name("tx.") == "tx.payments"
    assert "tx.payments.dlq" in t.physical_names("tx.")
    assert t.dlq_for("payments") == "payments.dlq"
    with pytest.raises(KeyError, match="nope"):
        t.topic("nope")


def test_overlay_raises_partitions_and_replication(tmp_path: Path) -> None:
    overlay = tmp_path / "prod.yaml"
    overlay.write_text(
        "defaults:\n  replication_factor: 3\n  configs: {min.insync.replicas: 2}\n"
        "topics:\n  shop.orders: {partitions: 12}\n"
    )
    t = load_topology(overlay=overlay)
    assert t.topic("shop.orders").partitions == 12
    assert t.topic("payments").replication_factor == 3
    assert t.topic("payments").configs["min.insync.replicas"] == "2"
    assert t.topic("payments.dlq").replication_factor == 3
    # raising one member of a copartition group alone is caught
    assert any("copartition group 'order'" in p and "shop.orders=12" in p for p in check(t))


def test_overlay_naming_unknown_topic_fails(tmp_path: Path) -> None:
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("topics:\n  no.such: {partitions: 2}\n")
    with pytest.raises(TopologyError, match=r"no\.such"):
        load_topology(overlay=overlay)


# -------------------------------------------------------------------------------------- crafted files


BASE: dict[str, Any] = {
    "version": 1,
    "defaults": {"partitions": 4, "replication_factor": 1, "retention": "7d", "cleanup_policy": "delete"},
    "dlq_defaults": {"partitions": 1, "retention": "14d"},
    "topics": [
        {"name": "a", "kind": "input", "key": "order_id", "records": ["OrderPlaced"], "consumed": True,
         "dlq": "auto", "copartition_group": "order"},
        {"name": "b", "kind": "derived", "key": "order_id", "records": ["OrderState"],
         "copartition_group": "order"},
    ],
}


def doc(*extra: dict[str, Any], **changes: dict[str, Any]) -> dict[str, Any]:
    """BASE plus `extra` topics; `changes` maps a BASE topic name to fields to override."""
    data = copy.deepcopy(BASE)
    for topic in data["topics"]:
        topic.update(changes.get(topic["name"], {}))
    data["topics"].extend(copy.deepcopy(list(extra)))
    return data


def problems(data: dict[str, Any], known: set[str] | None = None) -> list[str]:
    return check(parse_topology(data), known_records=known)


def test_base_is_clean() -> None:
    assert problems(doc()) == []


def test_duplicate_names() -> None:
    out = problems(doc({"name": "b", "kind": "derived", "key": "order_id", "records": ["X"]}))
    assert any("duplicate topic name 'b'" in p for p in out)


def test_duplicate_with_generated_dlq() -> None:
    out = problems(doc({"name": "a.dlq", "kind": "dlq", "key": "k"},
                       {"name": "a.dlq", "kind": "dlq", "key": "k"}))
    assert any("duplicate topic name 'a.dlq'" in p for p in out)


def test_copartition_unequal_partitions() -> None:
    out = problems(doc(b={"partitions": 6}))
    assert any("copartition group 'order': partition counts differ (a=4, b=6)" in p for p in out)


def test_copartition_mixed_keys() -> None:
    out = problems(doc(b={"key": "sku"}))
    assert any("copartition group 'order': members use different keys" in p for p in out)


def test_consumed_without_dlq() -> None:
    out = problems(doc(b={"consumed": True}))
    assert out == ["topic 'b' is consumed but has no dlq companion"]


def test_dlq_of_a_dlq() -> None:
    out = problems(doc({"name": "x.dlq", "kind": "dlq", "key": "k", "dlq": "auto"}))
    assert any("'x.dlq' is a DLQ but has a dlq 'x.dlq.dlq' (DLQ of a DLQ)" in p for p in out)


def test_dlq_pointing_at_non_dlq_topic() -> None:
    out = problems(doc(a={"dlq": "b"}))
    assert any("topic 'a': dlq 'b' is a derived topic, not a DLQ" in p for p in out)


def test_explicit_shared_dlq_is_fine() -> None:
    data = doc({"name": "shared.dlq", "kind": "dlq", "key": "original key"},
               a={"dlq": "shared.dlq"}, b={"consumed": True, "dlq": "shared.dlq"})
    t = parse_topology(data)
    assert check(t) == []
    assert t.topic("shared.dlq").dlq_of == ("a", "b")
    assert t.topic("shared.dlq").retention_ms == 14 * 86_400_000
    assert "a.dlq" not in t.names()


def test_compacted_without_key() -> None:
    out = problems(doc(b={"key": None, "cleanup_policy": "compact", "copartition_group": None}))
    assert any("topic 'b': compacted ('compact') but has no key" in p for p in out)


def test_unknown_cleanup_policy() -> None:
    out = problems(doc(b={"cleanup_policy": "shred"}))
    assert any("topic 'b': unknown cleanup_policy 'shred'" in p for p in out)


def test_cleanup_policy_is_normalised() -> None:
    t = parse_topology(doc(b={"cleanup_policy": "Delete, compact"}))
    assert t.topic("b").cleanup_policy == "compact,delete"
    assert t.topic("b").compacted


def test_unknown_record_names_only_when_known_given() -> None:
    data = doc(b={"records": ["OrderState", "Bogus"]})
    assert problems(data) == []
    out = problems(data, known={"OrderPlaced", "OrderState"})
    assert out == ["topic 'b': records not defined in the schemas: Bogus"]


def test_compacted_dlq() -> None:
    out = problems(doc({"name": "x.dlq", "kind": "dlq", "key": "k", "cleanup_policy": "compact"}))
    assert any("DLQ topic 'x.dlq' is compacted" in p for p in out)


def test_topic_without_records() -> None:
    out = problems(doc(b={"records": []}))
    assert out == ["topic 'b' declares no records"]


def test_min_insync_above_replication() -> None:
    out = problems(doc(b={"configs": {"min.insync.replicas": 2}}))
    assert out == ["topic 'b': min.insync.replicas 2 > replication_factor 1"]


def test_dlq_companion_generated_with_dlq_defaults() -> None:
    t = parse_topology(doc())
    dlq = t.topic("a.dlq")
    assert (dlq.partitions, dlq.retention_ms, dlq.cleanup_policy, dlq.key) == (
        1, 14 * 86_400_000, "delete", "order_id (original key)")
    assert t.names() == ["a", "a.dlq", "b"]


def test_config_values_are_strings_and_durations_parsed() -> None:
    t = parse_topology(doc(b={"configs": {"segment.ms": "1h", "min.cleanable.dirty.ratio": 0.1,
                                          "preallocate": False}}))
    assert t.topic("b").configs == {"segment.ms": "3600000", "min.cleanable.dirty.ratio": "0.1",
                                    "preallocate": "false"}


def test_apply_refuses_inconsistent_topology() -> None:
    with pytest.raises(TopologyError, match="consumed but has no dlq"):
        apply(parse_topology(doc(b={"consumed": True})), {"bootstrap.servers": "127.0.0.1:1"})


# ------------------------------------------------------------------------------------ loading errors


def test_validation_error_names_topic_and_field() -> None:
    with pytest.raises(TopologyError) as info:
        parse_topology(doc({"name": "c", "kind": "bogus", "partitions": 0, "colour": "red"}))
    msg = str(info.value)
    assert "topic 'c' (topics[2]) field kind" in msg
    assert "topic 'c' (topics[2]) field partitions" in msg
    assert "topic 'c' (topics[2]) field colour" in msg


def test_bad_retention_names_topic() -> None:
    with pytest.raises(TopologyError, match=r"topic 'b' \(topics\[1\]\) field retention.*'7x'"):
        parse_topology(doc(b={"retention": "7x"}))


def test_configs_may_not_shadow_fields() -> None:
    with pytest.raises(TopologyError, match=r"topic 'b' \(topics\[1\]\) field configs.*`retention` field"):
        parse_topology(doc(b={"configs": {"retention.ms": 5}}))


def test_illegal_topic_name() -> None:
    with pytest.raises(TopologyError, match="not a legal Kafka topic name"):
        parse_topology(doc(b={"name": "bad name!"}))


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(TopologyError, match="mapping at the top level"):
        load_topology(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("topics: [\n")
    with pytest.raises(TopologyError, match="not valid YAML"):
        load_topology(broken)


def test_default_path_is_package_data() -> None:
    assert DEFAULT_TOPOLOGY_PATH.name == "topics.yaml" and DEFAULT_TOPOLOGY_PATH.is_file()


# ------------------------------------------------------------------------------------ retention parsing


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1000, 1000), ("1000", 1000), (-1, -1), ("-1", -1), ("forever", -1), ("infinite", -1),
        ("500ms", 500), ("45s", 45_000), ("30m", 1_800_000), ("12h", 43_200_000),
        ("7d", 604_800_000), ("2w", 1_209_600_000), ("1d12h", 129_600_000), (" 7D ", 604_800_000),
        ("0", 0),
    ],
)
def test_parse_duration_ms(value: int | str, expected: int) -> None:
    assert parse_duration_ms(value) == expected


@pytest.mark.parametrize("value", ["", "7x", "d7", "7d-", "1.5d", "-2", -2, "7 days", True])
def test_parse_duration_ms_rejects(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(value)


# ------------------------------------------------------------------------------------ the report


def test_apply_report_render_and_exit_codes() -> None:
    report = ApplyReport(prefix="p.", created=["p.a"], ok=["p.b"])
    assert report.exit_code == 0
    assert "created       p.a" in report.render()
    report.drift.append(Drift("p.c", "partitions", "4", "2"))
    report.drift.append(Drift("p.c", "retention.ms", "604800000", "86400000"))
    report.unverified.append(Unverified("p.b", "segment.ms", "3600000"))
    assert report.exit_code == 1
    text = report.render()
    assert "DRIFT         p.c: partitions expected 4, broker has 2" in text
    assert "unverified    p.b: segment.ms" in text
    assert "1 created, 1 ok, 1 drifted, 1 configs unverified, 0 failed" in text
    data = report.as_dict()
    assert data["exit_code"] == 1
    assert data["drift"][0] == {"topic": "p.c", "setting": "partitions", "expected": "4", "actual": "2"}
    report.failed["p.d"] = "boom"
    assert report.exit_code == 2
    dry = ApplyReport(dry_run=True, created=["x"])
    assert "would create  x" in dry.render() and "dry run" in dry.render()
