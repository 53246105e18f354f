"""Shop stock sync, the pure part: which `SyncShopStock` commands to send, coalesced per SKU.

The shop's stock API is rate limited, so `shopstream worker shop-sync` does not forward every
AtpLevel: a `ShopSyncCoalescer` takes each one (`offer`) and says, when asked with the current
time (`due(now_ms)`), which commands are due. No Kafka, clock or I/O here: times are integers
(milliseconds) passed in by the caller, so the same offers and times always give the same commands.

Rules, per SKU:
- The shop sees `max(0, available)`: an oversold SKU (negative ATP) shows 0, never a negative count.
- An offer whose `version` is not newer than the newest one already offered for the SKU is ignored
  (`Offer.STALE`): a redelivery or an out-of-order record never moves the shop backwards.
- A command is sent only when the shop-visible figure differs from the last command sent for the
  SKU. An offer that does not change it while nothing is pending opens nothing (`Offer.UNCHANGED`).
- Otherwise the first such offer opens a *window* of `window_ms` (`Offer.OPENED`); later offers
  inside the window replace the pending value (`Offer.MERGED`: the previous one is superseded).
  When the window ends, one command carries the latest value and version, unless the burst came back
  to the figure last sent, in which case nothing is sent. The window is fixed from its first change,
  not extended by later ones (a debounce could starve a SKU that changes constantly): a SKU gets at
  most one command per window, and a change reaches the shop at most `window_ms` after it was offered.
- A window of 0 sends each change at the next `due`, still only when the visible figure changed.

Windows end in the order they were opened (their deadlines never decrease, even if the caller's
clock steps back), so `oldest_open()` — the sequence number of the oldest window still open — tells
an adapter which input it may acknowledge: every offer made before that window opened is settled
(sent, superseded or unchanged). Sequence numbers start at 1 and increase by one per window.

Sending is two-phase, so that nothing counts as sent before the broker confirmed it: `take_due(now)`
closes the ended windows and hands out their commands *in flight*; `confirm(commands)` records them
as sent once the caller's delivery reports confirmed them. An in-flight command holds `oldest_open()`
back like an open window (the input behind it must not be acknowledged), and `unconfirmed()` lists
the in-flight commands to send again (e.g. before giving partitions up). `due(now)` is both steps at
once, for callers without a broker in between.

What is remembered (in memory, per SKU): the newest version offered and the figure last sent.
`forget()` drops everything (e.g. when a consumer loses its partitions); after that, the first
change of each SKU is sent again even if the shop already has that figure — a redundant command,
harmless because commands carry absolute values.

`stats` counts every offer by outcome: each accepted change ends as exactly one of `sent`,
`superseded` (replaced by a later change in its window) or `unchanged` (the shop already shows it).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

Cause = TypeVar("Cause")


class Offer(Enum):
    """What `ShopSyncCoalescer.offer` did with a change."""

    OPENED = "opened"        # a new window is pending for the SKU
    MERGED = "merged"        # joined the SKU's open window, superseding its previous value
    UNCHANGED = "unchanged"  # the shop already shows this figure and nothing is pending: nothing to do
    STALE = "stale"          # not newer than a version already offered: ignored


@dataclass(frozen=True, slots=True)
class ShopStockCommand(Generic[Cause]):
    """One command to send: set the shop's stock of `sku` to `available` (never negative)."""

    sku: str
    available: int
    atp_version: int
    cause: Cause | None = None  # whatever the caller passed with the offer that carried this value
    seq: int = field(default=0, compare=False)  # its window's sequence number (for `confirm`)


@dataclass(slots=True)
class CoalescerStats:
    """Running counts of offers by outcome (never reset by `forget`)."""

    offered: int = 0
    stale: int = 0
    sent: int = 0
    superseded: int = 0
    unchanged: int = 0


@dataclass(slots=True)
class _Pending(Generic[Cause]):
    visible: int
    version: int
    cause: Cause | None


def shop_visible(available: int) -> int:
    """The figure the shop shows for an ATP `available`: never below zero."""
    return available if available > 0 else 0


class ShopSyncCoalescer(Generic[Cause]):
    """Per-SKU coalescing of stock changes into shop commands; see the module docstring."""

    def __init__(self, window_ms: int) -> None:
        if window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, got {window_ms}")
        self.window_ms = window_ms
        self.stats = CoalescerStats()
        self._seen: dict[str, int] = {}        # sku -> newest version offered
        self._sent: dict[str, int] = {}        # sku -> shop-visible figure of the last command
        self._pending: dict[str, _Pending[Cause]] = {}
        self._windows: deque[tuple[int, int, str]] = deque()  # (deadline, seq, sku), in opening order
        self._inflight: dict[int, ShopStockCommand[Cause]] = {}  # seq -> command handed out, not confirmed
        self._next_seq = 1
        self._last_deadline = -math.inf

    def offer(self, sku: str, available: int, version: int, at_ms: int, cause: Cause | None = None) -> Offer:
        """Take the SKU's ATP `available` at `version`, seen at `at_ms`; `cause` rides along to the command."""
        stats = self.stats
        stats.offered += 1
        seen = self._seen.get(sku)
        if seen is not None and version <= seen:
            stats.stale += 1
            return Offer.STALE
        self._seen[sku] = version
        visible = available if available > 0 else 0
        pending = self._pending.get(sku)
        if pending is not None:
            pending.visible = visible
            pending.version = version
            pending.cause = cause
            stats.superseded += 1
            return Offer.MERGED
        if self._sent.get(sku) == visible:
            stats.unchanged += 1
            return Offer.UNCHANGED
        deadline = at_ms + self.window_ms
        if deadline < self._last_deadline:  # the clock stepped back: keep windows in opening order
            deadline = int(self._last_deadline)
        self._last_deadline = deadline
        self._pending[sku] = _Pending(visible, version, cause)
        self._windows.append((deadline, self._next_seq, sku))
        self._next_seq += 1
        return Offer.OPENED

    def take_due(self, now_ms: float, limit: int | None = None) -> list[ShopStockCommand[Cause]]:
        """Close the windows that ended at or before `now_ms`; their commands, in window order, in flight.

        `limit` caps how many windows are closed in this call (the rest stay due for the next one),
        so a caller can interleave sending with other work. Nothing is recorded as sent until
        `confirm`; until then each command holds `oldest_open()` back.
        """
        out: list[ShopStockCommand[Cause]] = []
        windows, pending_by_sku, sent, stats = self._windows, self._pending, self._sent, self.stats
        inflight = self._inflight
        budget = len(windows) if limit is None else limit
        while budget > 0 and windows and windows[0][0] <= now_ms:
            budget -= 1
            _, seq, sku = windows.popleft()
            pending = pending_by_sku.pop(sku)
            if sent.get(sku) == pending.visible:  # the burst came back to what the shop shows
                stats.unchanged += 1
                continue
            command = ShopStockCommand(sku, pending.visible, pending.version, pending.cause, seq)
            inflight[seq] = command
            out.append(command)
        return out

    def confirm(self, commands: list[ShopStockCommand[Cause]]) -> None:
        """The broker confirmed these commands (from `take_due` or `unconfirmed`): record them as sent."""
        inflight, sent, stats = self._inflight, self._sent, self.stats
        for command in commands:
            if inflight.pop(command.seq, None) is not None:
                sent[command.sku] = command.available
                stats.sent += 1

    def unconfirmed(self) -> list[ShopStockCommand[Cause]]:
        """Commands handed out by `take_due` and not confirmed yet, in window order (to send again)."""
        return [self._inflight[seq] for seq in sorted(self._inflight)]

    def due(self, now_ms: float, limit: int | None = None) -> list[ShopStockCommand[Cause]]:
        """`take_due` and `confirm` at once: for callers that have no delivery to wait for."""
        out = self.take_due(now_ms, limit)
        self.confirm(out)
        return out

    def drain(self) -> list[ShopStockCommand[Cause]]:
        """Close every open window now and confirm at once (see `due`)."""
        return self.due(math.inf)

    def next_deadline(self) -> int | None:
        """When the next window ends (ms, the caller's clock), or None when nothing is pending."""
        return self._windows[0][0] if self._windows else None

    def oldest_open(self) -> int:
        """Sequence number of the oldest open window; when none is open, the number the next one gets.

        Every offer made before the window with this number was opened is settled. A command in flight
        (taken, not confirmed) counts as open: its input is not settled until the broker confirmed it.
        """
        oldest = self._windows[0][1] if self._windows else self._next_seq
        if self._inflight:
            oldest = min(oldest, min(self._inflight))
        return oldest

    @property
    def next_seq(self) -> int:
        """The sequence number the next `Offer.OPENED` gets (read it before offering to learn it)."""
        return self._next_seq

    def pending_count(self) -> int:
        """How many SKUs have an open window."""
        return len(self._pending)

    def known_skus(self) -> int:
        """How many SKUs are remembered (newest version offered)."""
        return len(self._seen)

    def forget(self) -> None:
        """Drop all per-SKU memory and open windows (sequence numbers keep increasing)."""
        self._seen.clear()
        self._sent.clear()
        self._pending.clear()
        self._windows.clear()
        self._inflight.clear()
        self._last_deadline = -math.inf
