"""The shop stock sync coalescer (pure): bursts collapse, only visible changes are sent, clock injected."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopstream.processors.inventory.shop_sync import (
    Offer,
    ShopStockCommand,
    ShopSyncCoalescer,
    shop_visible,
)

W = 2000  # window, ms


def cmds(coalescer: ShopSyncCoalescer[object], now: float) -> list[tuple[str, int, int]]:
    return [(c.sku, c.available, c.atp_version) for c in coalescer.due(now)]


def test_burst_within_the_window_yields_one_command_with_the_last_value() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    assert c.offer("A", 10, 1, at_ms=0) is Offer.OPENED
    for version in range(2, 1001):
        assert c.offer("A", 10 + version, version, at_ms=version) is Offer.MERGED
    assert cmds(c, W - 1) == []          # the window opened at 0 is still open
    assert cmds(c, W) == [("A", 1010, 1000)]
    assert cmds(c, 10 * W) == []         # nothing more
    assert (c.stats.sent, c.stats.superseded, c.stats.unchanged) == (1, 999, 0)


def test_window_is_fixed_from_the_first_change_not_extended_by_later_ones() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    c.offer("A", 1, 1, at_ms=0)
    c.offer("A", 2, 2, at_ms=1999)
    assert cmds(c, 2000) == [("A", 2, 2)]
    # The next change opens a new window from its own time.
    assert c.offer("A", 3, 3, at_ms=2500) is Offer.OPENED
    assert c.next_deadline() == 4500
    assert cmds(c, 4499) == []
    assert cmds(c, 4500) == [("A", 3, 3)]


def test_unchanged_shop_visible_figure_sends_nothing() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    c.offer("A", 5, 1, at_ms=0)
    assert cmds(c, W) == [("A", 5, 1)]
    # Another figure changed (new version), available did not: nothing to tell the shop.
    assert c.offer("A", 5, 2, at_ms=3000) is Offer.UNCHANGED
    assert c.pending_count() == 0
    assert cmds(c, 100_000) == []
    assert c.stats.unchanged == 1


def test_burst_that_returns_to_the_figure_last_sent_sends_nothing() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    c.offer("A", 5, 1, at_ms=0)
    assert cmds(c, W) == [("A", 5, 1)]
    assert c.offer("A", 4, 2, at_ms=3000) is Offer.OPENED
    assert c.offer("A", 5, 3, at_ms=3001) is Offer.MERGED
    assert cmds(c, 3000 + W) == []
    assert (c.stats.sent, c.stats.superseded, c.stats.unchanged) == (1, 1, 1)
    # It is remembered as closed: the next change is measured against 5 again.
    c.offer("A", 6, 4, at_ms=6000)
    assert cmds(c, 6000 + W) == [("A", 6, 4)]


def test_negative_available_is_shown_as_zero() -> None:
    assert shop_visible(-3) == 0 and shop_visible(0) == 0 and shop_visible(7) == 7
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    c.offer("A", -3, 1, at_ms=0)
    assert cmds(c, W) == [("A", 0, 1)]
    # Oversold deeper, or back to exactly zero: the shop still shows 0, so nothing is sent.
    assert c.offer("A", -7, 2, at_ms=5000) is Offer.UNCHANGED
    assert c.offer("A", 0, 3, at_ms=5001) is Offer.UNCHANGED
    assert cmds(c, 100_000) == []
    c.offer("A", 2, 4, at_ms=6000)
    assert cmds(c, 6000 + W) == [("A", 2, 4)]


def test_older_or_equal_versions_are_ignored() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    c.offer("A", 5, 7, at_ms=0)
    assert c.offer("A", 9, 6, at_ms=1) is Offer.STALE   # older: would move the shop backwards
    assert c.offer("A", 9, 7, at_ms=2) is Offer.STALE   # redelivery of the same version
    assert cmds(c, W) == [("A", 5, 7)]
    assert c.offer("A", 1, 3, at_ms=5000) is Offer.STALE  # older than what was sent
    assert c.pending_count() == 0
    assert c.stats.stale == 3


def test_skus_are_independent() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    c.offer("A", 1, 1, at_ms=0)
    c.offer("B", 7, 1, at_ms=500)
    c.offer("A", 2, 2, at_ms=600)
    c.offer("B", 8, 2, at_ms=700)
    assert cmds(c, 2000) == [("A", 2, 2)]
    assert cmds(c, 2499) == []
    assert cmds(c, 2500) == [("B", 8, 2)]
    # A version of B older than A's is not stale: versions are per SKU.
    assert c.offer("A", 3, 10, at_ms=3000) is Offer.OPENED
    assert c.offer("B", 9, 3, at_ms=3000) is Offer.OPENED


def test_zero_window_sends_each_visible_change_at_the_next_due() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(0)
    c.offer("A", 1, 1, at_ms=10)
    assert cmds(c, 10) == [("A", 1, 1)]
    c.offer("A", 2, 2, at_ms=11)
    c.offer("A", 3, 3, at_ms=11)  # two changes before the caller asks: still coalesced
    assert cmds(c, 11) == [("A", 3, 3)]


def test_due_with_a_limit_leaves_the_rest_due_in_order() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    for i, sku in enumerate("ABCDE"):
        c.offer(sku, i + 1, 1, at_ms=i)
    assert [x[0] for x in cmds_limited(c, 10 * W, 2)] == ["A", "B"]
    assert c.oldest_open() == 3
    assert [x[0] for x in cmds_limited(c, 10 * W, 2)] == ["C", "D"]
    assert [x[0] for x in cmds_limited(c, 10 * W, 2)] == ["E"]
    assert c.pending_count() == 0


def cmds_limited(coalescer: ShopSyncCoalescer[object], now: float, limit: int) -> list[tuple[str, int, int]]:
    return [(x.sku, x.available, x.atp_version) for x in coalescer.due(now, limit=limit)]


def test_clock_stepping_back_keeps_windows_in_opening_order() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    c.offer("A", 1, 1, at_ms=10_000)
    c.offer("B", 1, 1, at_ms=5_000)   # the caller's clock went backwards
    assert c.next_deadline() == 12_000
    assert cmds(c, 12_000) == [("A", 1, 1), ("B", 1, 1)]


def test_sequence_numbers_and_oldest_open_window() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    assert c.oldest_open() == c.next_seq == 1
    c.offer("A", 1, 1, at_ms=0)        # window 1
    c.offer("B", 1, 1, at_ms=100)      # window 2
    c.offer("A", 2, 2, at_ms=200)      # merged into window 1
    assert c.oldest_open() == 1 and c.next_seq == 3
    c.due(W)
    assert c.oldest_open() == 2
    c.due(W + 100)
    assert c.oldest_open() == 3 and c.next_deadline() is None


def test_cause_of_the_latest_value_rides_along() -> None:
    c: ShopSyncCoalescer[str] = ShopSyncCoalescer(W)
    c.offer("A", 1, 1, at_ms=0, cause="ev-1")
    c.offer("A", 2, 2, at_ms=1, cause="ev-2")
    assert c.due(W) == [ShopStockCommand("A", 2, 2, "ev-2")]


def test_drain_and_forget() -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(W)
    c.offer("A", 1, 1, at_ms=0)
    assert [x.sku for x in c.drain()] == ["A"]  # early, e.g. before partitions are revoked
    c.forget()
    assert c.known_skus() == 0 and c.pending_count() == 0
    # After forgetting, the same figure is sent again (one redundant, idempotent command).
    assert c.offer("A", 1, 1, at_ms=10) is Offer.OPENED
    assert cmds(c, 10 + W) == [("A", 1, 1)]


def test_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window_ms"):
        ShopSyncCoalescer(-1)


# A step: offer (sku, available, version, time advance) or advance the clock and collect what is due.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("offer"), st.sampled_from("ABC"), st.integers(-5, 5), st.integers(1, 30),
                  st.integers(0, 700)),
        st.tuples(st.just("due"), st.just(""), st.just(0), st.just(0), st.integers(0, 3000)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, window=st.sampled_from([0, 1, 500, 1000]))
def test_properties_against_an_oracle(steps: list[tuple[str, str, int, int, int]], window: int) -> None:
    c: ShopSyncCoalescer[object] = ShopSyncCoalescer(window)
    now = 0
    newest: dict[str, tuple[int, int]] = {}            # sku -> (version, visible) of the newest offer
    sent: dict[str, list[tuple[int, int, int]]] = {}   # sku -> (time, visible, version) per command

    def collect(at: int) -> None:
        for cmd in c.due(at):
            sent.setdefault(cmd.sku, []).append((at, cmd.available, cmd.atp_version))

    for kind, sku, available, version, advance in steps:
        now += advance
        if kind == "due":
            collect(now)
            continue
        outcome = c.offer(sku, available, version, now)
        if sku in newest and version <= newest[sku][0]:
            assert outcome is Offer.STALE
        else:
            newest[sku] = (version, max(0, available))
    for cmd in c.drain():
        sent.setdefault(cmd.sku, []).append((now + window, cmd.available, cmd.atp_version))

    for history in sent.values():
        for (t1, v1, ver1), (t2, v2, ver2) in itertools.pairwise(history):
            assert v1 != v2                  # only changes of the visible figure are sent
            assert ver2 > ver1               # never backwards
            assert t2 - t1 >= window         # at most one command per window per SKU
        assert all(v >= 0 for _, v, _ in history)
    # Eventually the shop shows the visible figure of each SKU's newest version.
    for sku, (version, visible) in newest.items():
        assert sent[sku][-1][1] == visible
        assert sent[sku][-1][2] <= version
    s = c.stats
    assert s.offered == s.stale + s.sent + s.superseded + s.unchanged
    assert c.pending_count() == 0


def test_taken_commands_count_as_sent_only_once_confirmed() -> None:
    c: ShopSyncCoalescer[str] = ShopSyncCoalescer(window_ms=10)
    c.offer("A", 5, 1, 0)
    c.offer("B", 3, 1, 0)
    taken = c.take_due(10)
    assert [(x.sku, x.available) for x in taken] == [("A", 5), ("B", 3)]
    assert c.oldest_open() == taken[0].seq  # in flight holds the input back like an open window
    assert c.unconfirmed() == taken and c.stats.sent == 0
    c.confirm(taken[1:])
    assert c.oldest_open() == taken[0].seq and c.unconfirmed() == taken[:1]
    # A's figure is not "sent": the same figure again must still become a command (never swallowed).
    c.confirm(taken[:1])
    assert c.oldest_open() == c.next_seq and c.unconfirmed() == [] and c.stats.sent == 2
    assert c.offer("A", 5, 2, 20) is Offer.UNCHANGED  # confirmed now, so a repeat is unchanged


def test_unconfirmed_figure_is_not_taken_as_what_the_shop_shows() -> None:
    c: ShopSyncCoalescer[str] = ShopSyncCoalescer(window_ms=0)
    c.offer("A", 5, 1, 0)
    (lost,) = c.take_due(0)
    c.offer("A", 5, 2, 1)  # same figure, newer version, while the first command was never confirmed
    assert [x.available for x in c.take_due(1)] == [5]
    assert c.oldest_open() == lost.seq
    c.forget()
    assert c.unconfirmed() == [] and c.oldest_open() == c.next_seq
