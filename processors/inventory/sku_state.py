"""The state the inventory processor keeps per SKU: locations' ERP figures, pending deltas, reservations. Pure.

Plain values (`SkuState`, `LocationStock`, `Reservation`, `Adjustment`) with their stored form
(`SkuState.to_dict` / `from_dict`, times as ISO 8601 strings); `atp` is the arithmetic that moves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias

ReservationStatus: TypeAlias = Literal["open", "shipped", "committed", "counted", "released"]


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A stock delta newer than the location's last snapshot (kept until a snapshot absorbs it)."""

    delta: int
    incoming_delta: int
    at: datetime


# LocationStock and SkuState are values no function of `atp` ever changes (every change builds new ones;
# tests/unit/test_atp.py checks that applying an event leaves its input untouched), but they are not
# `frozen`: a frozen dataclass sets each field through object.__setattr__, and building them was a
# quarter of a bulk snapshot line's cost (a million per daily export).
@dataclass(slots=True)
class LocationStock:
    """ERP figures of one location: the last applied snapshot plus the deltas since."""

    on_hand: int = 0
    safety_stock: int = 0
    incoming: int = 0
    as_of: datetime | None = None
    pending: Mapping[str, Adjustment] = field(default_factory=dict)  # event id -> adjustment


@dataclass(frozen=True, slots=True)
class Reservation:
    """The reservation of one order for this SKU."""

    quantity: int
    status: ReservationStatus
    at: datetime  # time of the last applied quantity change (reserve/adjust) or status change
    location: str | None = None
    reserved_at: datetime | None = None  # first time units were reserved (orders oversell evidence)
    dispatched_at: datetime | None = None


@dataclass(slots=True)
class SkuState:
    """Everything the processor keeps per SKU; plain values, see `to_dict`/`from_dict`."""

    sku: str
    version: int = 0
    updated_at: datetime | None = None
    below_reorder: bool = False
    locations: Mapping[str, LocationStock] = field(default_factory=dict)
    reservations: Mapping[str, Reservation] = field(default_factory=dict)  # order id -> reservation
    forgotten_before: datetime | None = None  # finished reservations older than this were pruned

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (times as ISO 8601 strings)."""
        return {
            "sku": self.sku,
            "version": self.version,
            "updated_at": _iso(self.updated_at),
            "below_reorder": self.below_reorder,
            "locations": {
                loc: {"on_hand": s.on_hand, "safety_stock": s.safety_stock, "incoming": s.incoming,
                      "as_of": _iso(s.as_of),
                      "pending": {eid: {"delta": a.delta, "incoming_delta": a.incoming_delta, "at": _iso(a.at)}
                                  for eid, a in sorted(s.pending.items())}}
                for loc, s in sorted(self.locations.items())
            },
            "reservations": {
                oid: {"quantity": r.quantity, "status": r.status, "at": _iso(r.at), "location": r.location,
                      "reserved_at": _iso(r.reserved_at), "dispatched_at": _iso(r.dispatched_at)}
                for oid, r in sorted(self.reservations.items())
            },
            "forgotten_before": _iso(self.forgotten_before),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkuState:
        """Inverse of `to_dict`."""
        return cls(
            sku=data["sku"],
            version=data["version"],
            updated_at=_parse(data["updated_at"]),
            below_reorder=data["below_reorder"],
            locations={
                loc: LocationStock(
                    on_hand=s["on_hand"], safety_stock=s["safety_stock"], incoming=s["incoming"],
                    as_of=_parse(s["as_of"]),
                    pending={eid: Adjustment(a["delta"], a["incoming_delta"], _req(a["at"]))
                             for eid, a in s["pending"].items()})
                for loc, s in data["locations"].items()
            },
            reservations={oid: reservation_from_dict(r) for oid, r in data["reservations"].items()},
            forgotten_before=_parse(data.get("forgotten_before")),
        )


def reservation_from_dict(data: Mapping[str, Any]) -> Reservation:
    """A reservation from its stored form (`to_dict`'s, or orjson's of the dataclass: the same)."""
    return Reservation(quantity=data["quantity"], status=data["status"], at=_req(data["at"]),
                       location=data["location"], reserved_at=_parse(data["reserved_at"]),
                       dispatched_at=_parse(data["dispatched_at"]))


def new_state(sku: str) -> SkuState:
    """The state of a SKU nothing is known about yet."""
    return SkuState(sku=sku)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _req(value: str) -> datetime:
    return datetime.fromisoformat(value)
