"""What the anomalies worker writes, as plain values (pure): facts on `anomalies.facts` and alert changes
as AnomalyAlert / ReviewItem records (the engine state's changelog records: `changelog.py`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from shopstream.schemas.models import AnomalyAlert, EventMeta, ReviewItem

from .alerts import AlertEvent
from .facts import Fact

SOURCE = "shopstream.anomalies"
_NAMESPACE = uuid.UUID("0b1e6c53-7d0e-4f7e-8f7a-616e6f6d616c")


def encode_fact(fact: Fact) -> bytes:
    """A fact as the JSON value of an `anomalies.facts` record."""
    return orjson.dumps(fact.to_list())  # compact JSON, as json.dumps with separators, at a fraction of its cost


def decode_fact(data: bytes | None) -> Fact:
    """Back from `encode_fact` (ValueError/TypeError on anything else: the runner parks it)."""
    if data is None:
        raise ValueError("an anomalies.facts record without a value")
    raw = orjson.loads(data)
    if not isinstance(raw, list) or len(raw) not in (14, 15):
        raise ValueError("not a fact")
    return Fact.from_list(raw)


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
