"""The anomaly engine's state as changelog records (pure): one small record per key, like a Kafka Streams store.

Why: the engine's state grows with the SKU count (an ATP level creates an entry per SKU) and with traffic
(event ids of the last 24 h, orders of the last 45 days). Written as a few large sections, a record
outgrows the broker's maximum message size (at about 1M SKUs, one `core` of ~60 MB) and a batch rewrites
far more than it touched. So every part that grows is split to the unit a fact changes, each its own key;
a batch writes the keys its facts changed (the engine's `changed` set) and deletes, with a tombstone,
the keys pruning forgot; compaction keeps the newest record per key.

Keys (UTF-8) and what bounds each record:

- `core`: watermark, newest time, late count, last prune, the order partitions' clocks, KPI flags and each
  windowed detector's next window start; bounded by the rules' detectors and the order topic's partitions;
- `seen:<event id>`: its event time (one number); not for ATP levels, deduplicated by their time per SKU;
- `orders:<order id>`: the order's index entry (its SKUs);
- `orphans:<order id>`: facts waiting for that order (one order's cancellations, returns, shipments);
- `sku:<sku>`: snapshots per location, oversold episodes within the longest `within`, the last price and
  the category (bounded by the SKU's locations); none for a SKU only ever seen in ATP levels >= 0;
- `moves:<hour start>|<sku>`: the SKU's stock movements of that hour (bounded by one SKU's movements in one
  hour: 64 KiB is ~2,500 of them);
- `cell:<detector>|<window start>|<subject>`: an open window's sums and at most `evidence_orders` ids;
- `hist:<detector>|<subject>`: the subject's baseline, at most `baseline.windows` values (x24 with
  `same_hour`);
- `alert:<detector>|<subject>`: one open alert;
- `kpi:<hour start>`: the hour's KPI counters;
- `samples:<hour start>|<name>`: one sample list of the hour (lead, delivery, refund_after_return), at
  most `kpis.MAX_SAMPLES` numbers.

Detector ids cannot contain `|` (rules.py) and hour starts are digits, so the last part (a SKU or a
subject) may hold any character.

`value_of(state, key)` cuts a key's value from the live state (`MISSING` once it is gone: a tombstone),
`keys(state)` lists every key of a state, and `assemble(records)` rebuilds the state from its records.
Assembling what was written gives back exactly the engine's state, including containers left empty.

Layout before this one (`core` plus 32 buckets each of `orders:NN` and `seen:NN`, per-SKU maps inside
`core`): `assemble` still reads it, converts it and returns the keys to write (every key of the state,
plus tombstones for the old buckets), so the first batch after an upgrade moves the changelog over.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from . import kpis, windows
from .engine import CORE, Key, empty_state
from .rules import HOUR_MS

#: a key with no value in the state: write a tombstone
MISSING: Any = object()
#: kinds of key whose rest is one identifier (no `|` split)
_SIMPLE = {"seen": "seen", "orders": "orders", "orphans": "orphans", "sku": "skus", "alert": "alerts"}
#: the number of parts after the kind, split on `|` from the left (the last may contain `|`)
_PARTS = {"moves": 2, "cell": 3, "hist": 2, "kpi": 1, "samples": 2}


def encode_key(key: Key) -> bytes:
    """The changelog key of a state key."""
    if key == CORE:
        return b"core"
    return f"{key[0]}:{'|'.join(key[1:])}".encode()


def decode_key(raw: bytes) -> Key:
    """Back from `encode_key` (ValueError for a key of no known kind)."""
    text = raw.decode()
    if text == "core":
        return CORE
    kind, sep, rest = text.partition(":")
    if not sep:
        raise ValueError(f"not an anomalies state key: {text!r}")
    if kind in _SIMPLE:
        return kind, rest
    parts = _PARTS.get(kind)
    if parts is None:
        raise ValueError(f"not an anomalies state key: {text!r}")
    split = tuple(rest.split("|", parts - 1))
    if len(split) != parts:
        raise ValueError(f"not an anomalies state key: {text!r}")
    return (kind, *split)


def _core(state: dict[str, Any]) -> dict[str, Any]:
    core = {k: v for k, v in state.items() if k not in _SPLIT_PARTS and k not in ("win", "kpis")}
    core["win"] = {det: st["next"] for det, st in state["win"].items()}
    core["kpis"] = {k: v for k, v in state["kpis"].items() if k != "hours"}
    return core


#: top-level parts of the state that are split into keys (everything else is in `core`)
_SPLIT_PARTS = frozenset({"seen", "orders", "orphans", "skus", "moves", "alerts"})


def value_of(state: dict[str, Any], key: Key) -> Any:
    """The JSON-able value of `key` in the live state, or MISSING when the state no longer holds it."""
    kind = key[0]
    if kind == "core":
        return _core(state)
    part = _SIMPLE.get(kind)
    if part is not None:
        return state[part].get(key[1], MISSING)
    if kind == "moves":
        return state["moves"].get(key[2], {}).get(key[1], MISSING)
    if kind in ("cell", "hist"):
        st = state["win"].get(key[1])
        if st is None:
            return MISSING
        if kind == "cell":
            return st["open"].get(key[2], {}).get(key[3], MISSING)
        return st["hist"].get(key[2], MISSING)
    bucket = state["kpis"]["hours"].get(key[1])
    if bucket is None:
        return MISSING
    if kind == "kpi":
        return {k: v for k, v in bucket.items() if k not in kpis.SAMPLES}
    return bucket.get(key[2], MISSING)


def encode_value(state: dict[str, Any], key: Key) -> bytes:
    """The changelog value of a key the state holds (ValueError when it does not: a tombstone was due)."""
    value = value_of(state, key)
    if value is MISSING:
        raise ValueError(f"anomalies state key {encode_key(key)!r} is gone: it needed a tombstone")
    return json.dumps(value, separators=(",", ":")).encode()


def keys(state: dict[str, Any]) -> Iterator[Key]:
    """Every key the state holds (for a full rewrite)."""
    yield CORE
    for kind, part in _SIMPLE.items():
        for ident in state[part]:
            yield kind, ident
    for sku, chunks in state["moves"].items():
        for hour in chunks:
            yield "moves", hour, sku
    for det, st in state["win"].items():
        for start, cells in st["open"].items():
            for subject in cells:
                yield "cell", det, start, subject
        for subject in st["hist"]:
            yield "hist", det, subject
    for hour, bucket in state["kpis"]["hours"].items():
        yield "kpi", hour
        for name in kpis.SAMPLES:
            if name in bucket:
                yield "samples", hour, name


class Assembled(NamedTuple):
    """A state rebuilt from its records, and the keys to write at once (none unless the layout was old)."""

    state: dict[str, Any]
    rewrite: set[Key]


def assemble(records: Iterable[tuple[bytes, Any]]) -> Assembled:
    """The engine state from its stored records (decoded JSON; an empty state when there are none).

    Values are used as they are, not copied (the caller's decoded records become the state)."""
    state = empty_state()
    core: dict[str, Any] | None = None
    legacy: list[tuple[bytes, Any]] = []
    later: list[tuple[Key, Any]] = []
    for raw, value in records:
        key = decode_key(raw) if raw != b"core" else CORE
        kind = key[0]
        if kind == "core":
            core = value
            continue
        if kind in ("seen", "orders") and isinstance(value, dict):  # a bucket of the layout before
            legacy.append((raw, value))
            continue
        part = _SIMPLE.get(kind)
        if part is not None:
            state[part][key[1]] = value
        elif kind == "moves":
            state["moves"].setdefault(key[2], {})[key[1]] = value
        else:
            later.append((key, value))  # windows and KPI hours need their skeleton from `core` first
    if core is not None and "stock" in core:
        return _upgrade(state, core, legacy)
    if legacy:
        raise ValueError(f"anomalies state: old-layout records {legacy[0][0]!r} without the old core")
    if core is not None:
        _put_core(state, core)
    for key, value in later:
        _put(state, key, value)
    return Assembled(state, set())


def _put_core(state: dict[str, Any], core: dict[str, Any]) -> None:
    for name, value in core.items():
        if name == "win":
            for det, nxt in value.items():
                windows.table(state["win"], det)["next"] = nxt
        elif name == "kpis":
            state["kpis"].update(value)
        else:
            state[name] = value


def _put(state: dict[str, Any], key: Key, value: Any) -> None:
    kind = key[0]
    if kind == "cell":
        windows.table(state["win"], key[1])["open"].setdefault(key[2], {})[key[3]] = value
    elif kind == "hist":
        windows.table(state["win"], key[1])["hist"][key[2]] = value
    elif kind == "kpi":
        state["kpis"]["hours"].setdefault(key[1], {}).update(value)
    else:  # samples
        state["kpis"]["hours"].setdefault(key[1], {})[key[2]] = value


def _upgrade(state: dict[str, Any], core: dict[str, Any], legacy: list[tuple[bytes, Any]]) -> Assembled:
    """The layout before this one (see the module docstring) converted; every key to write, and the old
    buckets to delete (their keys, `seen:NN` / `orders:NN`, are tombstoned: no event or order has such an id
    in the new layout unless the state holds it, and then it is written with its own value)."""
    for raw, bucket in legacy:
        part = raw.decode().partition(":")[0]
        state[part].update(bucket)
    old = dict(core)
    stock = old.pop("stock", {})
    categories = old.pop("categories", {})
    state["orphans"].update(old.pop("orphans", {}))
    state["alerts"].update(old.pop("alerts", {}))
    for det, st in old.pop("win", {}).items():
        table = windows.table(state["win"], det)
        table.update(st)
    state["kpis"] = {"hours": {}, **old.pop("kpis", {})}
    for name, value in old.items():
        state[name] = value
    skus: dict[str, Any] = state["skus"]
    for sku, category in categories.items():
        skus.setdefault(sku, {})["category"] = category
    for snap_key, snap in stock.get("snaps", {}).items():
        sku, _, location = snap_key.rpartition("|")
        skus.setdefault(sku, {}).setdefault("snaps", {})[location] = snap
    for sku, entry in stock.get("oversold", {}).items():
        skus.setdefault(sku, {})["oversold"] = entry
    for sku, last in stock.get("prices", {}).items():
        skus.setdefault(sku, {})["price"] = last
    for sku, moves in stock.get("moves", {}).items():
        for move in moves:
            hour = str(move[0] - move[0] % HOUR_MS)
            state["moves"].setdefault(sku, {}).setdefault(hour, []).append(move)
    rewrite = set(keys(state)) | {decode_key(raw) for raw, _ in legacy}
    return Assembled(state, rewrite)
