"""`apply()` on a real broker: creates every topic with its configs, idempotent, reports drift, dry-runs."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from shopstream.topology import apply, load_topology

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]

TIMEOUT_S = 10.0


def admin_for(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def topics_with_prefix(admin: AdminClient, prefix: str) -> dict[str, int]:
    """Physical name -> partition count of the broker's topics starting with `prefix`."""
    md = admin.list_topics(timeout=TIMEOUT_S)
    return {n: len(t.partitions) for n, t in md.topics.items() if n.startswith(prefix) and t.error is None}


def describe(admin: AdminClient, names: list[str]) -> dict[str, dict[str, str | None]]:
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names],
                                     request_timeout=TIMEOUT_S)
    return {r.name: {k: e.value for k, e in f.result(timeout=TIMEOUT_S).items()} for r, f in futures.items()}


def test_apply_creates_every_topic_then_is_idempotent(kafka_bootstrap: str, unique: str) -> None:
    topology = load_topology()
    prefix = f"t{unique}."
    conf = {"bootstrap.servers": kafka_bootstrap}

    report = apply(topology, conf, prefix=prefix, timeout_s=TIMEOUT_S)
    assert report.failed == {}
    assert report.created == topology.physical_names(prefix)
    assert report.ok == [] and report.drift == []
    assert report.exit_code == 0

    admin = admin_for(kafka_bootstrap)
    on_broker = topics_with_prefix(admin, prefix)
    assert on_broker == {t.physical_name(prefix): t.partitions for t in topology.topics}
    reported = describe(admin, list(on_broker))
    for topic in topology.topics:
        configs = reported[topic.physical_name(prefix)]
        for key, value in topic.kafka_configs().items():
            assert configs.get(key) == value, (topic.name, key)
    assert reported[f"{prefix}orders.state"]["cleanup.policy"] == "compact"
    assert reported[f"{prefix}payments.dlq"]["retention.ms"] == str(14 * 86_400_000)

    again = apply(topology, conf, prefix=prefix, timeout_s=TIMEOUT_S)
    assert again.created == [] and again.drift == [] and again.failed == {}
    assert again.ok == topology.physical_names(prefix)
    assert again.exit_code == 0
    assert "0 created" in again.render()


def test_drift_is_reported_and_left_untouched(kafka_bootstrap: str, unique: str) -> None:
    topology = load_topology()
    prefix = f"t{unique}."
    admin = admin_for(kafka_bootstrap)
    wrong = f"{prefix}payments"
    one_day = str(86_400_000)
    futures = admin.create_topics(
        [NewTopic(wrong, num_partitions=2, replication_factor=1,
                  config={"retention.ms": one_day, "cleanup.policy": "delete"})],
        operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S,
    )
    futures[wrong].result(timeout=TIMEOUT_S)

    report = apply(topology, {"bootstrap.servers": kafka_bootstrap}, prefix=prefix, timeout_s=TIMEOUT_S)
    assert report.failed == {}
    assert report.exit_code == 1
    assert report.drifted_topics == [wrong]
    drift = {d.setting: (d.expected, d.actual) for d in report.drift}
    assert drift["partitions"] == ("4", "2")
    assert drift["retention.ms"] == (str(7 * 86_400_000), one_day)
    assert "cleanup.policy" not in drift
    assert wrong not in report.created and wrong not in report.ok
    # a config the pre-created topic never had is unverified on Tansu, or compared on brokers reporting it
    assert all(u.topic == wrong for u in report.unverified)
    assert f"DRIFT         {wrong}: partitions expected 4, broker has 2" in report.render()
    assert report.as_dict()["exit_code"] == 1
    # every other topic was created
    assert set(report.created) == set(topology.physical_names(prefix)) - {wrong}

    # untouched: still 2 partitions and a one-day retention
    assert topics_with_prefix(admin, wrong)[wrong] == 2
    assert describe(admin, [wrong])[wrong]["retention.ms"] == one_day


def test_dry_run_creates_nothing(kafka_bootstrap: str, unique: str) -> None:
    topology = load_topology()
    prefix = f"t{unique}."
    report = apply(topology, {"bootstrap.servers": kafka_bootstrap}, prefix=prefix, dry_run=True,
                   timeout_s=TIMEOUT_S)
    assert report.dry_run
    assert report.created == topology.physical_names(prefix)
    assert report.exit_code == 0
    assert "would create" in report.render()
    assert topics_with_prefix(admin_for(kafka_bootstrap), prefix) == {}
