"""Velocity windows on event time: counts, late events, pruning, persistence, and arrival-order independence."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shopstream.processors.review.evaluate import Verdict
from shopstream.processors.review.rules import load_rules
from shopstream.processors.review.velocity import ReviewState, decide, step, step_risk
from shopstream.schemas.models import OrderPlaced, OrderUpdated

from .review_events import ELSEWHERE, order, ruleset, update

RULES = load_rules()


def run(events: list[OrderPlaced | OrderUpdated], state: ReviewState | None = None) -> dict[str, Verdict]:
    """Feed events in the given order; the last verdict of every order."""
    state = state or ReviewState()
    last: dict[str, Verdict] = {}
    for event in events:
        for verdict in step(state, RULES, event):
            last[verdict.order_id] = verdict
    return last


def test_the_fourth_order_of_an_email_within_an_hour_is_held_not_the_earlier_ones() -> None:
    events = [order(f"o{i}", minute=i * 10) for i in range(4)]
    last = run(events)
    assert {o: v.action for o, v in last.items()} == {"o0": "pass", "o1": "pass", "o2": "pass", "o3": "hold"}
    assert last["o3"].fired[0].evidence == {"velocity.orders.per_email.1h": "4"}


def test_orders_outside_the_window_do_not_count() -> None:
    events = [order(f"o{i}", minute=i * 25) for i in range(4)]  # 0, 25, 50, 75: o3's window is (15, 75]
    assert run(events)["o3"].action == "pass"


def test_a_late_event_re_decides_the_orders_whose_window_it_falls_into() -> None:
    state = ReviewState()
    for i in (1, 2, 3):
        assert [v.action for v in step(state, RULES, order(f"o{i}", minute=i * 10))] == ["pass"]
    late = step(state, RULES, order("o0", minute=0))
    assert {v.order_id: v.action for v in late} == {"o0": "pass", "o3": "hold"}  # only what changed


def test_other_emails_and_updates_of_one_order_do_not_count_twice() -> None:
    first = order("o1", minute=0)
    events = [first, update(first, 5), update(first, 6), order("o2", minute=7, email="other@example.com"),
              order("o3", minute=8), order("o4", minute=9)]
    assert run(events)["o4"].action == "pass"  # o1, o3, o4 share the email: 3, not more than 3


def test_an_update_re_decides_with_its_newer_facts() -> None:
    first = order("o1", minute=0)
    state = ReviewState()
    assert step(state, RULES, first)[0].action == "pass"
    moved = step(state, RULES, update(first, 5, shipping_address=ELSEWHERE))
    assert moved[0].action == "hold" and moved[0].rule_ids == ("address-mismatch",)
    assert step(state, RULES, update(first, 4)) == []  # an older snapshot changes nothing


def test_prune_forgets_what_is_older_than_the_retention() -> None:
    state = ReviewState()
    run([order("old", minute=0), order("new", minute=60 * 49)], state)
    assert set(state.facts) == {"new"}
    assert ("email", "eva@example.com") in state.index and state.index[("email", "eva@example.com")] == {"new"}


def test_the_state_survives_a_round_trip_through_its_dict() -> None:
    state = ReviewState()
    run([order(f"o{i}", minute=i) for i in range(3)], state)
    state.observe_risk("o1", "elevated")
    copy = ReviewState.from_dict(state.to_dict())
    assert copy.to_dict() == state.to_dict()
    assert copy.index == state.index
    assert [v.action for v in step(copy, RULES, order("o3", minute=4))] == ["hold"]
    assert decide(copy, RULES, "o2") is None  # the last verdicts sent came along


EMAILS = ("a@x.de", "b@x.de")
events_strategy = st.lists(
    st.tuples(st.integers(0, 150), st.sampled_from(EMAILS), st.booleans(), st.integers(0, 3)),
    min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(events_strategy, st.randoms(use_true_random=False), st.integers(0, 3))
def test_any_arrival_order_of_the_same_events_gives_the_same_verdicts(
        spec: list[tuple[int, str, bool, int]], rnd: object, duplicates: int) -> None:
    events: list[OrderPlaced | OrderUpdated] = []
    for i, (minute, email, moved, updates) in enumerate(spec):
        placed = order(f"o{i}", minute=minute, email=email, orders_count=1 + i % 3,
                       shipping=ELSEWHERE if moved else None, billing=None)
        events.append(placed)
        events.extend(update(placed, minute + 1 + u, total={"amount": str(100 + 30 * u), "currency": "EUR"})
                      for u in range(updates))
    shuffled = list(events) + events[:duplicates]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    expected = run(events)
    got = run(shuffled)
    def summary(last: dict[str, Verdict]) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {o: (v.action, v.rule_ids) for o, v in last.items()}

    assert summary(got) == summary(expected)


def test_windows_are_event_time_not_arrival_time() -> None:
    late_but_old = [order(f"o{i}", minute=i * 10) for i in range(3)] + [order("o9", minute=-120)]
    assert run(late_but_old)["o9"].action == "pass"
    assert timedelta(hours=1) in {v.window for v in RULES.velocities()}


def test_the_provider_risk_level_is_a_fact_and_the_riskiest_wins() -> None:
    rules = ruleset('version: "r"\nrules:\n  - id: risky\n    description: d\n    action: hold\n'
                    '    when: {fact: risk_level, op: in, value: [elevated, highest]}\n')
    state = ReviewState()
    assert [v.action for v in step(state, rules, order("o1"))] == ["pass"]
    assert step_risk(state, rules, "o1", "normal") == []  # changes nothing the rules see
    [held] = step_risk(state, rules, "o1", "elevated")
    assert held.action == "hold" and held.fired[0].evidence == {"risk_level": "elevated"}
    assert step_risk(state, rules, "o1", "normal") == []  # a less risky report does not lower it
    other = ReviewState()
    step_risk(other, rules, "o1", "elevated")  # before the order: kept, decided when the order arrives
    assert [v.action for v in step(other, rules, order("o1"))] == ["hold"]


def test_velocity_per_ip_and_a_gateway_rule() -> None:
    rules = ruleset('version: "r"\nrules:\n  - id: ip-burst\n    description: d\n    action: hold\n'
                    '    when: {velocity: {measure: orders, per: ip, window: 30m}, op: gte, value: 3}\n'
                    '  - id: paypal\n    description: d\n    action: flag\n'
                    '    when: {fact: payment_gateway, op: eq, value: PayPal}\n')
    state = ReviewState()
    events = [order(f"o{i}", minute=i * 5, email=f"e{i}@x.de").model_copy(update={"client_ip": "203.0.113.7"})
              for i in range(3)]
    last = {}
    for event in events:
        for verdict in step(state, rules, event):
            last[verdict.order_id] = verdict
    assert [last[f"o{i}"].action for i in range(3)] == ["pass", "pass", "hold"]
    [flagged] = step(state, rules, order("p1", minute=60).model_copy(update={"payment_gateway": "paypal"}))
    assert flagged.rule_ids == ("paypal",)
