"""Order reservations, pure: the records `reservation_changes` derives from lifecycle states.

States come from the real lifecycle (`apply`), so these tests also pin the lifecycle facts the
reservations rely on (duplicates and stale events produce no state, source times only grow). The
property test folds every emitted record through the ATP core and checks that the order's reserved
units per SKU equal its final lines (nothing once cancelled), whatever the duplicates and order.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopstream.processors.inventory.atp import Policy, apply_reservation
from shopstream.processors.inventory.figures import levels
from shopstream.processors.inventory.sku_state import SkuState, new_state
from shopstream.processors.orders.lifecycle import OrderEvent, apply
from shopstream.processors.orders.mapping import load_mapping
from shopstream.processors.orders.output_meta import ORDERS_NAMESPACE
from shopstream.processors.orders.reservations import (
    reservation_changes,
    reservation_event_id,
    shipment_reservations,
    sku_totals,
)
from shopstream.schemas.models import (
    EventMeta,
    Money,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderState,
    OrderUpdated,
    ReservationChanged,
    ShipmentDispatched,
    ShipmentLine,
)

SHOPIFY = load_mapping("shopify")
T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
ORDER = "5001"
_NS = uuid.UUID("2b6f4c1e-0a7d-4f6b-8e21-9c4d3a5b7e10")
POLICY = Policy(online_locations=frozenset({"default"}))


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def _meta(event_type: str, key: str, minute: int) -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid5(_NS, f"{ORDER}:{key}")), event_type=event_type, occurred_at=at(minute),
                     recorded_at=at(minute) + timedelta(seconds=3), source="shopify",
                     source_event_id=f"wh-{key}", correlation_id=f"shopify:order:{ORDER}")


def _eur(amount: int) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def lines(*spec: tuple[str, str, int]) -> list[OrderLine]:
    """(line_id, sku, quantity) triples."""
    return [OrderLine(line_id=lid, sku=sku, quantity=q, unit_price=_eur(5)) for lid, sku, q in spec]


TWO = lines(("l1", "SKU-A", 2), ("l2", "SKU-B", 1))


def placed(minute: int = 0, order_lines: list[OrderLine] | None = None, key: str = "p") -> OrderPlaced:
    ls = TWO if order_lines is None else order_lines
    return OrderPlaced(meta=_meta("OrderPlaced", key, minute), order_id=ORDER, order_number="#5001",
                       placed_at=at(minute), currency="EUR", total=_eur(5 * sum(x.quantity for x in ls)), lines=ls)


def updated(minute: int, order_lines: list[OrderLine] | None = None, key: str | None = None,
            financial: str | None = None, fulfillment: str | None = None) -> OrderUpdated:
    ls = TWO if order_lines is None else order_lines
    return OrderUpdated(meta=_meta("OrderUpdated", key or f"u{minute}", minute), order_id=ORDER,
                        updated_at=at(minute), currency="EUR", total=_eur(5 * sum(x.quantity for x in ls)),
                        lines=ls, source_financial_status=financial, source_fulfillment_status=fulfillment)


def cancelled(minute: int, order_lines: list[OrderLine] | None = None, key: str | None = None) -> OrderCancelled:
    return OrderCancelled(meta=_meta("OrderCancelled", key or f"c{minute}", minute), order_id=ORDER,
                          cancelled_at=at(minute), reason="customer", lines=order_lines or [])


def step(state: OrderState | None, event: OrderEvent) -> tuple[OrderState | None, list[ReservationChanged]]:
    """What the orders adapter does: apply, and for an applied event derive the reservation records."""
    outcome = apply(state, event, SHOPIFY)
    if outcome.duplicate or outcome.rejected or outcome.state is None:
        return state, []
    return outcome.state, reservation_changes(state, outcome.state, event.meta)


def run(events: Iterable[OrderEvent]) -> tuple[OrderState | None, list[list[ReservationChanged]]]:
    state: OrderState | None = None
    out: list[list[ReservationChanged]] = []
    for event in events:
        state, records = step(state, event)
        out.append(records)
    return state, out


def summary(records: Sequence[ReservationChanged]) -> list[tuple[str, str, int, int | None, datetime]]:
    return [(r.sku, r.action, r.quantity, r.delta, r.meta.occurred_at) for r in records]


# --- each rule ----------------------------------------------------------------------------------


def test_placed_reserves_each_sku_at_placed_at() -> None:
    _, (records,) = run([placed(0, lines(("l1", "SKU-A", 2), ("l2", "SKU-B", 1), ("l3", "SKU-A", 3)))])
    assert summary(records) == [("SKU-A", "reserve", 5, 5, at(0)), ("SKU-B", "reserve", 1, 1, at(0))]
    event = placed(0)
    for r in records:
        assert r.order_id == ORDER
        assert r.location is None
        assert r.reason == "order.placed"
        assert r.meta.event_type == "ReservationChanged"
        assert r.meta.source == "shopstream.orders"
        assert r.meta.causation_id == event.meta.event_id
        assert r.meta.correlation_id == event.meta.correlation_id
        assert r.meta.recorded_at == event.meta.recorded_at
    # line_id only when a single line carries the SKU
    assert [r.line_id for r in records] == [None, "l2"]


def test_order_created_from_an_update_reserves_at_updated_at() -> None:
    _, (records,) = run([updated(4)])
    assert summary(records) == [("SKU-A", "reserve", 2, 2, at(4)), ("SKU-B", "reserve", 1, 1, at(4))]
    assert {r.reason for r in records} == {"order.created_from_update"}


def test_update_changing_a_quantity_adjusts_that_sku_only() -> None:
    _, (_, records) = run([placed(0), updated(5, lines(("l1", "SKU-A", 4), ("l2", "SKU-B", 1)))])
    assert summary(records) == [("SKU-A", "adjust", 4, 2, at(5))]
    assert records[0].reason == "order.updated"


def test_update_without_line_changes_emits_nothing() -> None:
    _, (_, records) = run([placed(0, key="p"), updated(5, financial="paid")])
    assert records == []


def test_removed_sku_is_adjusted_to_zero_and_can_come_back() -> None:
    only_a = lines(("l1", "SKU-A", 2))
    _, (_, removed, back) = run([placed(0), updated(5, only_a), updated(9, lines(("l1", "SKU-A", 2),
                                                                                  ("l9", "SKU-B", 3)))])
    assert summary(removed) == [("SKU-B", "adjust", 0, -1, at(5))]  # not release: release is terminal
    assert summary(back) == [("SKU-B", "adjust", 3, 3, at(9))]


def test_sku_new_to_the_order_is_adjusted_up() -> None:
    _, (_, records) = run([placed(0), updated(3, [*TWO, *lines(("l3", "SKU-C", 2))])])
    assert summary(records) == [("SKU-C", "adjust", 2, 2, at(3))]


def test_moving_units_between_lines_of_one_sku_changes_nothing() -> None:
    _, (_, records) = run([placed(0, lines(("l1", "SKU-A", 2))),
                           updated(3, lines(("l1", "SKU-A", 1), ("l2", "SKU-A", 1)))])
    assert records == []


def test_partial_cancel_adjusts_at_cancelled_at() -> None:
    _, (_, records) = run([placed(0), cancelled(6, lines(("l1", "SKU-A", 1)))])
    assert summary(records) == [("SKU-A", "adjust", 1, -1, at(6))]
    assert records[0].reason == "order.lines_cancelled"
    _, (_, records) = run([placed(0), cancelled(6, lines(("l2", "SKU-B", 1)))])
    assert summary(records) == [("SKU-B", "adjust", 0, -1, at(6))]


def test_whole_cancel_releases_every_sku() -> None:
    _, (_, records) = run([placed(0), cancelled(8)])
    assert summary(records) == [("SKU-A", "release", 0, -2, at(8)), ("SKU-B", "release", 0, -1, at(8))]
    assert {r.reason for r in records} == {"order.cancelled"}


def test_cancelling_the_last_lines_releases() -> None:
    _, (_, _, records) = run([placed(0), cancelled(3, lines(("l1", "SKU-A", 2))),
                              cancelled(4, lines(("l2", "SKU-B", 1)))])
    # The lifecycle turns "nothing left" into a whole cancellation: the remaining SKU is released.
    assert summary(records) == [("SKU-B", "release", 0, -1, at(4))]


def test_cancel_older_than_the_last_snapshot_still_releases_with_its_own_time() -> None:
    _, (_, _, records) = run([placed(0), updated(9, lines(("l1", "SKU-A", 5))), cancelled(4)])
    assert summary(records) == [("SKU-A", "release", 0, -5, at(4))]


def test_a_cancelled_order_emits_nothing_any_more() -> None:
    state, (*_, records) = run([placed(0), cancelled(3), updated(7, lines(("l1", "SKU-A", 9)), financial="voided")])
    assert state is not None and state.version == 3  # the lifecycle applied the snapshot...
    assert records == []                             # ...but the reservations stay released


@pytest.mark.parametrize("events", [
    [placed(0), placed(0)],                                       # redelivered create
    [placed(0), placed(2, key="p2")],                             # second create of a known order
    [placed(0), updated(5, lines(("l1", "SKU-A", 4))), updated(5, lines(("l1", "SKU-A", 4)))],  # redelivery
    [placed(0), updated(5, lines(("l1", "SKU-A", 4))), updated(3, lines(("l1", "SKU-A", 7)))],  # stale
    [placed(5), updated(5, lines(("l1", "SKU-A", 7)))],           # not newer than placed_at
    [placed(0), cancelled(4, lines(("l1", "SKU-A", 1))), cancelled(4, lines(("l1", "SKU-A", 1)))],
    [placed(0), cancelled(4), cancelled(4)],
    [placed(0), cancelled(4), cancelled(6, key="c-again")],       # already cancelled
])
def test_duplicates_and_stale_events_produce_nothing(events: list[OrderEvent]) -> None:
    _, out = run(events)
    assert out[-1] == []


def test_rejected_events_produce_nothing() -> None:
    _, (_, _, records) = run([placed(0), updated(3, fulfillment="fulfilled"), cancelled(5)])
    assert records == []  # a shipped order cannot be cancelled: rejected, nothing released
    _, (records,) = run([cancelled(5)])  # unknown order
    assert records == []


def test_ids_are_deterministic_per_cause_and_sku() -> None:
    _, (first,) = run([placed(0)])
    _, (again,) = run([placed(0)])
    assert first == again
    assert [r.meta.event_id for r in first] == [
        str(uuid.uuid5(ORDERS_NAMESPACE, f"ReservationChanged:{placed(0).meta.event_id}:{sku}"))
        for sku in ("SKU-A", "SKU-B")]
    assert first[0].meta.event_id == reservation_event_id(placed(0).meta.event_id, "SKU-A")
    _, (_, adjust) = run([placed(0), updated(5, lines(("l1", "SKU-A", 4), ("l2", "SKU-B", 1)))])
    assert adjust[0].meta.event_id not in {r.meta.event_id for r in first}


def test_nothing_without_a_new_state() -> None:
    state, _ = run([placed(0)])
    assert reservation_changes(state, None, placed(0).meta) == []


def test_line_change_without_a_newer_source_time_is_refused() -> None:
    state, _ = run([placed(0)])
    assert state is not None
    bad = state.model_copy(update={"lines": lines(("l1", "SKU-A", 9)), "version": 2})
    with pytest.raises(ValueError, match="not after"):
        reservation_changes(state, bad, updated(0).meta)


def test_states_of_different_orders_are_refused() -> None:
    state, _ = run([placed(0)])
    assert state is not None
    with pytest.raises(ValueError, match="different orders"):
        reservation_changes(state, state.model_copy(update={"order_id": "other"}), placed(0).meta)


def test_sku_totals_ignores_non_positive_lines() -> None:
    assert sku_totals(lines(("a", "X", 2), ("b", "X", 0), ("c", "Y", 0), ("d", "X", 1))) == {"X": 3}


# --- ship -----------------------------------------------------------------------------------


def test_shipment_dispatched_ships_each_sku_at_dispatch_time() -> None:
    event = ShipmentDispatched(
        meta=_meta("ShipmentDispatched", "s1", 30), order_id=ORDER, shipment_id="sh-1", carrier="dhl",
        location="default", dispatched_at=at(29),
        lines=[ShipmentLine(sku="SKU-B", quantity=1), ShipmentLine(sku="SKU-A", quantity=1),
               ShipmentLine(sku="SKU-A", quantity=1), ShipmentLine(sku="SKU-C", quantity=0)])
    records = shipment_reservations(event, stock_locations={"default"})
    assert [(r.sku, r.action, r.quantity, r.location, r.meta.occurred_at, r.reason) for r in records] == [
        ("SKU-A", "ship", 2, "default", at(29), "shipment.dispatched"),
        ("SKU-B", "ship", 1, "default", at(29), "shipment.dispatched")]
    assert records == shipment_reservations(event, stock_locations={"default"})
    assert {r.meta.causation_id for r in records} == {event.meta.event_id}
    assert records[0].meta.event_id == reservation_event_id(event.meta.event_id, "SKU-A")
    # Folded into the ATP core after the order's reserve, the units are shipped (still deducted).
    _, (reserved,) = run([placed(0)])
    state = fold(new_state("SKU-A"), [r for r in reserved if r.sku == "SKU-A"] + records[:1])
    assert state.reservations[ORDER].status == "shipped"
    assert levels(state, POLICY.online_locations).reserved == 2


def test_dispatch_without_lines_ships_the_whole_order() -> None:
    event = ShipmentDispatched(meta=_meta("ShipmentDispatched", "s2", 30), order_id=ORDER, shipment_id="sh-2",
                               carrier="dhl", location="default", dispatched_at=at(29), lines=[])
    state, _ = run([placed(0, lines(("l1", "SKU-A", 2), ("l2", "SKU-B", 1), ("l3", "SKU-A", 1)))])
    assert shipment_reservations(event) == []  # the contents are unknown without the order
    records = shipment_reservations(event, state)
    assert [(r.sku, r.action, r.quantity) for r in records] == [("SKU-A", "ship", 3), ("SKU-B", "ship", 1)]
    assert state is not None
    with pytest.raises(ValueError, match="state of order"):
        shipment_reservations(event, state.model_copy(update={"order_id": "other"}))


# --- as a property, through the ATP core --------------------------------------------------------


def fold(state: SkuState, records: Iterable[ReservationChanged]) -> SkuState:
    for r in records:
        state = apply_reservation(state, POLICY, order_id=r.order_id, action=r.action, quantity=r.quantity,
                                  at=r.meta.occurred_at, location=r.location).state
    return state


SKUS = ("SKU-A", "SKU-B", "SKU-C")


@st.composite
def order_events(draw: st.DrawFn) -> list[OrderEvent]:
    """Creates, snapshots, partial and whole cancels of one order at random minutes, with duplicates."""
    line_sets = st.lists(st.tuples(st.sampled_from(["l1", "l2", "l3", "l4"]), st.sampled_from(SKUS),
                                   st.integers(0, 3)), max_size=4, unique_by=lambda t: t[0])
    events: list[OrderEvent] = []
    for n in range(draw(st.integers(1, 8))):
        minute = draw(st.integers(0, 12))
        kind = draw(st.sampled_from(["placed", "updated", "updated", "partial", "cancel"]))
        spec = draw(line_sets)
        if kind == "placed":
            events.append(placed(minute, lines(*spec), key=f"p{n}"))
        elif kind == "updated":
            events.append(updated(minute, lines(*spec), key=f"u{n}"))
        elif kind == "partial" and spec:
            events.append(cancelled(minute, lines(*((lid, sku, max(q, 1)) for lid, sku, q in spec)), key=f"c{n}"))
        else:
            events.append(cancelled(minute, key=f"c{n}"))
        if draw(st.booleans()) and events:
            events.append(draw(st.sampled_from(events)))  # at-least-once: an earlier event again
    return events


@settings(max_examples=300, deadline=None)
@given(events=order_events())
def test_reserved_units_follow_the_final_order(events: list[OrderEvent]) -> None:
    final, out = run(events)
    records = [r for batch in out for r in batch]
    # reserve/adjust times strictly increase per order (the ATP core's ordering key)
    times = [r.meta.occurred_at for r in records if r.action in ("reserve", "adjust")]
    per_sku: dict[str, list[datetime]] = {}
    for r in records:
        if r.action in ("reserve", "adjust"):
            per_sku.setdefault(r.sku, []).append(r.meta.occurred_at)
    assert times == sorted(times)
    assert all(a < b for ts in per_sku.values() for a, b in itertools.pairwise(ts))
    expected = {} if final is None or final.cancelled_at is not None else sku_totals(final.lines)
    for sku in SKUS:
        mine = [r for r in records if r.sku == sku]
        state = fold(new_state(sku), mine)
        assert levels(state, POLICY.online_locations).reserved == expected.get(sku, 0)
        # Re-emitting everything (a replay of the input) changes nothing.
        assert fold(state, mine) == state


@pytest.mark.parametrize("location", ["Hamburg, DE", "72718327905", None])
def test_a_ship_names_only_a_stock_location(location: str | None) -> None:
    """A carrier's scan place or a shop's location id is not an ERP location: the ship is unlocated.

    Located there, the ATP core would move the reservation out of the online sum and sell the
    shipped units again before the ERP counted them."""
    event = ShipmentDispatched(meta=_meta("ShipmentDispatched", "s3", 30), order_id=ORDER, shipment_id="sh-3",
                               carrier="dhl", location=location, dispatched_at=at(29),
                               lines=[ShipmentLine(sku="SKU-A", quantity=2)])
    (record,) = shipment_reservations(event, stock_locations={"default", "WH-BER"})
    assert record.location is None
    _, (reserved,) = run([placed(0)])
    state = fold(new_state("SKU-A"), [r for r in reserved if r.sku == "SKU-A"] + [record])
    assert levels(state, POLICY.online_locations).reserved == 2
