"""The alerts and KPI views in Redis: what `GET /v1/alerts` and `GET /v1/kpis` answer from.

Alerts: one JSON document per alert id in the hash `{prefix}alerts` (field = alert id), built from
`alerts.anomalies` by the view sink (`AlertsRoute`)::

    {"alert_id", "kind", "subject", "severity", "status": "open" | "resolved", "summary", "evidence",
     "detector", "opened_at", "updated_at", "resolved_at", "updates"}

The anomalies worker gives every change of one alert the same `evidence.alert_id` and says what
changed in `evidence.status` (open, updated, resolved); alerts other processors emit without those
(per order or per SKU, e.g. `oversold`) are one document per event, id = the event id, status open.
Merging is idempotent and order-tolerant: a change older than the document's `updated_at` adds
nothing but can still resolve it; a resolved alert stays resolved and takes no more updates. Resolved alerts older than
`RESOLVED_KEEP_DAYS` are dropped when the hash is written (bounded size).

KPIs: the anomalies worker writes its KPI reports (`processors.anomalies.kpis.report`) per window in
the hash `{prefix}kpis` (field = window: 1h, 24h, 7d), each a JSON document.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from shopstream.schemas.models import AnomalyAlert
from shopstream.serde import AvroSerde, SerdeError

RESOLVED_KEEP_DAYS = 30
STATUSES = ("open", "resolved")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_change(alert: AnomalyAlert) -> dict[str, Any]:
    """One AnomalyAlert as a change to its alert's document."""
    evidence = dict(alert.evidence)
    alert_id = evidence.pop("alert_id", None) or str(alert.meta.event_id)
    status = evidence.pop("status", "open")
    return {"alert_id": alert_id, "kind": alert.kind, "subject": alert.subject, "severity": alert.severity,
            "change": status if status in ("open", "updated", "resolved") else "open",
            "summary": alert.summary, "evidence": evidence, "detector": evidence.pop("detector", None),
            "at": _iso(alert.detected_at), "opened_at": evidence.pop("opened_at", None) or _iso(alert.detected_at)}


def merge_alert(existing: dict[str, Any] | None, change: dict[str, Any]) -> dict[str, Any]:
    """The alert document after `change` (see the module docstring for the rules)."""
    if existing is None:
        doc = {"alert_id": change["alert_id"], "kind": change["kind"], "subject": change["subject"],
               "severity": change["severity"], "status": "open", "summary": change["summary"],
               "evidence": change["evidence"], "detector": change["detector"], "opened_at": change["opened_at"],
               "updated_at": change["at"], "resolved_at": None, "updates": 0}
    else:
        doc = dict(existing)
    if change["change"] == "resolved":
        if doc["status"] != "resolved":
            doc["status"], doc["resolved_at"] = "resolved", change["at"]
        return doc
    if existing is not None and doc["status"] != "resolved" and change["at"] > doc["updated_at"]:
        doc.update(summary=change["summary"], evidence=change["evidence"], severity=change["severity"],
                   updated_at=change["at"], updates=doc["updates"] + 1)
    return doc


def matches(doc: dict[str, Any], status: str | None, kind: str | None, subject: str | None) -> bool:
    """Whether a document passes the list filters (None: any)."""
    return ((status is None or doc["status"] == status) and (kind is None or doc["kind"] == kind)
            and (subject is None or doc["subject"] == subject))


def _expired(doc: dict[str, Any], now: datetime) -> bool:
    resolved = doc.get("resolved_at")
    if doc.get("status") != "resolved" or not resolved:
        return False
    return datetime.fromisoformat(resolved.replace("Z", "+00:00")) < now - timedelta(days=RESOLVED_KEEP_DAYS)


class AlertStore:
    """The sink's side: merges alert changes into the hash (one reader per alert: keyed by subject)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.key = f"{prefix}alerts"

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout_s: float = 5.0) -> AlertStore:
        """A store with its own client."""
        return cls(redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s), prefix)

    def put_many(self, alerts: list[AnomalyAlert]) -> list[bool]:
        """Merge a batch of alert changes (one round trip to read, one to write); True per change applied."""
        if not alerts:
            return []
        changes = [alert_change(a) for a in alerts]
        ids = sorted({c["alert_id"] for c in changes})
        stored = dict(zip(ids, self.client.hmget(self.key, ids), strict=True))
        docs: dict[str, dict[str, Any] | None] = {i: (orjson.loads(v) if v else None) for i, v in stored.items()}
        applied = []
        for change in changes:
            before = docs[change["alert_id"]]
            after = merge_alert(before, change)
            applied.append(after != before)
            docs[change["alert_id"]] = after
        now = datetime.now(UTC)
        keep: dict[Any, Any] = {i: orjson.dumps(d) for i, d in docs.items() if d is not None and not _expired(d, now)}
        drop = [i for i, d in docs.items() if d is not None and _expired(d, now)]
        pipe = self.client.pipeline()
        if keep:
            pipe.hset(self.key, mapping=keep)
        if drop:
            pipe.hdel(self.key, *drop)
        pipe.execute()
        return applied

    def close(self) -> None:
        """Close the client."""
        self.client.close()


class KpiStore:
    """The anomalies worker's side: the latest KPI report per window."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.key = f"{prefix}kpis"

    def put(self, reports: dict[str, dict[str, Any]]) -> None:
        """Store the reports (field = window)."""
        if reports:
            self.client.hset(self.key, mapping={w: orjson.dumps(r) for w, r in reports.items()})


class AsyncInsights:
    """The API's side: alerts listed with filters, KPI reports by window."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.alerts_key = f"{prefix}alerts"
        self.kpis_key = f"{prefix}kpis"

    async def alerts(self, status: str | None, kind: str | None, subject: str | None,
                     limit: int) -> list[dict[str, Any]]:
        """Matching alerts, newest change first, at most `limit`."""
        raw = await self.client.hvals(self.alerts_key)
        docs = [d for d in (orjson.loads(v) for v in raw) if matches(d, status, kind, subject)]
        docs.sort(key=lambda d: (d["updated_at"], d["alert_id"]), reverse=True)
        return docs[:limit]

    async def work_items_between(self, start_ms: int, end_ms: int) -> int:
        """Work items created in [start_ms, end_ms) (the work-queue index sorts by creation time)."""
        index = self.alerts_key.removesuffix("alerts") + "work-items:index"
        return int(await self.client.zlexcount(index, f"[{start_ms:015d}", f"({end_ms:015d}"))

    async def kpis(self, window: str) -> bytes | None:
        """The stored report of `window`, as stored (JSON bytes), or None."""
        value = await self.client.hget(self.kpis_key, window)
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)


class NotAnAlert(SerdeError):
    """A well-formed record that is not an AnomalyAlert."""


class AlertsRoute:
    """The view sink's route `alerts.anomalies` -> the alerts view (not compacted: no tombstones)."""

    tombstones = False

    def __init__(self, topic: str, serde: AvroSerde, store: AlertStore) -> None:
        self.topic = topic
        self.serde = serde
        self.store = store

    def decode(self, value: bytes | None) -> AnomalyAlert:
        """The record as an AnomalyAlert (SerdeError otherwise: parked)."""
        record = self.serde.decode(value)
        if not isinstance(record, AnomalyAlert):
            raise NotAnAlert(f"{type(record).__name__} is not an AnomalyAlert")
        return record

    def entry(self, decoded: AnomalyAlert, key: bytes | None) -> AnomalyAlert:
        """The alert itself is the entry."""
        return decoded

    def put_many(self, entries: list[AnomalyAlert]) -> list[bool]:
        """Merge the batch's alert changes."""
        return self.store.put_many(entries)

    def delete(self, key: str) -> bool:  # never called: tombstones is False
        """alerts.anomalies takes no tombstones."""
        raise TypeError(f"{self.topic} takes no tombstones")

    def close(self) -> None:
        """Close the store's client."""
        self.store.close()
