"""The review evaluator: every operator, priorities and allow/hold/flag/block, shadow and off modes, lists."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from shopstream.processors.review.evaluate import evaluate
from shopstream.processors.review.facts import OrderFacts, order_facts
from shopstream.processors.review.rules import load_rules

from .review_events import ELSEWHERE, HOME, order, ruleset

RATES = {"EUR": Decimal(1), "USD": Decimal("0.95")}


def facts(**changes: object) -> OrderFacts:
    return replace(order_facts(order(), RATES), **changes)  # type: ignore[arg-type]


def one(when: str, *, action: str = "hold") -> str:
    return ('version: "t"\nlists:\n  blocked: {file: lists/b.txt, kind: email}\n'
            '  addresses: {file: lists/a.txt, kind: address}\n  skus: {file: lists/s.txt}\n'
            f"rules:\n  - id: r\n    description: d\n    action: {action}\n    when: {when}\n")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    lists = tmp_path / "rules" / "lists"
    lists.mkdir(parents=True)
    (lists / "b.txt").write_text("# comment\nBad@Example.com\n\n")
    (lists / "a.txt").write_text("Hauptstr.  1||10115|berlin|DE  # home\n")
    (lists / "s.txt").write_text("SKU-X\n")
    (tmp_path / "rates.yaml").write_text("rates: {USD: 0.95}\n")
    return tmp_path / "rules"


CASES = [
    ("{fact: total, op: eq, value: 40}", {}, True), ("{fact: total, op: eq, value: 40.01}", {}, False),
    ("{fact: total, op: ne, value: 41}", {}, True), ("{fact: total, op: gt, value: 39.99}", {}, True),
    ("{fact: total, op: gt, value: 40}", {}, False), ("{fact: total, op: gte, value: 40}", {}, True),
    ("{fact: total, op: lt, value: 40}", {}, False), ("{fact: total, op: lte, value: 40}", {}, True),
    ("{fact: line_count, op: in, value: [1, 2]}", {}, True), ("{fact: line_count, op: not_in, value: [1]}", {}, False),
    ("{fact: email, op: eq, value: EVA@example.com}", {}, True), ("{fact: email, op: ne, value: x@y.z}", {}, True),
    ("{fact: email_domain, op: in, value: [example.com, a.b]}", {}, True),
    ("{fact: shipping_country, op: not_in, value: [DE, AT]}", {}, False),
    ("{fact: email, op: contains, value: '@EXAMPLE'}", {}, True),
    ("{fact: email, op: regex, value: '^eva@'}", {}, True), ("{fact: email, op: regex, value: '^bob@'}", {}, False),
    ("{fact: email, op: in_list, list: blocked}", {"email": "bad@example.com"}, True),
    ("{fact: email, op: not_in_list, list: blocked}", {}, True),
    ("{fact: shipping_address, op: in_list, list: addresses}", {}, True),
    ("{fact: skus, op: contains, value: sku-1}", {}, True), ("{fact: skus, op: in, value: [SKU-2, SKU-1]}", {}, True),
    ("{fact: skus, op: not_in, value: [SKU-2]}", {}, True), ("{fact: skus, op: in_list, list: skus}", {}, False),
    ("{fact: skus, op: in_list, list: skus}", {"skus": ("SKU-1", "SKU-X")}, True),
    ("{fact: skus, op: not_in_list, list: skus}", {}, True),
    ("{fact: first_order, op: eq, value: false}", {}, True), ("{fact: first_order, op: ne, value: false}", {}, False),
    ("{fact: ip, op: exists}", {}, False), ("{fact: ip, op: exists, value: false}", {}, True),
    ("{fact: ip, op: eq, value: 1.2.3.4}", {}, False),  # a missing fact never matches a comparison
    ("{fact: categories, op: exists}", {}, False),
    ("{all: [{fact: total, op: gt, value: 1}, {fact: email, op: contains, value: eva}]}", {}, True),
    ("{all: [{fact: total, op: gt, value: 1}, {fact: email, op: contains, value: bob}]}", {}, False),
    ("{any: [{fact: total, op: gt, value: 100}, {fact: email, op: contains, value: eva}]}", {}, True),
    ("{not: {fact: total, op: gt, value: 100}}", {}, True),
    ("{velocity: {measure: orders, per: email, window: 1h}, op: gte, value: 1}", {}, False),  # none given: 0
]


@pytest.mark.parametrize(("when", "changes", "fires"), CASES)
def test_every_operator(folder: Path, when: str, changes: dict[str, object], fires: bool) -> None:
    verdict = evaluate(ruleset(one(when), folder), facts(**changes))
    assert (verdict.action == "hold") is fires
    if fires:
        assert verdict.hold_reasons == ("review:r",)
        assert verdict.fired[0].evidence  # the facts it saw


def test_velocity_values_come_from_the_caller(folder: Path) -> None:
    rules = ruleset(one("{velocity: {measure: orders, per: email, window: 1h}, op: gt, value: 3}"), folder)
    assert evaluate(rules, facts(), {"velocity.orders.per_email.1h": 3}).action == "pass"
    verdict = evaluate(rules, facts(), {"velocity.orders.per_email.1h": 4})
    assert verdict.action == "hold" and verdict.fired[0].evidence == {"velocity.orders.per_email.1h": "4"}


def test_regex_sees_only_a_bounded_prefix(folder: Path) -> None:
    rules = ruleset(one("{fact: email, op: regex, value: 'z$'}"), folder)
    assert evaluate(rules, facts(email="a" * 600 + "z")).action == "pass"
    assert evaluate(rules, facts(email="a" * 10 + "z")).action == "hold"


def multi(*rules: tuple[str, str, int, str, str]) -> str:
    body = "".join(f"  - id: {rid}\n    description: d\n    action: {action}\n    priority: {prio}\n"
                   f"    mode: {mode}\n    when: {when}\n" for rid, action, prio, mode, when in rules)
    return 'version: "v7"\nrules:\n' + body


YES = "{fact: total, op: gt, value: 0}"
NO = "{fact: total, op: gt, value: 1000}"


def test_the_strongest_fired_action_wins_and_all_fired_are_named() -> None:
    rules = ruleset(multi(("f", "flag", 1, "on", YES), ("h", "hold", 2, "on", YES), ("h2", "hold", 3, "on", YES)))
    verdict = evaluate(rules, facts())
    assert verdict.action == "hold" and verdict.rule_ids == ("f", "h", "h2")
    assert verdict.hold_reasons == ("review:h", "review:h2") and verdict.rules_version == "v7"
    assert verdict.needs_person
    blocked = evaluate(ruleset(multi(("h", "hold", 1, "on", YES), ("b", "block", 2, "on", YES))), facts())
    assert blocked.action == "block" and blocked.hold_reasons == ("review:h",)


def test_allow_stops_evaluation_but_earlier_rules_keep_their_effect() -> None:
    rules = ruleset(multi(("a", "allow", 10, "on", YES), ("h", "hold", 20, "on", YES), ("f", "flag", 5, "on", YES)))
    verdict = evaluate(rules, facts())
    assert verdict.rule_ids == ("f", "a") and verdict.action == "flag"
    only = evaluate(ruleset(multi(("a", "allow", 1, "on", YES), ("h", "hold", 2, "on", YES))), facts())
    assert only.action == "allow" and not only.needs_person and only.hold_reasons == ()


def test_priority_orders_evaluation_and_ties_go_by_id() -> None:
    rules = ruleset(multi(("z", "hold", 1, "on", YES), ("b", "allow", 2, "on", YES), ("a", "hold", 2, "on", YES)))
    assert [r.id for r in rules.rules] == ["z", "a", "b"]
    assert evaluate(rules, facts()).rule_ids == ("z", "a", "b")


def test_shadow_rules_are_reported_without_effect_and_off_rules_not_at_all() -> None:
    rules = ruleset(multi(("s", "block", 1, "shadow", YES), ("s2", "allow", 2, "shadow", YES),
                          ("o", "hold", 3, "off", YES), ("f", "flag", 4, "on", YES), ("n", "hold", 5, "shadow", NO)))
    verdict = evaluate(rules, facts())
    assert verdict.action == "flag" and verdict.rule_ids == ("f",)
    assert [s.rule_id for s in verdict.shadow] == ["s", "s2"]  # a shadow allow does not stop anything


def test_nothing_fired_passes() -> None:
    verdict = evaluate(ruleset(multi(("n", "hold", 1, "on", NO))), facts())
    assert verdict.action == "pass" and verdict.rule_ids == () and not verdict.needs_person


# --- the shipped rules ------------------------------------------------------------------------------------------


def shipped(event: object, velocities: dict[str, int] | None = None) -> tuple[str, tuple[str, ...]]:
    rules = load_rules()
    verdict = evaluate(rules, order_facts(event, rules.rates), velocities)  # type: ignore[arg-type]
    return verdict.action, verdict.rule_ids


def test_shipped_rules_hold_a_first_order_above_150_eur_with_evidence() -> None:
    rules = load_rules()
    verdict = evaluate(rules, order_facts(order(total="409.94", currency="USD", orders_count=1), rules.rates))
    assert verdict.action == "hold" and verdict.rule_ids == ("high-value", "first-order")
    assert verdict.hold_reasons == ("review:high-value",)
    assert verdict.fired[0].evidence == {"total_eur": "389.44"}
    assert verdict.evidence()["first-order.first_order"] == "true"


def test_shipped_rules_let_a_repeat_customers_ordinary_order_pass() -> None:
    assert shipped(order(total="40", orders_count=7)) == ("pass", ())


def test_shipped_rules_flag_a_first_order_and_hold_an_address_mismatch() -> None:
    assert shipped(order(orders_count=1)) == ("flag", ("first-order",))
    assert shipped(order(shipping=ELSEWHERE, billing=HOME)) == ("hold", ("address-mismatch",))
    assert shipped(order(), {"velocity.orders.per_email.1h": 4}) == ("hold", ("email-velocity",))
    assert shipped(order(total="150")) == ("pass", ())  # above 150, not at it
