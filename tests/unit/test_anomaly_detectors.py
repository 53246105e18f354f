"""The anomaly detectors on synthetic histories: minimum volume, planted spikes, one alert per anomaly,
recovery, replay and redelivery (processors/anomalies)."""

from __future__ import annotations

import json

import pytest

from shopstream.processors.anomalies.engine import Engine
from shopstream.processors.anomalies.facts import Fact
from shopstream.processors.anomalies.rules import DEFAULT_PATH, load_rules, parse_rules
from shopstream.processors.anomalies.stats import judge, mad, median
from tests.unit.anomaly_history import DAY, HOUR, T0, Ids, hour_of_orders, normal_week, of, run

RULES = load_rules()
SKU_HOUR = "cancellation-rate-sku-hour"


def spike_scenario() -> tuple[list[Fact], int]:
    """A week of normal history, then an hour with 30 of 40 orders of A cancelled, then normal hours."""
    ids = Ids()
    facts = normal_week(ids)
    spike = T0 + 7 * DAY
    facts += hour_of_orders(ids, spike, "A", 40, 30)
    for h in range(1, 6):
        facts += hour_of_orders(ids, spike + h * HOUR, "A", 8, 1)
    return sorted(facts, key=lambda f: f.at_ms), spike


def test_median_and_mad() -> None:
    assert median([3, 1, 2]) == 2 and median([1, 2, 3, 4]) == 2.5
    assert mad([1, 1, 1, 5], 1) == 0
    assert judge(0.75, [0.125] * 10, mad_factor=4, min_delta=0.2, min_ratio=0, direction="up").abnormal
    assert not judge(0.3, [0.125] * 10, mad_factor=4, min_delta=0.2, min_ratio=0, direction="up").abnormal
    assert not judge(0.0, [0.125] * 10, mad_factor=4, min_delta=0.1, min_ratio=0, direction="up").abnormal


def test_a_planted_cancellation_spike_opens_exactly_one_alert_with_evidence_and_resolves() -> None:
    facts, spike = spike_scenario()
    alerts = of(run(facts, RULES), SKU_HOUR, "sku:A")
    assert [a.status for a in alerts] == ["open", "resolved"]
    opened = alerts[0]
    assert opened.kind == "cancellation_rate" and opened.at_ms == spike + HOUR
    assert opened.evidence["observed"] == "0.75" and opened.evidence["baseline"] == "0.125"
    assert opened.evidence["volume"] == "40" and opened.evidence["events"] == "30"
    assert len(opened.evidence["orders"].split(",")) == RULES.evidence_orders
    assert alerts[1].alert_id == opened.alert_id and alerts[1].at_ms == spike + 3 * HOUR  # resolve_after 2h


def test_an_ongoing_anomaly_stays_one_alert_however_many_windows_follow() -> None:
    ids = Ids()
    facts = normal_week(ids)
    for h in range(5):  # five bad hours in a row
        facts += hour_of_orders(ids, T0 + 7 * DAY + h * HOUR, "A", 40, 30)
    alerts = of(run(sorted(facts, key=lambda f: f.at_ms), RULES), SKU_HOUR, "sku:A")
    assert [a.status for a in alerts].count("open") == 1
    assert {a.alert_id for a in alerts} == {alerts[0].alert_id}
    assert [a.status for a in alerts][:2] == ["open", "updated"]


def test_no_alert_below_the_minimum_volume() -> None:
    ids = Ids()
    facts = normal_week(ids)
    facts += hour_of_orders(ids, T0 + 7 * DAY, "A", 19, 19)  # min_volume is 20 orders
    facts += hour_of_orders(ids, T0 + 7 * DAY + HOUR, "A", 8, 1)
    assert of(run(sorted(facts, key=lambda f: f.at_ms), RULES), SKU_HOUR) == []


def test_no_alert_without_enough_baseline() -> None:
    ids = Ids()
    facts = hour_of_orders(ids, T0, "A", 40, 30) + hour_of_orders(ids, T0 + HOUR, "A", 8, 1)
    assert of(run(facts, RULES), SKU_HOUR) == []


def test_replay_and_redelivery_change_nothing() -> None:
    facts, _ = spike_scenario()
    first = run(facts, RULES)
    assert first == run(facts, RULES)  # a replay: same alerts, same ids
    doubled = [f for fact in facts for f in (fact, fact)]
    assert run(doubled, RULES) == first  # every event delivered twice
    engine = Engine(RULES)
    half = len(facts) // 2
    out = run(facts[:half], engine=engine)
    out += run(facts[:half], engine=engine)  # the uncommitted tail read again after a crash
    assert out + run(facts[half:], engine=engine) == first


def test_state_restored_from_its_json_continues_identically() -> None:
    facts, _ = spike_scenario()
    engine = Engine(RULES)
    half = len(facts) * 3 // 4
    out = run(facts[:half], engine=engine)
    restored = Engine(RULES, json.loads(json.dumps(engine.state)))
    assert out + run(facts[half:], engine=restored) == run(facts, RULES)


def test_order_rate_drop_and_spike_against_the_same_hour_baseline() -> None:
    ids = Ids()
    facts: list[Fact] = []
    for h in range(10 * 24):
        facts += hour_of_orders(ids, T0 + h * HOUR, f"S{h % 3}", 30, 0)
    drop_at = T0 + 10 * DAY + 14 * HOUR
    for h in range(10 * 24, 10 * 24 + 14):
        facts += hour_of_orders(ids, T0 + h * HOUR, "S1", 30, 0)
    facts += hour_of_orders(ids, drop_at, "S1", 2, 0)  # the checkout broke
    facts += hour_of_orders(ids, drop_at + HOUR, "S1", 30, 0)
    facts += hour_of_orders(ids, drop_at + 2 * HOUR, "S1", 200, 0)  # a spike
    facts += hour_of_orders(ids, drop_at + 3 * HOUR, "S1", 30, 0)
    alerts = of(run(sorted(facts, key=lambda f: f.at_ms), RULES), "order-rate-shop-hour")
    assert [(a.kind, a.status) for a in alerts][:2] == [("order_rate_drop", "open"), ("order_rate_drop", "resolved")]
    assert alerts[0].evidence["observed"] == "2" and alerts[0].evidence["baseline"] == "30"
    assert alerts[0].severity == "critical"
    assert ("order_rate_spike", "open") in [(a.kind, a.status) for a in alerts]


def test_a_silent_checkout_is_found_by_the_clock() -> None:
    ids = Ids()
    facts: list[Fact] = []
    for h in range(8 * 24):
        facts += hour_of_orders(ids, T0 + h * HOUR, "A", 20, 0)
    engine = Engine(RULES)
    assert of(run(facts, engine=engine), "order-rate-shop-hour") == []
    alerts = engine.advance(T0 + 8 * DAY + 2 * HOUR)  # no event at all for two hours
    drops = of(alerts, "order-rate-shop-hour")
    assert [(a.kind, a.status, a.evidence["observed"]) for a in drops] == [("order_rate_drop", "open", "0")]


def test_payment_failure_rate_per_gateway() -> None:
    ids = Ids()
    facts: list[Fact] = []
    for h in range(2 * 24):
        for i in range(20):
            kind = "payment_failed" if i == 0 else "payment_ok"
            for gw in ("stripe", "paypal"):
                facts.append(Fact(kind, ids.next(), T0 + h * HOUR + i * 60_000, order_id=ids.next(), gateway=gw))
    bad = T0 + 2 * DAY
    for i in range(20):
        facts.append(Fact("payment_failed" if i < 12 else "payment_ok", ids.next(), bad + i * 60_000,
                          order_id=ids.next(), gateway="paypal"))
        facts.append(Fact("payment_ok", ids.next(), bad + i * 60_000 + 1, order_id=ids.next(), gateway="stripe"))
    facts.append(Fact("payment_ok", ids.next(), bad + HOUR + 20 * 60_000, order_id="x", gateway="stripe"))
    alerts = run(facts, RULES)
    gateway = of(alerts, "payment-failure-rate-gateway-hour")
    assert [(a.subject, a.status) for a in gateway] == [("gateway:paypal", "open")]
    assert gateway[0].evidence["observed"] == "0.6"


def test_refund_spike() -> None:
    ids = Ids()
    facts = [Fact("refund", ids.next(), T0 + h * HOUR + 5, order_id=ids.next(), gateway="stripe", amount=10.0)
             for h in range(2 * 24) for _ in range(2)]
    facts += [Fact("refund", ids.next(), T0 + 2 * DAY + i, order_id=ids.next(), gateway="stripe", amount=10.0)
              for i in range(25)]
    facts.append(Fact("refund", ids.next(), T0 + 2 * DAY + 2 * HOUR, order_id="z", gateway="stripe", amount=1.0))
    spikes = of(run(facts, RULES), "refund-spike-shop-hour")
    assert (spikes[0].kind, spikes[0].status, spikes[0].evidence["observed"]) == ("refund_spike", "open", "25")


def test_a_rate_window_with_events_but_no_volume_is_not_judged() -> None:
    """Returns of a SKU that sold nothing on the day they came: no return rate that day, no error (the
    engine raised ZeroDivisionError here, and every later fact closing that window raised too)."""
    ids = Ids()
    facts = [Fact("order", ids.next(), T0, order_id="o1", lines=(("A", 1),)),
             Fact("return", ids.next(), T0 + 30 * HOUR, order_id="o1", lines=(("A", 1),)),
             Fact("order", ids.next(), T0 + 60 * HOUR, order_id="o2", lines=(("B", 1),))]
    engine = Engine(RULES)
    assert run(facts, engine=engine) == []
    assert engine.state["watermark"] > T0 + 2 * DAY


def test_late_events_are_not_counted_in_closed_windows() -> None:
    ids = Ids()
    engine = Engine(RULES)
    run(normal_week(ids, days=2), engine=engine)
    late = hour_of_orders(ids, T0, "A", 40, 40)  # two days late
    assert run(late, engine=engine) == []
    assert engine.state["late"] > 0


@pytest.mark.parametrize("mode", ["off", "shadow"])
def test_detector_modes(mode: str) -> None:
    facts, _ = spike_scenario()
    marker = "    resolve_after: 2h\n    severity: warning\n"
    text = DEFAULT_PATH.read_text().replace(marker, f"{marker}    mode: {mode}\n", 1)
    alerts = of(run(facts, parse_rules(text, "x.yaml")), SKU_HOUR)
    assert (alerts == []) if mode == "off" else (alerts and all(a.shadow for a in alerts))


def test_skewed_order_partitions_give_the_alerts_of_the_time_ordered_history() -> None:
    from dataclasses import replace

    facts, _ = spike_scenario()
    tagged = [replace(f, src=f"orders:{int(f.order_id.rsplit('e', 1)[1]) % 2}") for f in facts]
    skewed = [f for f in tagged if f.src == "orders:0"] + [f for f in tagged if f.src == "orders:1"]
    expected = run(tagged, engine=Engine(RULES, order_sources=2))
    assert of(expected, SKU_HOUR, "sku:A") and expected == run(facts, RULES)
    assert run(skewed, engine=Engine(RULES, order_sources=2)) == expected
    assert of(run(skewed, RULES), SKU_HOUR) == []  # the newest event alone as the clock: partition 1 came late


def test_facts_before_their_order_wait_for_it() -> None:
    facts, _ = spike_scenario()
    cancels_first = sorted(facts, key=lambda f: (f.type != "cancel", f.at_ms))  # every cancellation before any order
    engine = Engine(RULES)
    run(cancels_first, engine=engine)
    assert engine.state.get("orphans") == {}
    reference = Engine(RULES)
    run(facts, engine=reference)
    assert engine.kpis("7d") == reference.kpis("7d")


def test_old_orders_and_shipments_still_count_in_the_kpis_but_not_in_closed_windows() -> None:
    ids = Ids()
    engine = Engine(RULES)
    run(normal_week(ids, days=3), engine=engine)
    before = engine.kpis("7d")["orders"]
    old = hour_of_orders(ids, T0 + HOUR, "B", 5, 0)
    assert run(old + old, engine=engine) == []  # two days late, and delivered twice
    assert engine.kpis("7d")["orders"] == before + 5
