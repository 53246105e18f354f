"""The simulator's pure parts: seeded world and plan, the mirrored review rules, the oracle, the verdict."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shopstream.sim import rules
from shopstream.sim.oracle import build_oracle, expected_order
from shopstream.sim.plan import FAULT_KINDS, Config, make_plan, parse_faults
from shopstream.sim.steps import Line, SimOrder
from shopstream.sim.verdict import Row, Verdict
from shopstream.sim.world import make_world

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
CFG = Config(seed=7, duration_s=60, orders_per_second=2, faults=parse_faults("all"))


def _plan(cfg: Config = CFG):  # type: ignore[no-untyped-def]
    return make_plan(cfg, T0, "abc123", order_base=10**15)


def test_the_same_seed_makes_the_same_day() -> None:
    a, b = _plan(), _plan()
    assert [(s.at, s.source, s.kind, s.body, s.fault) for s in a.steps] == \
           [(s.at, s.source, s.kind, s.body, s.fault) for s in b.steps]
    other = _plan(replace(CFG, seed=8))
    assert [o.lines for o in other.orders] != [o.lines for o in a.orders]


def test_world_popularity_is_skewed_and_customers_repeat() -> None:
    world = make_world(7, "abc123", skus=40, customers=120)
    weights = [s.weight for s in world.skus]
    assert weights == sorted(weights, reverse=True) and weights[0] > 10 * weights[-1]
    plan = _plan()
    emails = [o.customer.email for o in plan.orders]
    assert len(set(emails)) < len(emails), "repeat buyers expected"
    assert {len(o.lines) for o in plan.orders} <= {1, 2, 3, 4, 5}
    top = plan.world.skus[0].sku
    assert sum(ln.quantity for o in plan.orders for ln in o.lines if ln.sku == top) > \
           sum(ln.quantity for o in plan.orders for ln in o.lines if ln.sku == plan.world.skus[-1].sku)


def test_faults_are_parsed_and_unknown_ones_refused() -> None:
    assert parse_faults("all") == frozenset(FAULT_KINDS)
    assert parse_faults("dup, badsig") == {"dup", "badsig"}
    assert parse_faults("") == frozenset()
    with pytest.raises(ValueError, match="unknown fault"):
        parse_faults("dup,meteor")


def test_fault_steps_expect_their_answers() -> None:
    plan = _plan()
    assert {s.expect for s in plan.steps if s.fault == "badsig"} == {401}
    assert {s.expect for s in plan.steps if s.fault == "malformed"} == {422}
    dups = [s for s in plan.steps if s.fault == "dup"]
    originals = {(s.source, s.delivery_id) for s in plan.steps if not s.fault}
    assert dups and all((d.source, d.delivery_id) in originals for d in dups)
    assert [s.at for s in plan.steps] == sorted(s.at for s in plan.steps)


def _order(oid: int, email: str, at: datetime, price: str = "10.00", gift: bool = False) -> SimOrder:
    customer = make_world(1, "x").customers[0]
    return SimOrder(order_id=str(oid), customer=replace(customer, email=email), lines=(Line("A", 1, Decimal(price)),),
                    placed_at=at, scenario="paid", orders_count=3, gift=gift)


def test_rules_hold_the_fourth_order_of_an_email_within_an_hour() -> None:
    orders = [_order(i, "a@x", T0 + timedelta(minutes=10 * i)) for i in range(5)]
    orders.append(_order(99, "b@x", T0))
    late = _order(100, "a@x", T0 + timedelta(hours=3))
    holds = rules.predict_holds([*orders, late])
    assert holds == {"3": ("review:email-velocity",), "4": ("review:email-velocity",)}


def test_rules_hold_high_value_and_address_mismatch() -> None:
    holds = rules.predict_holds([_order(1, "a@x", T0, price="146.00"), _order(2, "b@x", T0, price="146.00"),
                                 _order(3, "c@x", T0, gift=True)])
    # 146.00 + 4.90 shipping = 150.90 > 150
    assert holds == {"1": ("review:high-value",), "2": ("review:high-value",), "3": ("review:address-mismatch",)}


def test_oracle_statuses_follow_the_documented_summary_rules() -> None:
    assert expected_order("delivered", "", True)["status"] == "delivered"
    assert expected_order("disputed", "", True) == {"status": "on_hold", "payment_status": "disputed"}
    assert expected_order("held", "reject", True) == {"status": "cancelled"}
    assert expected_order("held", "approve", True)["status"] == "ready_to_fulfill"
    assert expected_order("held", "approve", False)["status"] == "pending_payment"


def test_oracle_atp_counts_reservations_releases_receipts_and_restocks() -> None:
    plan = _plan()
    oracle = build_oracle(plan)
    for sku in plan.world.skus:
        opening = sku.on_hand + plan.receipts.get(sku.sku, 0)
        reserved = sum(ln.quantity for o in plan.orders for ln in o.lines if ln.sku == sku.sku
                       and oracle.orders[o.order_id]["status"] != "cancelled")
        restocked = sum(q for o in plan.orders for s, q, _, r in o.return_lines if s == sku.sku and r)
        assert oracle.atp[sku.sku] == opening - reserved + restocked
    assert plan.receipts, "goods receipts through the ERP webhook expected"
    cancelled = [o.order_id for o in plan.orders if o.scenario == "cancelled"]
    assert cancelled and all(oid in oracle.never["ReleaseOrder"] for oid in cancelled)
    assert oracle.parked == set(plan.malformed) and oracle.absent_orders == set(plan.badsig_orders)
    held = [o for o in plan.orders if o.holds]
    assert held and {o.decision for o in held} <= {"approve", "reject"}


def test_a_plan_without_the_payment_provider_sends_no_stripe_events() -> None:
    plan = _plan(replace(CFG, capabilities=frozenset({"shopify"})))
    assert {s.source for s in plan.steps} == {"shopify"}
    assert {o.scenario for o in plan.orders} <= {"unpaid", "cancelled", "held"}


def test_verdict_is_clean_only_without_mismatches() -> None:
    ok = Verdict(rows=[Row("orders", 3)])
    assert ok.clean and "VERDICT: clean" in ok.render()
    bad = Row("ATP", 2)
    bad.miss("SKU-1: available 3, expected 4")
    verdict = Verdict(rows=[Row("orders", 3), bad], skipped={"kill-worker": "why"})
    assert not verdict.clean
    text = verdict.render()
    assert "SKU-1: available 3, expected 4" in text and "kill-worker SKIPPED: why" in text and "1 mismatch" in text
    assert verdict.to_json()["clean"] is False


def test_the_check_reports_a_wrong_status_and_a_wrong_atp() -> None:
    from shopstream.sim.check import _atp_misses, _order_misses

    plan = _plan()
    oracle = build_oracle(plan)
    docs = {oid: {**want, "hold_reasons": []} for oid, want in oracle.orders.items()}
    atp = {sku: {"available": v} for sku, v in oracle.atp.items()}
    assert _order_misses(oracle, docs) == 0 and _atp_misses(oracle, atp) == 0
    victim = plan.orders[0].order_id
    docs[victim] = {**docs[victim], "status": "shipped"}
    atp[plan.world.skus[0].sku] = {"available": 999}
    orders_row, atp_row = Row("orders", 0), Row("atp", 0)
    assert _order_misses(oracle, docs, orders_row) == 1 and _atp_misses(oracle, atp, atp_row) == 1
    assert victim in orders_row.examples[0] and "999" in atp_row.examples[0]


def test_a_process_fault_says_why_it_cannot_be_injected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from shopstream.dev.pids import write_pids
    from shopstream.sim import chaos

    assert "dev-pids.json" in (chaos.why_not("kill-worker", tmp_path) or "")
    write_pids(tmp_path, broker=None, durable=False, children={"worker-orders": 11})
    assert chaos.why_not("kill-worker", tmp_path) is None
    assert "external broker" in (chaos.why_not("restart-broker", tmp_path) or "")
    write_pids(tmp_path, broker=12, durable=False, children={"worker-orders": 11})
    assert "--durable-broker" in (chaos.why_not("restart-broker", tmp_path) or "")
    write_pids(tmp_path, broker=12, durable=True, children={"worker-orders": 11})
    assert chaos.why_not("restart-broker", tmp_path) is None
    assert chaos.plan_target("kill-worker", 7) == chaos.plan_target("kill-worker", 7) in chaos.KILLABLE


def test_the_report_names_each_process_fault_and_its_recovery() -> None:
    from shopstream.sim.chaos import Disruption

    back = Disruption("restart-broker", "broker", 12, 19.5, 0.0, 4.25, 13)
    lost = Disruption("kill-worker", "worker-orders", 11, 10.5, 0.0, None, None)
    assert "SIGKILL broker (pid 12) at +19.5 s; back after 4.2 s (pid 13)" in back.describe()
    assert "NOT back" in lost.describe()
    verdict = Verdict(rows=[Row("orders", 3)], disruptions=[{**back.to_json(), "text": back.describe()}])
    assert "fault restart-broker: SIGKILL broker" in verdict.render()
    assert verdict.to_json()["disruptions"][0]["recovered_after_s"] == 4.25


def test_a_shipped_order_may_lack_its_release_but_a_paid_one_may_not() -> None:
    plan = _plan()
    oracle = build_oracle(plan, stripe=True)
    shipped = {o.order_id for o in plan.orders if o.scenario in ("delivered", "returned")}
    waiting = {o.order_id for o in plan.orders if o.scenario == "paid"}
    assert shipped and waiting
    assert shipped <= oracle.at_most_once["ReleaseOrder"] and not shipped & oracle.once["ReleaseOrder"]
    assert waiting <= oracle.once["ReleaseOrder"]


def test_the_simulator_drives_the_broker_and_registry_its_dev_recorded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """dev takes free ports when 9092 / the registry port are busy: guessing the defaults wrote the opening stock
    into another stack's broker."""
    from shopstream.config import load_settings
    from shopstream.dev.pids import write_pids
    from shopstream.sim.cli import faces_from_settings

    settings = load_settings(state_dir=str(tmp_path), kafka_bootstrap_servers="", schema_registry_url="")
    assert faces_from_settings(settings, "t").bootstrap == "127.0.0.1:9092"  # no dev recorded yet
    write_pids(tmp_path, broker=12, durable=True, children={}, bootstrap="127.0.0.1:41527",
               registry="http://127.0.0.1:18785")
    faces = faces_from_settings(settings, "t")
    assert (faces.bootstrap, faces.registry) == ("127.0.0.1:41527", "http://127.0.0.1:18785")
    named = load_settings(state_dir=str(tmp_path), kafka_bootstrap_servers="broker:9092", schema_registry_url="")
    assert faces_from_settings(named, "t").bootstrap == "broker:9092"  # the environment still decides first


def test_senders_are_sized_for_the_plans_rate() -> None:
    from shopstream.sim.driver import ANSWER_BUDGET_S, MAX_SENDERS, MIN_SENDERS, senders_for

    assert senders_for(120, 60) == MIN_SENDERS  # 2 deliveries/s: a few senders are plenty
    assert senders_for(30_000, 300) == round(100 * ANSWER_BUDGET_S)  # 100/s, answers of up to the budget
    assert senders_for(84_000, 300) == MAX_SENDERS  # 280/s: capped, lateness then says what the cap cost
    assert senders_for(3, 0) == MIN_SENDERS  # a zero duration is not a division by zero


def test_the_report_says_the_planned_rate_and_how_late_deliveries_went_out() -> None:
    from shopstream.sim.check import Observed, stats
    from shopstream.sim.driver import Timeline

    plan = _plan()
    start = T0.timestamp()
    timeline = Timeline(started=start)
    # Deliveries went out 2 s after their planned time; the last 2 % of them 9 s after.
    timeline.sent = [(start + s.at + 2, s.source, s.expect, s.fault) for s in plan.steps]
    tail = len(plan.steps) // 50
    timeline.late = [2.0] * (len(plan.steps) - tail) + [9.0] * tail
    figures = stats(plan, timeline, Observed())
    planned_span = max(s.at for s in plan.steps)
    assert figures["planned_deliveries_per_s"] == round(len(plan.steps) / planned_span, 1)
    assert figures["deliveries_per_s"] < figures["planned_deliveries_per_s"]  # the 2 s delay stretched the run
    assert figures["send_late_s"] == {"p50": 2.0, "p99": 9.0, "max": 9.0}
