"""One open alert per ongoing anomaly: open -> updated -> resolved (pure).

An alert is keyed by detector and subject. The first abnormal observation opens it (its id is derived
from detector, subject and the time it opened, so a replay re-creates the same id); later abnormal
observations update it (same id, new observed values); it is resolved once no abnormal observation
was seen for the detector's `resolve_after` (event time). Alerts of detectors in `shadow` mode are
computed the same way but flagged, so the adapter can count instead of publishing them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["open", "updated", "resolved"]
_NAMESPACE = uuid.UUID("6f1d3c1e-3b7a-4c55-9a55-6e6f6d616c79")


@dataclass(frozen=True)
class AlertEvent:
    """One change of an alert, as the worker publishes it on alerts.anomalies."""

    alert_id: str
    detector: str
    kind: str
    subject: str
    severity: str
    status: Status
    summary: str
    at_ms: int
    evidence: dict[str, str] = field(default_factory=dict)
    shadow: bool = False

    def full_evidence(self, version: str) -> dict[str, str]:
        """The evidence map with the lifecycle fields every alert carries (see the README)."""
        return {**self.evidence, "alert_id": self.alert_id, "status": self.status, "detector": self.detector,
                "rules_version": version}


def iso(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def alert_id(detector: str, subject: str, opened_ms: int) -> str:
    """The deterministic id of an alert (same history, same id)."""
    return str(uuid.uuid5(_NAMESPACE, f"{detector}|{subject}|{opened_ms}"))


class AlertBook:
    """The open alerts of an engine's state (a dict `key -> entry` kept JSON-able for the changelog).

    `changed` is called with the key of every entry opened, updated or resolved (the engine's record of
    what its changelog must rewrite or delete)."""

    def __init__(self, entries: dict[str, Any], changed: Callable[[str], None] | None = None) -> None:
        self.entries = entries
        self._changed = changed or (lambda _key: None)

    def abnormal(self, detector: Any, subject: str, at_ms: int, summary: str, evidence: dict[str, str],
                 kind: str | None = None) -> AlertEvent:
        """An abnormal observation: opens the alert, or updates the open one."""
        key = f"{detector.id}|{subject}"
        entry = self.entries.get(key)
        if entry is None:
            entry = {"id": alert_id(detector.id, subject, at_ms), "kind": kind or detector.kind,
                     "opened": at_ms, "last": at_ms, "severity": detector.severity}
            self.entries[key] = entry
            status: Status = "open"
        else:
            entry["last"] = max(entry["last"], at_ms)
            status = "updated"
        self._changed(key)
        event_evidence = {**evidence, "opened_at": iso(entry["opened"])}
        return AlertEvent(entry["id"], detector.id, entry["kind"], subject, entry["severity"], status, summary,
                          at_ms, event_evidence, detector.mode == "shadow")

    def normal(self, detector: Any, subject: str, at_ms: int, evidence: dict[str, str] | None = None,
               *, at_once: bool = False) -> AlertEvent | None:
        """A normal observation (or none) at `at_ms`: resolves the open alert after `resolve_after`."""
        key = f"{detector.id}|{subject}"
        entry = self.entries.get(key)
        if entry is None:
            return None
        if not at_once and at_ms - entry["last"] < detector.resolve_after_ms:
            return None
        del self.entries[key]
        self._changed(key)
        return AlertEvent(entry["id"], detector.id, entry["kind"], subject, entry["severity"], "resolved",
                          f"{entry['kind']} for {subject} is back to normal", at_ms,
                          {**(evidence or {}), "opened_at": iso(entry["opened"])}, detector.mode == "shadow")

    def open_subjects(self, detector_id: str) -> list[str]:
        """Subjects with an open alert of one detector (sorted: deterministic output order)."""
        prefix = f"{detector_id}|"
        return sorted(k[len(prefix):] for k in self.entries if k.startswith(prefix))
