"""What `shopstream topics check` finds wrong with a topology: its consistency, and what production needs.

`check()` lists every inconsistency of a topology (names, DLQ companions, co-partition groups, records the
schemas do not define); `check_production()` what keeps it from surviving the loss of one broker.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Mapping

from .topics import CLEANUP_POLICIES, PRODUCTION_MIN_INSYNC, PRODUCTION_MIN_REPLICATION, Topic, Topology


def check_production(topology: Topology) -> list[str]:
    """What keeps `topology` from being production-safe: one line per topic with replication below 3 or
    min.insync.replicas below 2 (or not set), so one broker lost loses no acknowledged write."""
    problems: list[str] = []
    for t in topology.topics:
        if t.replication_factor < PRODUCTION_MIN_REPLICATION:
            problems.append(f"topic {t.name!r}: replication_factor {t.replication_factor} < "
                            f"{PRODUCTION_MIN_REPLICATION} (production)")
        isr = t.configs.get("min.insync.replicas")
        if isr is None or not isr.isdigit() or int(isr) < PRODUCTION_MIN_INSYNC:
            problems.append(f"topic {t.name!r}: min.insync.replicas {isr or 'unset'} < "
                            f"{PRODUCTION_MIN_INSYNC} (production)")
    return problems


def known_record_names() -> set[str] | None:
    """Record names the schemas package defines (full and short names), or None if it cannot tell yet.

    Uses `shopstream.schemas.load_named_types()` (full name -> raw schema) when it exists; only named
    types of Avro type `record` count (an enum is not something a topic carries).
    """
    try:
        schemas = importlib.import_module("shopstream.schemas")
    except ImportError:
        return None
    loader = getattr(schemas, "load_named_types", None)
    if not callable(loader):
        return None
    named = loader()
    items = named.items() if isinstance(named, Mapping) else ((n, None) for n in named)
    names: set[str] = set()
    for name, raw in items:
        if not isinstance(name, str) or (isinstance(raw, Mapping) and raw.get("type") != "record"):
            continue
        names.add(name)
        names.add(name.rsplit(".", 1)[-1])
    return names


def check(topology: Topology, known_records: set[str] | None = None) -> list[str]:
    """Every inconsistency in `topology`, one human-readable line each (empty list: all good).

    Checks: duplicate names; unknown cleanup policy; compacted topic without key; co-partition group
    with unequal partition counts or mixed keys; consumed topic without DLQ; DLQ of a DLQ; a `dlq` that
    points at a non-DLQ topic; DLQ topic that compacts (would drop failures sharing a key); non-DLQ Avro
    topic carrying no records (a `value_format: json` topic must declare none); min.insync.replicas above
    the replication factor; and, when `known_records` is given (see `known_record_names()`), record names
    the schemas do not define.
    """
    problems: list[str] = []
    by_name: dict[str, Topic] = {}
    counts: dict[str, int] = defaultdict(int)
    for t in topology.topics:
        counts[t.name] += 1
        by_name.setdefault(t.name, t)
    for name, n in counts.items():
        if n > 1:
            problems.append(f"duplicate topic name {name!r} ({n} definitions)")

    groups: dict[str, list[Topic]] = defaultdict(list)
    for t in topology.topics:
        if t.cleanup_policy not in CLEANUP_POLICIES:
            problems.append(
                f"topic {t.name!r}: unknown cleanup_policy {t.cleanup_policy!r} "
                f"(expected one of: {', '.join(sorted(CLEANUP_POLICIES))})"
            )
        if t.compacted and not (t.key and t.key.strip()):
            problems.append(f"topic {t.name!r}: compacted ({t.cleanup_policy!r}) but has no key")
        if t.kind == "dlq":
            if t.dlq is not None:
                problems.append(f"topic {t.name!r} is a DLQ but has a dlq {t.dlq!r} (DLQ of a DLQ)")
            if t.compacted:
                problems.append(f"DLQ topic {t.name!r} is compacted: failures sharing a key would be dropped")
        else:
            if t.consumed and t.dlq is None:
                problems.append(f"topic {t.name!r} is consumed but has no dlq companion")
            if t.value_format == "avro" and not t.records:
                problems.append(f"topic {t.name!r} declares no records")
            if t.value_format == "json" and t.records:
                problems.append(f"topic {t.name!r} carries JSON values but declares Avro records")
        if t.dlq is not None and t.kind != "dlq":
            target = by_name.get(t.dlq)
            if t.dlq == t.name:
                problems.append(f"topic {t.name!r}: dlq points at itself")
            elif target is None:
                problems.append(f"topic {t.name!r}: dlq {t.dlq!r} is not a topic of the topology")
            elif target.kind != "dlq":
                problems.append(f"topic {t.name!r}: dlq {t.dlq!r} is a {target.kind} topic, not a DLQ")
        isr = t.configs.get("min.insync.replicas")
        if isr is not None and isr.isdigit() and int(isr) > t.replication_factor:
            problems.append(
                f"topic {t.name!r}: min.insync.replicas {isr} > replication_factor {t.replication_factor}"
            )
        if known_records is not None:
            unknown = [r for r in t.records if r not in known_records]
            if unknown:
                problems.append(f"topic {t.name!r}: records not defined in the schemas: {', '.join(unknown)}")
        if t.copartition_group:
            groups[t.copartition_group].append(t)

    for group, members in sorted(groups.items()):
        partitions = {t.partitions for t in members}
        if len(partitions) > 1:
            detail = ", ".join(f"{t.name}={t.partitions}" for t in members)
            problems.append(f"copartition group {group!r}: partition counts differ ({detail})")
        keys = {t.key for t in members}
        if len(keys) > 1:
            detail = ", ".join(f"{t.name}={t.key}" for t in members)
            problems.append(f"copartition group {group!r}: members use different keys ({detail})")
    return problems
