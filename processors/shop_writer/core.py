"""Shop stock writer, the pure part: per-SKU state between `commands.shop` and the shop's Admin API.

`shopstream worker shop-writer` reads `SyncShopStock(sku, available, atp_version)` commands and
writes the figure to the shop. The shop's API is rate limited (`limits`), so commands are not written
one by one as they arrive: each is *offered* to its SKU's `SkuEntry` (the writer's state store value,
keyed by SKU, changelogged), and a flush takes the entries with a pending figure (`due`), writes them
in the platform's batch form, and *settles* each (`settle_applied` / `settle_failed`). No clock, I/O or
client here: times are floats (seconds) passed in, so the same offers always give the same results.

Rules, per SKU (`offer`):
  - newer      a command is newer than another when its `atp_version` is larger; without versions on
               both sides, the later position in the partition (its offset) is newer (one SKU, one
               partition: the order there is the order shop-sync sent them in)
  - duplicate  the same command event id as the pending or the applied one (redelivery): nothing
  - stale      not newer than the newest command already applied (or given up): result
               `superseded` (by that command), never written — a stale command never overwrites a
               newer figure
  - coalesced  a SKU has at most one pending figure: a newer command replaces it (the replaced one's
               result is `superseded` by the newer), an older one is superseded by the pending one;
               a burst of changes becomes one write of the latest figure
Writing (`due`, `settle_*`):
  - `due(entries, now, limit)` lists pending commands whose retry time has come, oldest offer first
  - applied    the shop took the figure: it becomes `applied` (result `applied`); a newer figure
               offered meanwhile stays pending
  - transient  5xx, timeouts, connection errors: the pending figure waits `backoff(attempts)` and is
               retried; after `max_attempts` it fails like a permanent error
  - permanent  unknown item, no permission, rejected input: result `failed` with the shop's error,
               the command goes to the DLQ with it (the adapter), the pending figure is dropped
Every result is a `ShopCommandResult` on `commands.shop.results` (keyed by SKU) with an id derived
from the command and the outcome (`result_record`), so a re-emission after a crash is a duplicate.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shopstream.schemas.models import EventMeta, ShopCommandOutcome, ShopCommandResult, SyncShopStock

from .config import ShopItem

WRITER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:shopstream:processor:shop-writer")
OUTPUT_SOURCE = "shopstream.shop-writer"


@dataclass(frozen=True)
class StockCommand:
    """One SyncShopStock as the writer keeps it: the figure, its version, its id and its position."""

    sku: str
    available: int
    atp_version: int | None
    event_id: str
    offset: int = 0
    offered_at: float = 0.0
    raw: bytes | None = field(default=None, compare=False)  # the record's bytes, for the DLQ if it fails for good

    @classmethod
    def of(cls, command: SyncShopStock, offset: int, now: float, raw: bytes | None = None) -> StockCommand:
        """From the decoded Avro command at a partition offset."""
        return cls(sku=command.sku, available=max(0, command.available), atp_version=command.atp_version,
                   event_id=command.meta.event_id, offset=offset, offered_at=now, raw=raw)

    def newer_than(self, other: StockCommand) -> bool:
        """Whether this figure supersedes `other` (see the module docstring)."""
        if self.atp_version is not None and other.atp_version is not None:
            return self.atp_version > other.atp_version
        return self.offset > other.offset

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (the changelog)."""
        return {"sku": self.sku, "available": self.available, "atp_version": self.atp_version,
                "event_id": self.event_id, "offset": self.offset, "offered_at": self.offered_at,
                "raw": base64.b64encode(self.raw).decode() if self.raw is not None else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StockCommand:
        """Inverse of `to_dict`."""
        return cls(sku=str(data["sku"]), available=int(data["available"]), atp_version=data.get("atp_version"),
                   event_id=str(data["event_id"]), offset=int(data.get("offset", 0)),
                   offered_at=float(data.get("offered_at", 0.0)),
                   raw=base64.b64decode(data["raw"]) if data.get("raw") else None)


@dataclass(frozen=True)
class SkuEntry:
    """The writer's state of one SKU: the figure the shop has from us and the one still to write."""

    applied: StockCommand | None = None
    pending: StockCommand | None = None
    attempts: int = 0
    not_before: float = 0.0
    failed: StockCommand | None = None  # the newest command given up: older ones are stale after it too
    item: ShopItem | None = None  # the SKU's ids learned from the shop's own product webhooks (`items`)

    def newest_settled(self) -> StockCommand | None:
        """The newest command applied or given up (what an offered command must be newer than)."""
        settled = [c for c in (self.applied, self.failed) if c is not None]
        if len(settled) == 2:
            return settled[1] if settled[1].newer_than(settled[0]) else settled[0]
        return settled[0] if settled else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (the changelog)."""
        return {"applied": self.applied.to_dict() if self.applied else None,
                "pending": self.pending.to_dict() if self.pending else None,
                "attempts": self.attempts, "not_before": self.not_before,
                "failed": self.failed.to_dict() if self.failed else None,
                "item": self.item.model_dump(exclude_none=True) if self.item else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkuEntry:
        """Inverse of `to_dict`."""
        return cls(applied=StockCommand.from_dict(data["applied"]) if data.get("applied") else None,
                   pending=StockCommand.from_dict(data["pending"]) if data.get("pending") else None,
                   attempts=int(data.get("attempts", 0)), not_before=float(data.get("not_before", 0.0)),
                   failed=StockCommand.from_dict(data["failed"]) if data.get("failed") else None,
                   item=ShopItem(**data["item"]) if data.get("item") else None)


@dataclass(frozen=True)
class Result:
    """The outcome of one command (becomes a ShopCommandResult)."""

    command: StockCommand
    outcome: ShopCommandOutcome
    superseded_by: str | None = None
    error: str | None = None
    attempts: int = 0
    shop_item_id: str | None = None


@dataclass(frozen=True)
class Offered:
    """What `offer` did: the SKU's entry afterwards and the results it settled (superseded commands)."""

    entry: SkuEntry
    results: tuple[Result, ...] = ()
    duplicate: bool = False


def offer(entry: SkuEntry | None, command: StockCommand) -> Offered:
    """Take a command into its SKU's entry (see the module docstring)."""
    entry = entry or SkuEntry()
    ids = {c.event_id for c in (entry.applied, entry.pending, entry.failed) if c is not None}
    if command.event_id in ids:
        return Offered(entry, duplicate=True)
    settled, pending = entry.newest_settled(), entry.pending
    if settled is not None and not command.newer_than(settled):
        return Offered(entry, (Result(command, "superseded", superseded_by=settled.event_id),))
    if pending is None:
        return Offered(replace(entry, pending=command, attempts=0, not_before=0.0))
    if command.newer_than(pending):
        # keep the retry schedule: a SKU whose writes fail must not be hammered because it keeps changing
        return Offered(replace(entry, pending=command),
                       (Result(pending, "superseded", superseded_by=command.event_id),))
    return Offered(entry, (Result(command, "superseded", superseded_by=pending.event_id),))


def due(entries: dict[str, SkuEntry], now: float, limit: int | None = None) -> list[StockCommand]:
    """Pending commands whose retry time has come, oldest offer first, at most `limit`."""
    ready = [e.pending for e in entries.values() if e.pending is not None and e.not_before <= now]
    ready.sort(key=lambda c: (c.offered_at, c.sku))
    return ready if limit is None else ready[:limit]


def settle_applied(entry: SkuEntry, command: StockCommand, shop_item_id: str | None = None) -> tuple[SkuEntry, Result]:
    """The shop took `command`'s figure."""
    still = entry.pending if entry.pending is not None and entry.pending.event_id != command.event_id else None
    applied = command if entry.applied is None or command.newer_than(entry.applied) else entry.applied
    return (replace(entry, applied=applied, pending=still, attempts=0, not_before=0.0),
            Result(command, "applied", attempts=entry.attempts + 1, shop_item_id=shop_item_id))


def backoff_s(attempts: int, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    """Wait before retry number `attempts` (1, 2, 4, … seconds, capped)."""
    return float(min(cap_s, base_s * (2 ** max(0, attempts - 1))))


def settle_failed(entry: SkuEntry, command: StockCommand, error: str, *, permanent: bool, now: float,
                  max_attempts: int, base_s: float = 1.0) -> tuple[SkuEntry, Result | None]:
    """A write of `command` failed: retry later (transient) or give it up with a `failed` result."""
    if entry.pending is None or entry.pending.event_id != command.event_id:
        return entry, None  # a newer figure replaced it meanwhile: that one is written next
    attempts = entry.attempts + 1
    if permanent or attempts >= max_attempts:
        return (replace(entry, pending=None, attempts=0, not_before=0.0, failed=command),
                Result(command, "failed", error=error, attempts=attempts))
    return replace(entry, attempts=attempts, not_before=now + backoff_s(attempts, base_s)), None


def result_record(result: Result, platform: str, recorded_at: datetime, occurred_at: datetime | None = None,
                  correlation_id: str | None = None) -> ShopCommandResult:
    """The ShopCommandResult of a result; its id derives from the command and the outcome."""
    cmd = result.command
    meta = EventMeta(
        event_id=str(uuid.uuid5(WRITER_NAMESPACE, f"ShopCommandResult:{cmd.event_id}:{result.outcome}")),
        event_type="ShopCommandResult", occurred_at=occurred_at or recorded_at, recorded_at=recorded_at,
        source=OUTPUT_SOURCE, source_event_id=None, correlation_id=correlation_id, causation_id=cmd.event_id)
    return ShopCommandResult(meta=meta, command_event_id=cmd.event_id, sku=cmd.sku, outcome=result.outcome,
                             available=cmd.available, atp_version=cmd.atp_version, platform=platform,
                             superseded_by=result.superseded_by, shop_item_id=result.shop_item_id,
                             error=result.error, attempts=max(1, result.attempts))


@dataclass(frozen=True)
class Write:
    """One figure to write: the command and the shop's item id of its SKU."""

    command: StockCommand
    item_id: str


@dataclass(frozen=True)
class WriteOutcome:
    """What became of one write: applied, or failed (permanent: give up; else retry later)."""

    write: Write
    ok: bool
    permanent: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Flushed:
    """What a flush did: the SKUs' new entries, every result, and the failed ones (for the DLQ)."""

    entries: dict[str, SkuEntry] = field(default_factory=dict)
    results: tuple[Result, ...] = ()

    @property
    def failed(self) -> tuple[Result, ...]:
        """Results that gave a command up (the adapter parks those commands on the DLQ)."""
        return tuple(r for r in self.results if r.outcome == "failed")


def flush(entries: Mapping[str, SkuEntry], now: float, write: Callable[[list[Write]], list[WriteOutcome]],
          items: Mapping[str, str], *, max_attempts: int, backoff_base_s: float = 1.0,
          limit: int | None = None) -> Flushed:
    """Write the due figures through `write` (one client call: it batches) and settle each.

    A SKU without a shop item id fails for good (`unknown item`) without a request.
    """
    commands = due(dict(entries), now, limit)
    updated: dict[str, SkuEntry] = {}
    results: list[Result] = []
    writes: list[Write] = []
    for cmd in commands:
        item = items.get(cmd.sku)
        if item is None:
            entry, result = settle_failed(entries[cmd.sku], cmd, f"unknown item: no shop item id for SKU {cmd.sku}",
                                          permanent=True, now=now, max_attempts=max_attempts)
            updated[cmd.sku] = entry
            results.extend([result] if result is not None else [])
        else:
            writes.append(Write(cmd, item))
    for outcome in write(writes) if writes else []:
        cmd = outcome.write.command
        current = updated.get(cmd.sku) or entries[cmd.sku]
        if outcome.ok:
            entry, applied = settle_applied(current, cmd, outcome.write.item_id)
            updated[cmd.sku] = entry
            results.append(applied)
        else:
            entry, failed = settle_failed(current, cmd, outcome.error or "unknown error", permanent=outcome.permanent,
                                          now=now, max_attempts=max_attempts, base_s=backoff_base_s)
            updated[cmd.sku] = entry
            results.extend([failed] if failed is not None else [])
    return Flushed(updated, tuple(results))
