"""The figures of a SKU: per-location on_hand / reserved / safety_stock / incoming and the online sums. Pure.

`levels(state, online_locations)` is what the inventory processor publishes (AtpLevel); the other
functions are its cheaper forms for `atp`'s hot paths (same numbers, fewer objects).

Figures (per SKU and location)
------------------------------
A location's figures are
  on_hand       = the last applied ERP snapshot's on_hand
                  + the deltas of adjustments / goods receipts newer than that snapshot
                  - the units of committed (goods-issued) reservations not yet reflected in a snapshot
  reserved      = units of open reservations + units of shipped, not yet committed reservations
                  not yet reflected in a snapshot
  safety_stock  = the last snapshot's safety_stock (a snapshot without one means 0)
  incoming      = the last snapshot's incoming (none means 0) - goods received since, never below 0
Per SKU the `Policy` says which locations sell online (that list is data in `topology/`, not code)
and whether incoming is promised; `levels()` sums the online locations:
  available = on_hand - reserved - safety_stock (+ incoming only when `include_incoming`)
Reservations without a location count against the SKU as a whole (in `reserved`, or in `on_hand`
once committed). `available` may be negative: that is an oversell.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from .sku_state import ReservationStatus, SkuState

_DEDUCTED: frozenset[ReservationStatus] = frozenset({"open", "shipped"})  # in `reserved`


@dataclass(frozen=True, slots=True)
class LocationLevel:
    """Figures of one location (see the module docstring)."""

    location: str
    online: bool
    on_hand: int
    reserved: int
    safety_stock: int
    incoming: int
    as_of: datetime | None


@dataclass(frozen=True, slots=True)
class Levels:
    """The SKU's figures over the online locations, plus every known location's own figures."""

    sku: str
    on_hand: int
    reserved: int
    safety_stock: int
    incoming: int
    available: int
    version: int
    updated_at: datetime | None
    locations: tuple[LocationLevel, ...]


PerLocation: TypeAlias = tuple[dict[str, tuple[int, int, int, int]], int, int]


def levels(state: SkuState, online_locations: Iterable[str], include_incoming: bool = False) -> Levels:
    """The SKU's figures: sums over the online locations (+ reservations without a location)."""
    return build_levels(state, per_location(state), frozenset(online_locations), include_incoming)


def build_levels(state: SkuState, computed: PerLocation, online: frozenset[str], include_incoming: bool, *,
                 version: int | None = None, updated_at: datetime | None = None) -> Levels:
    """Levels from `per_location(state)`; `version`/`updated_at` override the state's (a state being built)."""
    per, unlocated_reserved, unlocated_committed = computed
    rows = tuple(LocationLevel(location=loc, online=loc in online, on_hand=f[0], reserved=f[1], safety_stock=f[2],
                               incoming=f[3], as_of=state.locations[loc].as_of if loc in state.locations else None)
                 for loc, f in sorted(per.items()))
    on_hand = reserved = safety = incoming = 0
    for r in rows:
        if r.online:
            on_hand += r.on_hand
            reserved += r.reserved
            safety += r.safety_stock
            incoming += r.incoming
    on_hand -= unlocated_committed
    reserved += unlocated_reserved
    available = on_hand - reserved - safety + (incoming if include_incoming else 0)
    return Levels(sku=state.sku, on_hand=on_hand, reserved=reserved, safety_stock=safety, incoming=incoming,
                  available=available, version=state.version if version is None else version,
                  updated_at=state.updated_at if updated_at is None else updated_at, locations=rows)


def available_of(state: SkuState, online: frozenset[str], include_incoming: bool) -> int:
    """`levels(state, ...).available` straight from the state (no per-location tables)."""
    total = 0
    for loc, s in state.locations.items():
        if loc in online:
            total += s.on_hand - s.safety_stock
            if s.pending:
                total += sum(a.delta for a in s.pending.values())
            if include_incoming:
                total += max(0, s.incoming + sum(a.incoming_delta for a in s.pending.values()))
    for r in state.reservations.values():
        # open/shipped units are reserved, committed ones left on_hand: either way not available
        if r.status in ("open", "shipped", "committed") and (r.location is None or r.location in online):
            total -= r.quantity
    return total


def available_from(computed: PerLocation, online: frozenset[str], include_incoming: bool) -> int:
    """`build_levels(...).available` without building the rows."""
    per, unlocated_reserved, unlocated_committed = computed
    total = -unlocated_committed - unlocated_reserved
    for loc, (on_hand, reserved, safety, incoming) in per.items():
        if loc in online:
            total += on_hand - reserved - safety + (incoming if include_incoming else 0)
    return total


def per_location(state: SkuState) -> PerLocation:
    """(on_hand, reserved, safety_stock, incoming) per location; unlocated reserved and committed units."""
    if not state.reservations and not any(s.pending for s in state.locations.values()):
        # A SKU no order and no delta touched since its counts (every SKU of a first load): the counts
        # are the figures. Twice per bulk line, so worth the shortcut.
        return {loc: (s.on_hand, 0, s.safety_stock, s.incoming) for loc, s in state.locations.items()}, 0, 0
    on_hand: dict[str, int] = {}
    reserved: dict[str, int] = {}
    safety: dict[str, int] = {}
    incoming: dict[str, int] = {}
    for loc, s in state.locations.items():
        on_hand[loc] = s.on_hand + sum(a.delta for a in s.pending.values())
        safety[loc] = s.safety_stock
        incoming[loc] = max(0, s.incoming + sum(a.incoming_delta for a in s.pending.values()))
    unlocated_reserved = unlocated_committed = 0
    for r in state.reservations.values():
        if r.status in _DEDUCTED:
            if r.location is None:
                unlocated_reserved += r.quantity
            else:
                reserved[r.location] = reserved.get(r.location, 0) + r.quantity
        elif r.status == "committed":
            if r.location is None:
                unlocated_committed += r.quantity
            else:
                on_hand[r.location] = on_hand.get(r.location, 0) - r.quantity
    locs = set(on_hand) | set(reserved)
    per = {loc: (on_hand.get(loc, 0), reserved.get(loc, 0), safety.get(loc, 0), incoming.get(loc, 0)) for loc in locs}
    return per, unlocated_reserved, unlocated_committed


def figures_key(computed: PerLocation) -> tuple[object, ...]:
    per, unlocated_reserved, unlocated_committed = computed
    return tuple(sorted(per.items())), unlocated_reserved, unlocated_committed

