"""The inventory store's changelog layout (pure): a SKU's figures in one record, each reservation in its own.

Why: a SKU's state holds every reservation not yet forgotten (open ones until they ship or are released).
Written as one record, it grew with them and was rewritten whole on every reservation event: 65 KB at
360 open reservations, 180 KB at 1,000, past the broker's 1 MB limit at ~5,500, where the worker halts (a
flash sale of one product does that before anything ships). `bench orders` at 200 orders/s, its
orders never shipped, saw the inventory worker fall behind and the broker use 73 CPU s a minute on it.
So, like a Kafka Streams store keyed by (SKU, order):

- key `<sku>` (UTF-8): the `SkuState` without its reservations (`SkuState` JSON, `reservations` empty);
  bounded by the SKU's locations and their pending deltas;
- key `\\x00reservation\\x00<sku>\\x00<order id>`: one `ReservationEntry` (the reservation, its SKU and order);
  a tombstone once the core forgets it (pruned after `keep_finished_reservations`).

In memory the store keeps the whole `SkuState` under `<sku>` (reservations included: the core reads it
as one value) and each entry under its own key, as the changelog has them. `writes` turns one SKU's
change into the records it needs (the reservations whose value changed, by identity: the core builds a
new `Reservation` only for what it changes); `fold`, after a restore, puts each entry back into its SKU's
state. A state of the layout before this one (its reservations inside the SKU's record) restores as it
was, and `fold` names it so that its next write also writes every reservation it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import replace
from typing import Any, NamedTuple

import orjson

from shopstream.processors.inventory.sku_state import Reservation, SkuState, new_state, reservation_from_dict

#: prefix of a reservation's key: never a SKU's key (a SKU does not start with NUL)
RESERVATION_PREFIX = b"\x00reservation\x00"


class ReservationEntry(NamedTuple):
    """One reservation as the store keeps it under its own key."""

    sku: str
    order_id: str
    reservation: Reservation


def reservation_key(sku: str, order_id: str) -> bytes:
    """The store key of the reservation of `order_id` for `sku`."""
    return RESERVATION_PREFIX + sku.encode() + b"\x00" + order_id.encode()


def encode(value: SkuState | ReservationEntry) -> bytes:
    """A store value as its changelog bytes (orjson writes the dataclasses themselves)."""
    if isinstance(value, ReservationEntry):
        return orjson.dumps({"reservation_of": value.sku, "order_id": value.order_id,
                             "reservation": value.reservation})
    return orjson.dumps(replace(value, reservations={}) if value.reservations else value)


def decode(data: bytes) -> SkuState | ReservationEntry:
    """Changelog bytes back into a store value (either layout)."""
    doc = orjson.loads(data)
    if "reservation_of" in doc:
        return ReservationEntry(doc["reservation_of"], doc["order_id"], reservation_from_dict(doc["reservation"]))
    return SkuState.from_dict(doc)


def writes(key: bytes, before: SkuState, after: SkuState, *, every: bool = False) -> dict[bytes, Any]:
    """The store writes of one SKU's change: its state, every reservation whose value changed (all of them
    when `every`: a state restored from the old layout), a tombstone for each one forgotten."""
    out: dict[bytes, Any] = {key: after}
    old: Mapping[str, Reservation] = {} if every else before.reservations
    sku = after.sku
    for order_id, reservation in after.reservations.items():
        if old.get(order_id) is not reservation:
            out[reservation_key(sku, order_id)] = ReservationEntry(sku, order_id, reservation)
    for order_id in before.reservations.keys() - after.reservations.keys():
        out[reservation_key(sku, order_id)] = None
    return out


def fold(state: MutableMapping[bytes, Any]) -> set[bytes]:
    """After a restore: each reservation entry into its SKU's state. Returns the SKU keys restored from the
    old layout (reservations inside the SKU's own record), whose next write must write them all."""
    old_layout = {key for key, value in state.items() if isinstance(value, SkuState) and value.reservations}
    held: dict[str, dict[str, Reservation]] = {}
    for value in state.values():
        if isinstance(value, ReservationEntry):
            held.setdefault(value.sku, {})[value.order_id] = value.reservation
    for sku, reservations in held.items():
        key = sku.encode()
        current = state.get(key)
        if not isinstance(current, SkuState):  # its figures' record is gone (never before its entries)
            current = state[key] = new_state(sku)
        current.reservations = {**current.reservations, **reservations}
    return old_layout
