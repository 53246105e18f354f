"""What the anomalies worker writes, as plain values (pure): facts on `anomalies.facts`, the engine state
split into changelog sections, and alert changes as AnomalyAlert / ReviewItem records.

State sections: the order index and the seen event ids grow with traffic, so they are spread over
`BUCKETS` keys each (`orders:NN`, `seen:NN`, NN = crc32 of the id mod BUCKETS) and a batch rewrites only
the buckets it touched; everything else (windows, baselines, open alerts, stock, KPIs) is `core`,
rewritten every batch. Assembling the sections gives back exactly the engine's state dict.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from shopstream.schemas.models import AnomalyAlert, EventMeta, ReviewItem

from .alerts import AlertEvent
from .engine import empty_state
from .facts import Fact

BUCKETS = 32
SPLIT = ("orders", "seen")
SOURCE = "shopstream.anomalies"
_NAMESPACE = uuid.UUID("0b1e6c53-7d0e-4f7e-8f7a-616e6f6d616c")


def bucket(ident: str) -> int:
    """The section bucket of an order or event id (stable across processes: crc32, not hash())."""
    return zlib.crc32(ident.encode()) % BUCKETS


def encode_fact(fact: Fact) -> bytes:
    """A fact as the JSON value of an `anomalies.facts` record."""
    return json.dumps(fact.to_list(), separators=(",", ":")).encode()


def decode_fact(data: bytes | None) -> Fact:
    """Back from `encode_fact` (ValueError/TypeError on anything else: the runner parks it)."""
    if data is None:
        raise ValueError("an anomalies.facts record without a value")
    raw = json.loads(data)
    if not isinstance(raw, list) or len(raw) != 14:
        raise ValueError("not a fact")
    return Fact.from_list(raw)


def section_keys(state: Mapping[str, Any]) -> list[bytes]:
    """Every section key of a state (all buckets of the split parts)."""
    return [b"core", *(f"{part}:{n:02d}".encode() for part in SPLIT for n in range(BUCKETS))]


def touched(fact: Fact) -> set[bytes]:
    """The section keys applying `fact` may change (core always)."""
    keys = {b"core", f"seen:{bucket(fact.event_id):02d}".encode()}
    if fact.order_id is not None:
        keys.add(f"orders:{bucket(fact.order_id):02d}".encode())
    return keys


def section(state: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """The JSON-able value of one section of the engine state."""
    name = key.decode()
    if name == "core":
        return {k: v for k, v in state.items() if k not in SPLIT}
    part, _, n = name.partition(":")
    wanted = int(n)
    return {k: v for k, v in state[part].items() if bucket(k) == wanted}


def assemble(sections: Iterable[tuple[bytes, Any]]) -> dict[str, Any]:
    """The engine state from its stored sections (an empty state when there are none)."""
    state = empty_state()
    for key, value in sections:
        name = key.decode()
        if name == "core":
            state.update(value)
        elif name.partition(":")[0] in SPLIT:
            state[name.partition(":")[0]].update(value)
    return state


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def alert_record(event: AlertEvent, version: str) -> AnomalyAlert:
    """An alert change as the AnomalyAlert on `alerts.anomalies` (ids and times from event time: a re-run
    re-emits identical records, which the alerts view treats as duplicates)."""
    at = _at(event.at_ms)
    meta = EventMeta(event_id=str(uuid.uuid5(_NAMESPACE, f"{event.alert_id}|{event.status}|{event.at_ms}")),
                     event_type="AnomalyAlert", occurred_at=at, recorded_at=at, source=SOURCE,
                     source_event_id=event.alert_id, correlation_id=f"alert:{event.alert_id}")
    return AnomalyAlert(meta=meta, kind=event.kind, subject=event.subject, severity=event.severity,
                        summary=event.summary, evidence=event.full_evidence(version), detected_at=at)


def work_item(event: AlertEvent, version: str) -> ReviewItem | None:
    """The work item a critical alert opens on `review.queue` (None for anything else)."""
    if event.severity != "critical" or event.status != "open":
        return None
    at = _at(event.at_ms)
    meta = EventMeta(event_id=str(uuid.uuid5(_NAMESPACE, f"work-item|{event.alert_id}")), event_type="ReviewItem",
                     occurred_at=at, recorded_at=at, source=SOURCE, correlation_id=f"alert:{event.alert_id}")
    details = {**event.full_evidence(version), "subject": event.subject, "queue": "operations"}
    return ReviewItem(meta=meta, order_id="", kind=f"anomaly_{event.kind}", reason=event.summary, details=details,
                      event_id=event.alert_id, event_type="AnomalyAlert", rule=f"anomalies.{event.detector}")
