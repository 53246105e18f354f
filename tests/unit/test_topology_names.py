"""`shopstream.topology.names` and `topics.yaml` name the same topics (both directions)."""

from __future__ import annotations

from shopstream.topology import load_topology, names


def test_every_constant_is_a_topic_and_every_declared_topic_has_a_constant() -> None:
    topology = load_topology()
    constants = {getattr(names, n) for n in names.__all__}
    declared = {t.name for t in topology.topics if not (t.kind == "dlq" and t.dlq_of)}  # minus generated DLQs
    assert constants == declared
