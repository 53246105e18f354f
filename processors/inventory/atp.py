"""Available-to-promise (ATP) per SKU: `apply_*(state, policy, ...) -> Outcome`, pure and deterministic.

This is the whole stock arithmetic of the inventory processor (`shopstream worker inventory`): its processor
on the runner keeps one `SkuState` per SKU in the runner's store (its changelog layout: `changelog`), feeds
every `inventory.stock` event (StockSnapshot, StockAdjusted, GoodsReceived) and every
`inventory.reservations` event (ReservationChanged) through the matching `apply_*` function, and
publishes from the `Outcome`: an AtpLevel when `changed`, a (coalesced) SyncShopStock when
`available_changed`, a ReorderRequest when `reorder_crossed`, an Oversold alert + review item when
`oversold_orders`, and counts `stale` snapshots in a metric. No Faust, Kafka, Redis, clock or file
access happens here: every time comes from the events, the same inputs always give the same outputs.

The figures themselves (on_hand, reserved, safety_stock, incoming, available per location and over
the online ones) are defined in `figures`; the per-SKU state and its stored form in `sku_state`.

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
`newly_oversold`: those of `oversold_orders` that did not already cover the deficit before the event
(every one of them when `available` was not negative before): each order needs a person once, not at
every further oversell of its SKU (which would grow with the square of the orders in deficit).

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

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shopstream.schemas.models import ReservationAction

from .figures import Levels, available_from, available_of, build_levels, figures_key, levels, per_location
from .sku_state import Adjustment, LocationStock, Reservation, ReservationStatus, SkuState

_RANK: dict[ReservationStatus, int] = {"open": 0, "shipped": 1, "committed": 2, "counted": 3, "released": 3}


@dataclass(frozen=True, slots=True)
class Policy:
    """Per-deployment / per-SKU parameters (data from topology/, never hard-coded here)."""

    online_locations: frozenset[str]
    include_incoming: bool = False
    reorder_point: int | None = None
    keep_finished: timedelta | None = None  # released/counted reservations older than this are forgotten


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
    newly_oversold: tuple[str, ...] = ()
    note: str | None = None
    computed_levels: Levels | None = field(default=None, repr=False, compare=False)

    @property
    def levels(self) -> Levels:
        """The SKU's figures after the input; computed on first use, since most snapshot lines of a bulk
        export change nothing and their figures are never read."""
        if self.computed_levels is None:
            self.computed_levels = levels(self.state, self.policy.online_locations, self.policy.include_incoming)
        return self.computed_levels


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
            available_of(state, policy.online_locations, policy.include_incoming) <= policy.reorder_point):
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


def _finish(before: SkuState, after: SkuState, policy: Policy, at: datetime) -> Outcome:
    """Version, hysteresis and the signals of a state change."""
    online, incoming = policy.online_locations, policy.include_incoming
    per_before, per_after = per_location(before), per_location(after)
    old_available = available_from(per_before, online, incoming)
    changed = figures_key(per_before) != figures_key(per_after)
    version, updated_at, below = after.version, after.updated_at, before.below_reorder
    if changed:
        version = before.version + 1
        updated_at = at if before.updated_at is None else max(before.updated_at, at)
    new = build_levels(after, per_after, online, incoming, version=version, updated_at=updated_at)
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
    newly: tuple[str, ...] = ()
    if new.available < 0 and new.available < old_available:
        oversold = _oversold_orders(after, online, -new.available)
        # the orders that already covered the deficit before this event were reported then
        already = set(_oversold_orders(before, online, -old_available)) if old_available < 0 else set()
        newly = tuple(o for o in oversold if o not in already)
    return Outcome(state=after, policy=policy, changed=changed, available_changed=new.available != old_available,
                   reorder_crossed=crossed, oversold_orders=oversold, newly_oversold=newly, computed_levels=new)


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
