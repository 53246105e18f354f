"""The inventory store's changelog layout: a SKU's figures in one record, each reservation in its own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shopstream.kafka import MESSAGE_MAX_BYTES
from shopstream.processors.inventory import changelog
from shopstream.processors.inventory.sku_state import LocationStock, Reservation, SkuState, new_state

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _state(sku: str, open_orders: int) -> SkuState:
    return SkuState(sku=sku, version=open_orders, updated_at=T0,
                    locations={"default": LocationStock(on_hand=1_000_000, as_of=T0)},
                    reservations={f"order-{n}": Reservation(quantity=2, status="open", at=T0 + timedelta(seconds=n),
                                                           location="default", reserved_at=T0)
                                  for n in range(open_orders)})


def _apply(log: dict[bytes, bytes], writes: dict[bytes, Any]) -> None:
    """What compaction keeps of the records `writes` makes (encoded as the runner writes them)."""
    for key, value in writes.items():
        if value is None:
            log.pop(key, None)
        else:
            log[key] = changelog.encode(value)


def _restore(log: dict[bytes, bytes]) -> tuple[dict[bytes, Any], set[bytes]]:
    state = {key: changelog.decode(value) for key, value in log.items()}
    return state, changelog.fold(state)


def test_a_state_written_then_restored_is_the_same_state() -> None:
    state = _state("SKU-1", 5)
    log: dict[bytes, bytes] = {}
    _apply(log, changelog.writes(b"SKU-1", new_state("SKU-1"), state))
    assert len(log) == 6  # the figures and five reservations
    restored, old_layout = _restore(log)
    assert restored[b"SKU-1"] == state
    assert old_layout == set()


def test_a_change_writes_the_figures_and_only_the_reservations_it_changed() -> None:
    before = _state("SKU-1", 4)
    changed = replace(before.reservations["order-1"], quantity=5, at=T0 + timedelta(hours=1))
    added = Reservation(quantity=1, status="open", at=T0, location="default", reserved_at=T0)
    reservations = {**before.reservations, "order-1": changed, "order-9": added}
    del reservations["order-3"]  # forgotten (pruned)
    after = replace(before, version=before.version + 1, reservations=reservations)

    writes = changelog.writes(b"SKU-1", before, after)
    assert set(writes) == {b"SKU-1", changelog.reservation_key("SKU-1", "order-1"),
                           changelog.reservation_key("SKU-1", "order-9"), changelog.reservation_key("SKU-1", "order-3")}
    assert writes[changelog.reservation_key("SKU-1", "order-3")] is None  # a tombstone

    log: dict[bytes, bytes] = {}
    _apply(log, changelog.writes(b"SKU-1", new_state("SKU-1"), before))
    _apply(log, writes)
    assert _restore(log)[0][b"SKU-1"] == after


def test_a_hot_skus_records_stay_small_however_many_orders_hold_it() -> None:
    before = _state("HOT", 10_000)
    whole = len(orjson.dumps(before))
    assert whole > MESSAGE_MAX_BYTES  # the layout before: one record the broker refuses, the worker halts
    extra = Reservation(quantity=1, status="open", at=T0, location="default", reserved_at=T0)
    after = replace(before, version=before.version + 1, reservations={**before.reservations, "order-new": extra})
    records = [changelog.encode(value) for value in changelog.writes(b"HOT", before, after).values()]
    assert len(records) == 2
    assert max(len(r) for r in records) < 1024


def test_a_state_of_the_layout_before_restores_whole_and_is_rewritten_at_its_next_change() -> None:
    state = _state("SKU-1", 3)
    log = {b"SKU-1": orjson.dumps(state)}  # reservations inside the SKU's own record
    restored, old_layout = _restore(log)
    assert restored[b"SKU-1"] == state
    assert old_layout == {b"SKU-1"}
    after = replace(state, version=state.version + 1)
    writes = changelog.writes(b"SKU-1", state, after, every=True)
    assert len(writes) == 4  # every reservation gets its own record now
    _apply(log, writes)
    again, old_layout = _restore(log)
    assert again[b"SKU-1"] == after
    assert old_layout == set()


def test_reservations_whose_figures_record_is_missing_still_restore_into_their_sku() -> None:
    state = _state("SKU-2", 2)
    log: dict[bytes, bytes] = {}
    _apply(log, changelog.writes(b"SKU-2", new_state("SKU-2"), state))
    del log[b"SKU-2"]
    restored, _ = _restore(log)
    assert restored[b"SKU-2"].reservations == state.reservations
