"""The catalog's event clock (pure): the promotion timer runs on event time, not on the wall clock.

Per partition the clock is the newest event time seen there (`ProductUpserted.updated_at`,
`ProductDeleted.deleted_at`, `PromotionScheduled`'s `occurred_at`, `WorkItemDecided.decided_at`); it
never goes back. Before a record is applied, every promotion of the partition whose start or end the
clock has reached moves (`core.advance` at the clock), so the record sees the price the shop has at
its own time; a promotion scheduled or approved when the clock is already past its start (or end) moves
right after the record that scheduled or approved it. A replayed history therefore starts and ends each
promotion between the same two records, with the same commands (their ids and times come from the
promotion, not from when it ran).

Event time alone would stall a promotion on a quiet topic, so — like the anomalies worker's windows —
the wall clock may move the clock too, but only while the partition is live: the last record handled on
it was appended to Kafka at most `LIVE_LAG_MS` before it was handled (or none was handled since the
partition was assigned). A replay or a worker catching up on a backlog reads old records and is not
live, so the wall clock cannot end a promotion ahead of the records that came before its end.
"""

from __future__ import annotations

from datetime import datetime

from shopstream.schemas.models import ProductDeleted, ProductUpserted, PromotionScheduled, WorkItemDecided

#: The partition state's key of the clock (a NUL byte: never a SKU); its value `{"at": ISO time}`.
CLOCK_KEY = b"\x00clock"
#: A partition is live while its last handled record was at most this far behind its Kafka timestamp.
LIVE_LAG_MS = 5 * 60_000

CatalogEvent = ProductUpserted | ProductDeleted | PromotionScheduled | WorkItemDecided


def event_time(event: CatalogEvent) -> datetime:
    """The time the event happened at its source."""
    if isinstance(event, ProductUpserted):
        return event.updated_at
    if isinstance(event, ProductDeleted):
        return event.deleted_at
    if isinstance(event, WorkItemDecided):
        return event.decided_at
    return event.meta.occurred_at


def clock_at(entry: dict[str, str] | None) -> datetime | None:
    """The clock stored in a partition's state (None: no event yet)."""
    return datetime.fromisoformat(entry["at"]) if entry else None


def advanced(entry: dict[str, str] | None, at: datetime) -> dict[str, str] | None:
    """The clock moved to `at`; None when `at` is not newer (a clock never goes back)."""
    current = clock_at(entry)
    return {"at": at.isoformat()} if current is None or at > current else None


def is_live(lag_ms: int | None) -> bool:
    """True when the wall clock may move the partition's clock (see the module docstring)."""
    return lag_ms is None or lag_ms <= LIVE_LAG_MS
