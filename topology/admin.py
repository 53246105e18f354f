"""The broker side of the topology: create missing topics, report drift of existing ones.

`apply()` never alters or deletes anything. For each topic of the topology it either creates it (with
partitions, replication and every config set explicitly) or compares the existing topic with the
topology: a differing partition count, replication factor or reported config value is *drift*; a config
the broker does not report back (Tansu only reports configs set at creation) is *unverified*, not drift.
The result is an `ApplyReport` for humans (`render()`), scripts (`as_dict()`) and the CLI (`exit_code`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from .checks import check
from .topics import Topic, Topology, TopologyError, normalize_cleanup_policy

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_FAILED = 2


@dataclass(frozen=True)
class Drift:
    """An existing topic differs from the topology in `setting` (partitions, replication, a config)."""

    topic: str
    setting: str
    expected: str
    actual: str


@dataclass(frozen=True)
class Unverified:
    """A config of an existing topic the broker did not report, so it could not be compared."""

    topic: str
    setting: str
    expected: str


@dataclass
class ApplyReport:
    """What `apply` did (or, with `dry_run`, would do). Topic names are physical (prefix included)."""

    prefix: str = ""
    dry_run: bool = False
    created: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    unverified: list[Unverified] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def drifted_topics(self) -> list[str]:
        """Physical names of topics with at least one drift, in order of first appearance."""
        return list(dict.fromkeys(d.topic for d in self.drift))

    @property
    def exit_code(self) -> int:
        """0: all created or ok; 1: drift found; 2: a topic could not be created or inspected."""
        if self.failed:
            return EXIT_FAILED
        return EXIT_DRIFT if self.drift else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for `--json`)."""
        return {
            "prefix": self.prefix,
            "dry_run": self.dry_run,
            "created": list(self.created),
            "ok": list(self.ok),
            "drift": [asdict(d) for d in self.drift],
            "unverified": [asdict(u) for u in self.unverified],
            "failed": dict(self.failed),
            "exit_code": self.exit_code,
        }

    def render(self) -> str:
        """A human summary: one line per created/drifted/unverified/failed item, then totals."""
        lines: list[str] = []
        verb = "would create" if self.dry_run else "created"
        lines.extend(f"{verb:<13} {name}" for name in self.created)
        lines.extend(f"{'DRIFT':<13} {d.topic}: {d.setting} expected {d.expected}, broker has {d.actual}"
                     for d in self.drift)
        lines.extend(f"{'unverified':<13} {u.topic}: {u.setting} "
                     f"(expected {u.expected}; the broker does not report it)" for u in self.unverified)
        lines.extend(f"{'FAILED':<13} {name}: {err}" for name, err in self.failed.items())
        summary = (f"{len(self.created)} {verb}, {len(self.ok)} ok, {len(self.drifted_topics)} drifted, "
                   f"{len(self.unverified)} configs unverified, {len(self.failed)} failed")
        if self.dry_run:
            summary += " (dry run: nothing changed)"
        if self.drift:
            summary += ("\ndrift is reported, never fixed: changing partitions or configs of a live topic "
                        "is a human decision")
        lines.append(summary)
        return "\n".join(lines)


def _same(key: str, expected: str, actual: str) -> bool:
    if key == "cleanup.policy":
        return normalize_cleanup_policy(expected) == normalize_cleanup_policy(actual)
    if expected == actual:
        return True
    try:  # "0.1" vs "0.10", "1" vs "1.0"
        return float(expected) == float(actual)
    except ValueError:
        return expected.strip().lower() == actual.strip().lower()


def _compare(topic: Topic, physical: str, partitions: int, replication: int,
             reported: dict[str, str | None], report: ApplyReport) -> None:
    drift: list[Drift] = []
    if partitions != topic.partitions:
        drift.append(Drift(physical, "partitions", str(topic.partitions), str(partitions)))
    if replication and replication != topic.replication_factor:
        drift.append(Drift(physical, "replication_factor", str(topic.replication_factor), str(replication)))
    for key, expected in topic.kafka_configs().items():
        actual = reported.get(key)
        if actual is None:
            report.unverified.append(Unverified(physical, key, expected))
        elif not _same(key, expected, actual):
            drift.append(Drift(physical, key, expected, actual))
    if drift:
        report.drift.extend(drift)
    else:
        report.ok.append(physical)


def _describe(admin: AdminClient, names: list[str],
              timeout_s: float) -> dict[str, dict[str, str | None] | str]:
    """Reported config values per topic, or an error string."""
    if not names:
        return {}
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names],
                                     request_timeout=timeout_s)
    out: dict[str, dict[str, str | None] | str] = {}
    for resource, future in futures.items():
        try:
            entries = future.result(timeout=timeout_s)
        except Exception as exc:
            out[resource.name] = f"describe_configs failed: {exc}"
            continue
        out[resource.name] = {k: e.value for k, e in entries.items()}
    return out


def apply(topology: Topology, client_config: dict[str, Any], prefix: str = "", dry_run: bool = False,
          timeout_s: float = 15.0) -> ApplyReport:
    """Create the topics of `topology` that are missing on the broker; report drift of the existing ones.

    `client_config` is librdkafka configuration (e.g. `Settings.kafka_client_config()`); the physical
    name of each topic is `prefix` + logical name. With `dry_run` nothing is created: `created` lists
    what would be. Nothing existing is ever altered or deleted. Raises TopologyError if `check()` finds
    structural problems (an inconsistent topology is never applied) and KafkaException if the broker
    cannot be reached within `timeout_s`.
    """
    problems = check(topology)
    if problems:
        raise TopologyError("refusing to apply an inconsistent topology:\n  " + "\n  ".join(problems))
    report = ApplyReport(prefix=prefix, dry_run=dry_run)
    admin = AdminClient({"socket.timeout.ms": int(timeout_s * 1000), **client_config})
    metadata = admin.list_topics(timeout=timeout_s)
    existing = {name: meta for name, meta in metadata.topics.items() if meta.error is None}

    missing = [t for t in topology.topics if t.physical_name(prefix) not in existing]
    present = [t for t in topology.topics if t.physical_name(prefix) in existing]

    if dry_run:
        report.created.extend(t.physical_name(prefix) for t in missing)
    elif missing:
        new = [NewTopic(t.physical_name(prefix), num_partitions=t.partitions,
                        replication_factor=t.replication_factor, config=t.kafka_configs()) for t in missing]
        futures = admin.create_topics(new, operation_timeout=timeout_s, request_timeout=timeout_s)
        raced: list[Topic] = []
        for t in missing:
            name = t.physical_name(prefix)
            try:
                futures[name].result(timeout=timeout_s)
                report.created.append(name)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    raced.append(t)  # created concurrently by someone else: compare it below
                else:
                    report.failed[name] = str(err or exc)
            except Exception as exc:
                report.failed[name] = str(exc)
        if raced:
            metadata = admin.list_topics(timeout=timeout_s)
            existing.update({n: m for n, m in metadata.topics.items() if m.error is None})
            present.extend(raced)

    configs = _describe(admin, [t.physical_name(prefix) for t in present], timeout_s)
    for t in present:
        name = t.physical_name(prefix)
        meta = existing.get(name)
        reported = configs.get(name, {})
        if meta is None or isinstance(reported, str):
            report.failed[name] = reported if isinstance(reported, str) else "vanished from metadata"
            continue
        replicas = {len(p.replicas) for p in meta.partitions.values()}
        replication = max(replicas) if replicas else 0
        _compare(t, name, len(meta.partitions), replication, reported, report)
    return report
