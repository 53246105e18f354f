"""`shopstream dlq list`: every DLQ topic of the topology with its record count, oldest/newest age and
counts per error class and failure fingerprint, each with one example message (`--json` for machines).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import IO, Any

from shopstream.config import Settings
from shopstream.metrics import DLQ_BACKLOG
from shopstream.topology import Topology

from .dlq_common import dlq_topics, now_ms, one_line, safe_out
from .dlq_filters import DeadLetter, age, iso
from .dlq_scan import TopicMissing, broker_topics, scan


@dataclass
class _Group:
    count: int = 0
    error_class: str | None = None
    example: str | None = None


@dataclass
class _TopicSummary:
    topic: str
    physical: str
    present: bool = True
    error: str | None = None
    records: int = 0
    oldest_ms: int | None = None
    newest_ms: int | None = None
    by_fingerprint: dict[str, _Group] = field(default_factory=dict)
    by_error_class: dict[str, _Group] = field(default_factory=dict)

    def add(self, dl: DeadLetter) -> None:
        self.records += 1
        if dl.timestamp_ms is not None:
            self.oldest_ms = dl.timestamp_ms if self.oldest_ms is None else min(self.oldest_ms, dl.timestamp_ms)
            self.newest_ms = dl.timestamp_ms if self.newest_ms is None else max(self.newest_ms, dl.timestamp_ms)
        for groups, key in ((self.by_fingerprint, dl.fingerprint or "-"), (self.by_error_class, dl.error_class or "-")):
            group = groups.setdefault(key, _Group(error_class=dl.error_class, example=dl.error_message))
            group.count += 1

    def as_dict(self, now: int) -> dict[str, Any]:
        def groups(items: dict[str, _Group], name: str) -> list[dict[str, Any]]:
            ordered = sorted(items.items(), key=lambda kv: (-kv[1].count, kv[0]))
            out = []
            for key, g in ordered:
                entry: dict[str, Any] = {name: key, "count": g.count}
                if name == "fingerprint":
                    entry["error_class"] = g.error_class
                entry["example_message"] = g.example
                out.append(entry)
            return out

        return {
            "topic": self.topic, "physical_topic": self.physical, "present": self.present, "error": self.error,
            "records": self.records,
            "oldest": iso(self.oldest_ms), "newest": iso(self.newest_ms),
            "oldest_age_s": None if self.oldest_ms is None else max(0, (now - self.oldest_ms) // 1000),
            "newest_age_s": None if self.newest_ms is None else max(0, (now - self.newest_ms) // 1000),
            "by_fingerprint": groups(self.by_fingerprint, "fingerprint"),
            "by_error_class": groups(self.by_error_class, "error_class"),
        }


def dlq_list(settings: Settings, topology: Topology, *, as_json: bool = False, out: IO[str] | None = None) -> int:
    """Every DLQ topic: record count, oldest/newest age, counts per fingerprint and error class.

    Sets the `shopstream_dlq_backlog{dlq_topic}` gauge. Exit 1 if a DLQ topic is missing or unreadable.
    """
    out = safe_out(out or sys.stdout)  # what a DLQ holds may carry terminal escape sequences
    existing = broker_topics(settings)
    summaries: list[_TopicSummary] = []
    for topic in dlq_topics(topology):
        summary = _TopicSummary(topic.name, topic.physical_name(settings.topic_prefix))
        try:
            if summary.physical not in existing:
                raise TopicMissing(summary.physical)
            for dl in scan(settings, summary.physical):
                summary.add(dl)
        except TopicMissing as exc:
            summary.present, summary.error = False, str(exc)
        except Exception as exc:  # ScanError, broker away: report it for this topic and go on
            summary.error = str(exc)
        if summary.present and summary.error is None:
            DLQ_BACKLOG.labels(summary.physical).set(summary.records)
        summaries.append(summary)
    now = now_ms()
    if as_json:
        print(json.dumps({"topics": [s.as_dict(now) for s in summaries],
                          "total_records": sum(s.records for s in summaries)}, indent=2), file=out)
    else:
        width = max([len(s.physical) for s in summaries] + [9])
        print(f"{'DLQ TOPIC':<{width}}  {'RECORDS':>7}  {'OLDEST':>8}  {'NEWEST':>8}", file=out)
        for s in summaries:
            if s.error is not None:
                print(f"{s.physical:<{width}}  {'-':>7}  {'-':>8}  {'-':>8}  ERROR: {s.error}", file=out)
                continue
            print(f"{s.physical:<{width}}  {s.records:>7}  {age(s.oldest_ms, now):>8}  {age(s.newest_ms, now):>8}",
                  file=out)
            if not s.records:
                continue
            print("    by error class:", file=out)
            for key, g in sorted(s.by_error_class.items(), key=lambda kv: (-kv[1].count, kv[0])):
                print(f"    {g.count:>7}  {key}  e.g. \"{one_line(g.example)}\"", file=out)
            print("    by fingerprint:", file=out)
            for key, g in sorted(s.by_fingerprint.items(), key=lambda kv: (-kv[1].count, kv[0])):
                short = (g.error_class or "?").rsplit(".", 1)[-1]
                print(f"    {g.count:>7}  {key}  {short}  e.g. \"{one_line(g.example)}\"", file=out)
        total = sum(s.records for s in summaries)
        print(f"{len(summaries)} DLQ topics, {total} records", file=out)
    return 1 if any(s.error for s in summaries) else 0
