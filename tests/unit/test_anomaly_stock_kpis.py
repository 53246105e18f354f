"""Stock and price detectors, the KPI reports, the rules file's errors, and property tests of the
anomaly engine (processors/anomalies)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopstream.processors.anomalies.engine import Engine
from shopstream.processors.anomalies.facts import Fact
from shopstream.processors.anomalies.kpis import percentile
from shopstream.processors.anomalies.rules import DEFAULT_PATH, AnomalyRulesError, load_rules, parse_rules
from tests.unit.anomaly_history import DAY, HOUR, T0, Ids, hour_of_orders, of, run

RULES = load_rules()


def test_stock_drift_opens_when_on_hand_falls_more_than_orders_explain_and_resolves() -> None:
    ids = Ids()
    facts = [Fact("stock_snapshot", ids.next(), T0, sku="A", location="W1", value=100),
             Fact("order", ids.next(), T0 + 10, order_id="o1", lines=(("A", 10),)),
             Fact("stock_snapshot", ids.next(), T0 + HOUR, sku="A", location="W1", value=60),
             Fact("order", ids.next(), T0 + HOUR + 10, order_id="o2", lines=(("A", 5),)),
             Fact("stock_snapshot", ids.next(), T0 + 2 * HOUR, sku="A", location="W1", value=55)]
    alerts = of(run(facts, RULES), "stock-drift", "sku:A")
    assert [a.status for a in alerts] == ["open", "resolved"]
    assert alerts[0].evidence["unexplained"] == "30" and alerts[0].evidence["units_out"] == "10"


def test_goods_received_explain_a_rise_and_shipments_a_fall() -> None:
    ids = Ids()
    facts = [Fact("stock_snapshot", ids.next(), T0, sku="A", location="W1", value=100),
             Fact("dispatched", ids.next(), T0 + 10, order_id="o1", lines=(("A", 50),)),
             Fact("goods_received", ids.next(), T0 + 20, sku="A", location="W1", value=10),
             Fact("stock_snapshot", ids.next(), T0 + HOUR, sku="A", location="W1", value=60)]
    assert of(run(facts, RULES), "stock-drift") == []


def test_impossible_erp_figures() -> None:
    ids = Ids()
    facts = [Fact("stock_snapshot", ids.next(), T0, sku="A", location="W1", value=-4),
             Fact("stock_snapshot", ids.next(), T0 + 1, sku="A", location="W1", value=-4),
             Fact("stock_snapshot", ids.next(), T0 + 2, sku="A", location="W1", value=3)]
    alerts = of(run(facts, RULES), "stock-impossible")
    assert [(a.status, a.severity) for a in alerts] == [("open", "critical"), ("updated", "critical"),
                                                         ("resolved", "critical")]


def test_a_sku_oversold_repeatedly() -> None:
    ids = Ids()
    facts = []
    for i, available in enumerate([-1, 2, -2, -3, 1, -1, 0]):
        facts.append(Fact("atp", ids.next(), T0 + i * HOUR, sku="A", value=available))
    facts.append(Fact("atp", ids.next(), T0 + 2 * DAY, sku="A", value=5))
    engine = Engine(RULES)
    alerts = of(run(facts, engine=engine), "repeated-oversold")
    assert [a.status for a in alerts] == ["open", "resolved"]
    assert alerts[0].evidence["episodes"] == "3"
    assert engine.kpis("7d")["oversold"] == 3


def test_price_zero_change_and_below_cost() -> None:
    ids = Ids()
    facts = [Fact("product", ids.next(), T0, sku="A", amount=20.0, category="shoes", cost=12.0),
             Fact("product", ids.next(), T0 + 1, sku="A", amount=8.0, cost=12.0),
             Fact("product", ids.next(), T0 + 2, sku="A", amount=0.0),
             Fact("product", ids.next(), T0 + 3, sku="A", amount=0.0)]
    alerts = run(facts, RULES)
    assert [a.status for a in of(alerts, "price-change")] == ["open", "updated", "resolved"]
    assert [a.status for a in of(alerts, "price-below-cost")] == ["open"]
    assert [a.status for a in of(alerts, "price-zero")] == ["open", "updated"]


def test_kpis_match_what_was_posted() -> None:
    ids = Ids()
    facts = hour_of_orders(ids, T0, "A", 10, 2)
    orders = [f for f in facts if f.type == "order"]
    for i, order in enumerate(orders[:4]):
        facts.append(Fact("dispatched", ids.next(), order.at_ms + (i + 1) * HOUR, order_id=order.order_id,
                          lines=(("A", 1),)))
        facts.append(Fact("delivered", ids.next(), order.at_ms + (i + 1) * DAY, order_id=order.order_id))
    facts.append(Fact("return", ids.next(), T0 + 2 * HOUR, order_id=orders[0].order_id, lines=(("A", 1),)))
    facts.append(Fact("refund", ids.next(), T0 + 5 * HOUR, order_id=orders[0].order_id, gateway="stripe",
                      amount=20.0))
    facts.append(Fact("refund", ids.next(), T0 + 6 * HOUR, order_id=orders[0].order_id, gateway="stripe",
                      amount=1.0))
    facts.append(Fact("ticket", ids.next(), T0 + 3 * HOUR, order_id=orders[1].order_id))
    facts.append(Fact("payment_failed", ids.next(), T0 + 5, order_id="p", gateway="stripe"))
    facts.append(Fact("payment_ok", ids.next(), T0 + 6, order_id="p", gateway="stripe"))
    engine = Engine(RULES)
    run(sorted(facts, key=lambda f: f.at_ms), engine=engine)
    report = engine.kpis("7d")
    assert report["orders"] == 10 and report["cancellations"] == 2 and report["cancellation_rate"] == 0.2
    assert report["return_rate"] == 0.1 and report["tickets_per_100_orders"] == 10.0
    assert report["payment_failure_rate"] == 0.5
    assert report["fulfilment_lead_time_s"] == {"p50": 7200, "p90": 14400, "count": 4}
    assert report["delivery_time_s"]["p50"] == 2 * 86400
    assert report["return_to_refund_time_s"] == {"p50": 3 * 3600, "p90": 3 * 3600, "count": 1}
    assert report["refunds"] == 2 and report["refund_amount"] == 21.0
    assert Engine(RULES).kpis("24h")["tickets_per_100_orders"] is None


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile(list(range(1, 11)), 90) == 9


@pytest.mark.parametrize(("change", "expected"), [
    ("window: 1h\n    min_volume: 20", "window: 3h\n    min_volume: 20"),
    ("type: rate\n    measure: cancellation_rate\n    per: sku", "type: rate\n    measure: orders\n    per: sku"),
    ("check: zero", "check: nonsense"),
    ("lateness: 10m", "lateness: soon"),
])
def test_a_broken_rules_file_names_line_and_reason(change: str, expected: str) -> None:
    text = DEFAULT_PATH.read_text()
    assert change in text
    with pytest.raises(AnomalyRulesError) as err:
        parse_rules(text.replace(change, expected, 1), "anomalies.yaml")
    message = str(err.value)
    assert message.startswith("anomalies.yaml:") and message.split(":")[1].isdigit()
    assert "invalid anomaly rules" in message


def test_duplicate_ids_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text().replace("id: price-below-cost", "id: price-zero")
    with pytest.raises(AnomalyRulesError, match="duplicate detector id 'price-zero'"):
        parse_rules(text, "x.yaml")
    with pytest.raises(AnomalyRulesError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
    with pytest.raises(AnomalyRulesError, match=r"x.yaml:\d+: not valid YAML"):
        parse_rules("detectors: [\n", "x.yaml")


# --- properties ----------------------------------------------------------------------------------------------

volumes = st.lists(st.tuples(st.integers(0, 19), st.integers(0, 19)), min_size=30, max_size=60)


@settings(max_examples=25, deadline=None)
@given(volumes)
def test_property_no_sku_alert_under_the_minimum_volume(hours: list[tuple[int, int]]) -> None:
    ids = Ids()
    facts = []
    for h, (orders, cancelled) in enumerate(hours):
        facts += hour_of_orders(ids, T0 + h * HOUR, "A", orders, min(orders, cancelled))
    assert of(run(sorted(facts, key=lambda f: f.at_ms), RULES), "cancellation-rate-sku-hour") == []


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(5, 15), st.integers(0, 1)), min_size=8, max_size=30),
       st.integers(30, 40))
def test_property_a_planted_spike_is_found(hours: list[tuple[int, int]], cancelled: int) -> None:
    ids = Ids()
    facts = []
    for h, (orders, c) in enumerate(hours):
        facts += hour_of_orders(ids, T0 + h * HOUR, "A", orders, c)
    spike = T0 + len(hours) * HOUR
    facts += hour_of_orders(ids, spike, "A", 40, cancelled)
    facts += hour_of_orders(ids, spike + HOUR, "A", 8, 0)
    alerts = of(run(sorted(facts, key=lambda f: f.at_ms), RULES), "cancellation-rate-sku-hour", "sku:A")
    assert [(a.status, a.at_ms) for a in alerts] == [("open", spike + HOUR)]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=10, max_size=40),
       st.randoms(use_true_random=False))
def test_property_replay_gives_the_same_alerts(hours: list[tuple[int, int]], rnd: object) -> None:
    ids = Ids()
    facts = []
    for h, (orders, cancelled) in enumerate(hours):
        facts += hour_of_orders(ids, T0 + h * HOUR, "A", orders, min(orders, cancelled))
    facts.sort(key=lambda f: f.at_ms)
    first = run(facts, RULES)
    redelivered = list(facts)
    for i in sorted(rnd.sample(range(len(facts)), min(10, len(facts))), reverse=True):  # type: ignore[attr-defined]
        redelivered.insert(i + 1, facts[i])
    assert run(facts, RULES) == first
    assert run(redelivered, RULES) == first


def test_facts_from_canonical_events() -> None:
    from shopstream.processors.anomalies.facts import from_event
    from tests.unit import order_events as ev

    order = from_event(ev.placed())
    assert order is not None and order.type == "order" and order.order_id == "1001"
    assert order.lines == (("SKU-l1", 2), ("SKU-l2", 1)) and order.at_ms == int(ev.at(0).timestamp() * 1000)
    cancel = from_event(ev.cancelled(3))
    assert cancel is not None and (cancel.type, cancel.at_ms) == ("cancel", int(ev.at(3).timestamp() * 1000))
    failed = from_event(ev.failed(1))
    assert failed is not None and failed.type == "payment_failed" and failed.gateway
    refund = from_event(ev.refunded(2, "7.50"))
    assert refund is not None and refund.amount == 7.5
    shipped = from_event(ev.dispatched(5, spec=[("A", 2)]))
    assert shipped is not None and shipped.lines == (("A", 2),)
    assert from_event(ev.captured(1)) is None
