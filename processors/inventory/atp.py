"""Available-to-promise (ATP) per SKU: `apply_*(state, policy, ...) -> Outcome`, pure and deterministic.

This is the whole stock arithmetic of the inventory processor (`shopstream worker inventory`): its processor
on the runner keeps one `SkuState` per SKU in the runner's store (stored as `SkuState.to_dict()`), feeds every
`inventory.stock` event (StockSnapshot, StockAdjusted, GoodsReceived) and every
`inventory.reservations` event (ReservationChanged) through the matching `apply_*` function, and
publishes from the `Outcome`: an AtpLevel when `changed`, a (coalesced) SyncShopStock when
`available_changed`, a ReorderRequest when `reorder_crossed`, an Oversold alert + review item when
`oversold_orders`, and counts `stale` snapshots in a metric. No Faust, Kafka, Redis, clock or file
access happens here: every time comes from the events, the same inputs always give the same outputs.

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

What each input does
--------------------
Snapshot (ERP on-hand for one location as of `as_of`; absolute)
  - `as_of` older than the location's last applied snapshot: ignored, `Outcome.stale`.
  - same `as_of` as the last applied one: a duplicate when the figures are equal (nothing happens);
    with different figures it is a conflicting report for the same instant: the first one applied
    wins, the other is ignored and reported `stale`.
  - otherwise it replaces the location's on_hand, safety_stock and incoming and records `as_of`.
    Adjustments and receipts with a time at or before `as_of` are dropped: the ERP count already
    contains them. Shipped and committed reservations at the location dispatched at or before
    `as_of` become *counted*: the count already lacks those units, so they stop being deducted.
    A snapshot that repeats the current figures and absorbs nothing only records its `as_of`
    (so older snapshots are recognised as stale): no version bump, nothing to emit.
Adjustment (StockAdjusted: signed delta) and goods receipt (GoodsReceived: +quantity, - incoming)
  - time at or before the location's last snapshot: already in that count, ignored.
  - an event id already pending at the location: duplicate, ignored.
  - otherwise pending: on_hand moves by the delta until a snapshot at/after its time absorbs it.
Reservation (ReservationChanged for (order_id, sku); `quantity` is absolute, never a delta)
  A reservation is open, shipped, committed, counted or released; it only moves forward
  (open -> shipped -> committed -> counted, open -> released; shipped -> counted directly too).
  - reserve / adjust: on an open reservation whose last quantity change is older than `at`, sets
    the quantity (the total reserved units for the order and SKU); an equal or older `at` is a
    redelivery and ignored. The orders processor stamps them with the order's source time, which
    strictly increases per order. On an unknown order it creates the reservation.
  - release: an open reservation ends, its units are no longer reserved; the reservation is kept
    as released so a late or redelivered reserve cannot revive it. Shipped units cannot be
    released (ignored).
  - ship: an open reservation becomes shipped with `quantity` units dispatched at `at`; it stays
    deducted (in `reserved`) until a snapshot of its location with `as_of` at or after the dispatch
    time arrives (the ERP count then reflects it), or a commit moves it into on_hand.
  - commit (goods issue): the shipped units leave on_hand explicitly (no longer in `reserved`),
    until a snapshot at/after the dispatch time (the commit time when it was never shipped) counts
    them. A commit of an open reservation ships and issues it at once.
  - Any action on a released or counted reservation, and ship on a shipped or committed one, is
    ignored. A reservation's location is the last one an event named (ship names the warehouse
    that dispatched); a shipped reservation without a location is counted by a snapshot of any
    location at/after its dispatch time (right for single-warehouse shops; multi-location
    deployments must name the location on ship).
  A negative quantity is a ValueError (the adapter dead-letters the event).

Outcome
-------
`state` is always the state to store (bookkeeping such as a newer `as_of` may change without a
figure changing). `changed`: a figure of any location changed; then `version` is bumped (per SKU,
starting at 1) and `updated_at` becomes the latest event time seen. `available_changed`: the
shop-visible `available` over the online locations changed. `reorder_crossed`: `available` went to
or below the policy's reorder point while the SKU was above it (hysteresis: `below_reorder` is
stored and cleared only when available rises above the point again). `oversold_orders`: the event
lowered `available` below zero; the orders named are the latest open reservations at online (or no)
locations (by first reservation time, then order id) whose units make up the deficit. It is empty
when no open order is involved (the deficit comes from safety stock or uncounted shipments: nothing
was promised that cannot be kept, so there is no oversell to report).

Idempotence (why redelivery and replay change nothing)
------------------------------------------------------
Every input is made a no-op on its second arrival by the state itself, whatever came in between:
  - a location's snapshot `as_of` never decreases, and a snapshot applies only when its `as_of` is
    newer (or equal with equal figures, which is a no-op), so a second arrival is stale or equal;
  - an adjustment applies only when its time is after the location's `as_of` and its id is not
    pending; once applied it stays pending until a snapshot with `as_of` at or after its time drops
    it, after which the same event is at/before `as_of` and ignored;
  - reservations are keyed by order id (the state is per SKU): quantities are absolute and ordered
    by `at`, which an applied change records, so the same change again is not newer; status only
    moves forward and the terminal states (released, counted) are kept, so a redelivered reserve,
    ship or commit finds its reservation at or past the state it would move to.
Released and counted reservations are kept as tombstones for that; `prune()` drops those older than
a horizon beyond the replay window, so per-SKU state stays bounded: with `Policy.keep_finished` set
(the inventory policy's `keep_finished_reservations`), every applied reservation event prunes what
finished more than that before its own time, and a reservation event older than the horizon for an
order the state no longer knows is stale (counted, not applied). Without it a SKU's state, and so
every changelog write of it, would grow with every order it was ever in. Within the horizon the
interleaving independence below holds as before; events further apart than the horizon are, by
that policy, too late to matter.
Hence, because absorption by a snapshot depends only on the largest `as_of` seen per location, the
figures after any sequence with duplicates equal those after the de-duplicated sequence
(tests/unit/test_atp.py checks this against an oracle as a property).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias

from shopstream.schemas.models import ReservationAction

ReservationStatus: TypeAlias = Literal["open", "shipped", "committed", "counted", "released"]

_RANK: dict[ReservationStatus, int] = {"open": 0, "shipped": 1, "committed": 2, "counted": 3, "released": 3}
_DEDUCTED: frozenset[ReservationStatus] = frozenset({"open", "shipped"})  # in `reserved`


@dataclass(frozen=True, slots=True)
class Policy:
    """Per-deployment / per-SKU parameters (data from topology/, never hard-coded here)."""

    online_locations: frozenset[str]
    include_incoming: bool = False
    reorder_point: int | None = None
    keep_finished: timedelta | None = None  # released/counted reservations older than this are forgotten


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A stock delta newer than the location's last snapshot (kept until a snapshot absorbs it)."""

    delta: int
    incoming_delta: int
    at: datetime


# LocationStock and SkuState are values no function here ever changes (every change builds new ones;
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
            reservations={
                oid: Reservation(quantity=r["quantity"], status=r["status"], at=_req(r["at"]),
                                 location=r["location"], reserved_at=_parse(r["reserved_at"]),
                                 dispatched_at=_parse(r["dispatched_at"]))
                for oid, r in data["reservations"].items()
            },
            forgotten_before=_parse(data.get("forgotten_before")),
        )


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


@dataclass(slots=True)
class Outcome:
    """What applying one input did (see the module docstring).

    A result, not state, so not frozen: one is built per line of a bulk export, and a frozen
    dataclass costs several times as much to build."""

    state: SkuState
    policy: Policy = field(repr=False)
    changed: bool = False
    available_changed: bool = False
    stale: bool = False
    reorder_crossed: bool = False
    oversold_orders: tuple[str, ...] = ()
    note: str | None = None
    computed_levels: Levels | None = field(default=None, repr=False, compare=False)

    @property
    def levels(self) -> Levels:
        """The SKU's figures after the input; computed on first use, since most snapshot lines of a bulk
        export change nothing and their figures are never read."""
        if self.computed_levels is None:
            self.computed_levels = levels(self.state, self.policy.online_locations, self.policy.include_incoming)
        return self.computed_levels


def new_state(sku: str) -> SkuState:
    """The state of a SKU nothing is known about yet."""
    return SkuState(sku=sku)


# --- inputs -------------------------------------------------------------------------------------


def apply_snapshot(state: SkuState, policy: Policy, *, location: str, on_hand: int, safety_stock: int | None,
                   incoming: int | None, as_of: datetime) -> Outcome:
    """An ERP count (StockSnapshot) of one location as of `as_of`."""
    if on_hand < 0 or (safety_stock or 0) < 0 or (incoming or 0) < 0:  # checked inline: once per bulk line
        _non_negative(on_hand=on_hand, safety_stock=safety_stock or 0, incoming=incoming or 0)
    current = state.locations.get(location, LocationStock())
    figures = (on_hand, safety_stock or 0, incoming or 0)
    if current.as_of is not None:
        if as_of < current.as_of:
            return _unchanged(state, policy, stale=True,
                              note=f"stale snapshot: as_of {as_of.isoformat()} < {current.as_of.isoformat()}")
        if as_of == current.as_of:
            same = figures == (current.on_hand, current.safety_stock, current.incoming)
            return _unchanged(state, policy, stale=not same,
                              note="duplicate snapshot" if same else
                              f"conflicting snapshot for as_of {as_of.isoformat()}: first one applied wins")
    if location in state.locations and figures == (current.on_hand, current.safety_stock, current.incoming):
        recount = _recount(state, policy, location, current, as_of)
        if recount is not None:
            return recount
    return _count(state, policy, location, current, figures, as_of)


def _count(state: SkuState, policy: Policy, location: str, current: LocationStock, figures: tuple[int, int, int],
           as_of: datetime) -> Outcome:
    """apply_snapshot's general path: a snapshot newer than the location's last one replaces its figures."""
    on_hand = figures[0]
    stock = LocationStock(on_hand=on_hand, safety_stock=figures[1], incoming=figures[2], as_of=as_of,
                          pending={eid: a for eid, a in current.pending.items() if a.at > as_of})
    locations = {**state.locations, location: stock}
    reservations = {oid: _absorb(r, locations) for oid, r in state.reservations.items()}
    after = SkuState(sku=state.sku, version=state.version, updated_at=state.updated_at,
                     below_reorder=state.below_reorder, locations=locations, reservations=reservations,
                     forgotten_before=state.forgotten_before)
    return _finish(state, after, policy, as_of)


def apply_adjustment(state: SkuState, policy: Policy, *, event_id: str, location: str, delta: int, at: datetime,
                     incoming_delta: int = 0) -> Outcome:
    """A signed on-hand change (StockAdjusted), deduplicated by event id."""
    current = state.locations.get(location, LocationStock())
    if current.as_of is not None and at <= current.as_of:
        return _unchanged(state, policy, note=f"adjustment at {at.isoformat()} already in the snapshot "
                                              f"as of {current.as_of.isoformat()}")
    if event_id in current.pending:
        return _unchanged(state, policy, note=f"duplicate adjustment {event_id}")
    stock = replace(current, pending={**current.pending, event_id: Adjustment(delta, incoming_delta, at)})
    return _finish(state, replace(state, locations={**state.locations, location: stock}), policy, at)


def apply_goods_received(state: SkuState, policy: Policy, *, event_id: str, location: str, quantity: int,
                         at: datetime) -> Outcome:
    """Units received into a location (GoodsReceived): on_hand up, incoming down (not below 0)."""
    _non_negative(quantity=quantity)
    return apply_adjustment(state, policy, event_id=event_id, location=location, delta=quantity, at=at,
                            incoming_delta=-quantity)


def apply_reservation(state: SkuState, policy: Policy, *, order_id: str, action: ReservationAction, quantity: int,
                      at: datetime, location: str | None = None) -> Outcome:
    """A ReservationChanged for (order_id, this SKU); `at` is the event's source time."""
    _non_negative(quantity=quantity)
    current = state.reservations.get(order_id)
    if current is None and state.forgotten_before is not None and at < state.forgotten_before:
        # Its reservation may have finished and been forgotten: reviving it would reserve units of an
        # order long gone, so anything this old for an unknown order is stale.
        return _unchanged(state, policy, stale=True,
                          note=f"reservation {order_id}: {action} at {at.isoformat()} is older than the "
                               f"forgotten horizon {state.forgotten_before.isoformat()}")
    new = _next_reservation(current, action, quantity, at, location)
    if new is None or new == current:
        return _unchanged(state, policy, note=f"reservation {order_id}: {action} is a duplicate or out of date")
    new = _absorb(new, state.locations)
    after = replace(state, reservations={**state.reservations, order_id: new})
    if policy.keep_finished is not None:
        after = prune(after, at - policy.keep_finished)
    return _finish(state, after, policy, at)


def levels(state: SkuState, online_locations: Iterable[str], include_incoming: bool = False) -> Levels:
    """The SKU's figures: sums over the online locations (+ reservations without a location)."""
    return _levels(state, _per_location(state), frozenset(online_locations), include_incoming)


def _levels(state: SkuState, computed: _PerLocation, online: frozenset[str], include_incoming: bool, *,
            version: int | None = None, updated_at: datetime | None = None) -> Levels:
    """Levels from `_per_location(state)`; `version`/`updated_at` override the state's (a state being built)."""
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


def _available_of(state: SkuState, online: frozenset[str], include_incoming: bool) -> int:
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


def _available(computed: _PerLocation, online: frozenset[str], include_incoming: bool) -> int:
    """`_levels(...).available` without building the rows."""
    per, unlocated_reserved, unlocated_committed = computed
    total = -unlocated_committed - unlocated_reserved
    for loc, (on_hand, reserved, safety, incoming) in per.items():
        if loc in online:
            total += on_hand - reserved - safety + (incoming if include_incoming else 0)
    return total


def prune(state: SkuState, before: datetime) -> SkuState:
    """Forget released and counted reservations whose last change is older than `before`.

    They no longer count, and are kept only so that a redelivered event for them stays a no-op; so
    `before` must lie further back than any redelivery or replay can reach (e.g. the newest event
    time minus the retention of `inventory.reservations`). The horizon is remembered
    (`forgotten_before`, only moving forward): a reservation event older than it for an order the
    state does not know is stale. Figures and version are unchanged."""
    if state.forgotten_before is not None and before <= state.forgotten_before:
        return state
    keep = {oid: r for oid, r in state.reservations.items()
            if r.status not in ("released", "counted") or r.at >= before}
    return replace(state, reservations=keep, forgotten_before=before)


# --- helpers ------------------------------------------------------------------------------------


def _next_reservation(current: Reservation | None, action: ReservationAction, quantity: int, at: datetime,
                      location: str | None) -> Reservation | None:
    """The reservation after the action, None when the action does not apply (see the docstring)."""
    if current is None:
        current = Reservation(quantity=0, status="open", at=at, location=location)
        fresh = True
    else:
        fresh = False
        if _RANK[current.status] >= _RANK["counted"]:
            return None
    loc = location if location is not None else current.location
    if action in ("reserve", "adjust"):
        if current.status != "open" or (not fresh and at <= current.at):
            return None
        return replace(current, quantity=quantity, at=at, location=loc,
                       reserved_at=current.reserved_at or (at if quantity > 0 else None))
    if action == "release":
        if current.status != "open":
            return None
        return replace(current, quantity=0, status="released", at=at, location=loc)
    if action == "ship":
        if current.status != "open":
            return None
        return replace(current, quantity=quantity, status="shipped", at=at, location=loc, dispatched_at=at)
    # commit (goods issue); unknown future actions read as adjust in the schema, so only commit is left
    if current.status not in ("open", "shipped"):
        return None
    units = current.quantity if current.status == "shipped" else quantity
    return replace(current, quantity=units, status="committed", at=at, location=loc,
                   dispatched_at=current.dispatched_at or at)


def _recount(state: SkuState, policy: Policy, location: str, current: LocationStock,
             as_of: datetime) -> Outcome | None:
    """A newer snapshot repeating the location's figures that absorbs nothing: only `as_of` moves.

    The common line of a daily full export, so it skips the general path (same result, a tenth of
    the cost); None when the snapshot does absorb a pending delta or a shipped reservation, or may
    move the reorder flag (the general path decides those)."""
    if any(a.at <= as_of for a in current.pending.values()):
        return None
    stock = LocationStock(on_hand=current.on_hand, safety_stock=current.safety_stock, incoming=current.incoming,
                          as_of=as_of, pending=current.pending)
    locations = {**state.locations, location: stock}
    for r in state.reservations.values():
        if r.status in ("shipped", "committed") and _absorb(r, locations) is not r:
            return None
    if policy.reorder_point is not None and state.below_reorder != (
            _available_of(state, policy.online_locations, policy.include_incoming) <= policy.reorder_point):
        return None
    after = SkuState(sku=state.sku, version=state.version, updated_at=state.updated_at,
                     below_reorder=state.below_reorder, locations=locations, reservations=state.reservations,
                     forgotten_before=state.forgotten_before)
    return Outcome(state=after, policy=policy)


def _absorb(r: Reservation, locations: Mapping[str, LocationStock]) -> Reservation:
    """A shipped/committed reservation becomes counted once an ERP count at/after its dispatch exists."""
    if r.status not in ("shipped", "committed") or r.dispatched_at is None:
        return r
    dispatched = r.dispatched_at
    if r.location is not None:
        stock = locations.get(r.location)
        counted = stock is not None and stock.as_of is not None and stock.as_of >= dispatched
    else:
        counted = any(s.as_of is not None and s.as_of >= dispatched for s in locations.values())
    return replace(r, status="counted") if counted else r


_PerLocation: TypeAlias = tuple[dict[str, tuple[int, int, int, int]], int, int]


def _per_location(state: SkuState) -> _PerLocation:
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


def _figures(computed: _PerLocation) -> tuple[object, ...]:
    per, unlocated_reserved, unlocated_committed = computed
    return tuple(sorted(per.items())), unlocated_reserved, unlocated_committed


def _finish(before: SkuState, after: SkuState, policy: Policy, at: datetime) -> Outcome:
    """Version, hysteresis and the signals of a state change."""
    online, incoming = policy.online_locations, policy.include_incoming
    per_before, per_after = _per_location(before), _per_location(after)
    old_available = _available(per_before, online, incoming)
    changed = _figures(per_before) != _figures(per_after)
    version, updated_at, below = after.version, after.updated_at, before.below_reorder
    if changed:
        version = before.version + 1
        updated_at = at if before.updated_at is None else max(before.updated_at, at)
    new = _levels(after, per_after, online, incoming, version=version, updated_at=updated_at)
    crossed = False
    if policy.reorder_point is not None:
        below = new.available <= policy.reorder_point
        crossed = below and not before.below_reorder
    if (version, updated_at, below) != (after.version, after.updated_at, after.below_reorder):
        # built directly: dataclasses.replace costs more than the arithmetic on the bulk snapshot path
        after = SkuState(sku=after.sku, version=version, updated_at=updated_at, below_reorder=below,
                         locations=after.locations, reservations=after.reservations,
                         forgotten_before=after.forgotten_before)
    oversold: tuple[str, ...] = ()
    if new.available < 0 and new.available < old_available:
        oversold = _oversold_orders(after, online, -new.available)
    return Outcome(state=after, policy=policy, changed=changed, available_changed=new.available != old_available,
                   reorder_crossed=crossed, oversold_orders=oversold, computed_levels=new)


def _oversold_orders(state: SkuState, online: frozenset[str], deficit: int) -> tuple[str, ...]:
    """The latest open reservations (by reservation time, then order id) whose units cover the deficit."""
    open_ = [(r.reserved_at or r.at, oid, r.quantity) for oid, r in state.reservations.items()
             if r.status == "open" and r.quantity > 0 and (r.location is None or r.location in online)]
    out: list[str] = []
    for _, oid, units in sorted(open_, reverse=True):
        if deficit <= 0:
            break
        out.append(oid)
        deficit -= units
    return tuple(out)


def _unchanged(state: SkuState, policy: Policy, *, stale: bool = False, note: str | None = None) -> Outcome:
    return Outcome(state=state, policy=policy, stale=stale, note=note)


def _non_negative(**values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _req(value: str) -> datetime:
    return datetime.fromisoformat(value)
