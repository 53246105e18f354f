"""The review rule language: the shipped file loads, and every kind of mistake is refused with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopstream.processors.review.rules import RulesError, load_rates, load_rules

from .review_events import RULES_DIR, ruleset

HEAD = 'version: "t1"\nrates: ../rates.yaml\nlists:\n  blocked: {file: lists/blocked_emails.txt, kind: email}\nrules:\n'


def rule(when: str, *, action: str = "hold", extra: str = "") -> str:
    return HEAD + f"  - id: r1\n    description: d\n    action: {action}\n{extra}    when: {when}\n"


def test_the_shipped_rules_load_with_version_order_lists_and_rates() -> None:
    rules = load_rules()
    assert rules.version
    assert [r.id for r in rules.rules][:2] == ["blocked-email", "trusted-customer"]
    ids = {r.id for r in rules.rules}
    assert {"high-value", "first-order", "address-mismatch", "email-velocity"} <= ids
    assert {r.id: r.mode for r in rules.rules}["email-many-addresses"] == "shadow"
    assert rules.rates["EUR"] == 1 and "USD" in rules.rates
    assert set(rules.lists) == {"blocked_emails", "trusted_emails", "blocked_ips"}


def test_a_bare_yaml_on_is_the_mode_on() -> None:
    assert ruleset(rule("{fact: total, op: gt, value: 1}", extra="    mode: on\n")).rules[0].mode == "on"
    assert ruleset(rule("{fact: total, op: gt, value: 1}", extra="    mode: off\n")).rules[0].mode == "off"


@pytest.mark.parametrize(("text", "line", "reason"), [
    (rule("{fact: total, op: gtt, value: 1}"), 9, "unknown operator 'gtt'"),
    (rule("{fact: totl, op: gt, value: 1}"), 9, "unknown fact 'totl'"),
    (rule("{fact: email, op: gt, value: 1}"), 9, "operator 'gt' does not apply to email"),
    (rule("{fact: total, op: gt, value: lots}"), 9, "expected a number"),
    (rule("{fact: first_order, op: eq, value: 1}"), 9, "expected true or false"),
    (rule("{fact: email, op: in_list, list: nope}"), 9, "unknown list 'nope'"),
    (rule("{fact: email, op: regex, value: '(a+)+$'}"), 9, "nested quantifier"),
    (rule("{fact: email, op: regex, value: '['}"), 9, "not a valid regex"),
    (rule("{fact: email, op: regex, value: '" + "a" * 201 + "'}"), 9, "longer than 200"),
    (rule("{fact: total, op: in, value: []}"), 9, "non-empty list"),
    (rule("{fact: total, op: gt}"), 9, "needs a 'value'"),
    (rule("{velocity: {measure: orders, per: email, window: 1h}, op: contains, value: 3}"), 9, "velocity"),
    (rule("{velocity: {measure: orders, per: phone, window: 1h}, op: gt, value: 3}"), 9, "unknown key 'phone'"),
    (rule("{velocity: {measure: orders, per: email, window: 1x}, op: gt, value: 3}"), 9, "window"),
    (rule("{velocity: {measure: orders, per: email, window: 30d}, op: gt, value: 3}"), 9, "longer than"),
    (rule("{all: [{fact: total, op: gt, value: 1}, {fact: email, op: eq}]}"), 9, "rules.0.when.all.1"),
    (rule("{not: 3}"), 9, "must be a mapping"),
    (rule("{fact: total, op: gt, value: 1}", action="hodl"), 8, "rules.0.action"),
    (rule("{fact: total, op: gt, value: 1}", extra="    mode: sometimes\n"), 9, "rules.0.mode"),
    (rule("{fact: total, op: gt, value: 1}", extra="    colour: red\n"), 9, "rules.0.colour"),
    (HEAD + "  - id: Bad Id\n    description: d\n    action: hold\n    when: {fact: total, op: gt, value: 1}\n",
     6, "rules.0.id"),
    (HEAD.replace('version: "t1"\n', ""), 1, "version"),
    (HEAD + "  - id: a\n    description: d\n    action: hold\n    when: {fact: total, op: gt, value: 1}\n"
     "  - id: a\n    description: d\n    action: flag\n    when: {fact: total, op: gt, value: 2}\n",
     10, "duplicate rule id 'a'"),
    (HEAD + "  - id: a\n    description: d\n   action: hold\n", 8, "not valid YAML"),
])
def test_an_invalid_file_is_refused_with_its_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(RulesError) as err:
        ruleset(text)
    message = str(err.value)
    assert message.startswith(f"test.yaml:{line}:"), message
    assert reason in message, message


def test_a_missing_list_file_and_a_bad_rates_file_are_refused(tmp_path: Path) -> None:
    text = HEAD.replace("lists/blocked_emails.txt", "lists/missing.txt") + "  []\n"
    with pytest.raises(RulesError, match="list blocked: cannot read"):
        ruleset(text.replace("rules:\n  []\n", "rules: []\n"))
    bad = tmp_path / "rates.yaml"
    bad.write_text("base: EUR\nrates:\n  USD: 0.9\n  usd: 1\n")
    with pytest.raises(RulesError, match=r"rates.yaml:3: invalid rates: rates: 'usd' is not an ISO 4217"):
        load_rates(bad)
    bad.write_text("base: EUR\nrates:\n  USD: -1\n")
    with pytest.raises(RulesError, match="positive number"):
        load_rates(bad)


def test_a_file_that_cannot_be_read_names_it(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read review rules"):
        load_rules(tmp_path / "nope.yaml")


def test_rates_are_exact_decimals() -> None:
    rates = load_rates(RULES_DIR.parent / "rates.yaml")
    assert str(rates["USD"]) == "0.95"


def test_list_edits_apply_over_the_files() -> None:
    from shopstream.processors.review.rules import with_list_changes

    rules = ruleset(HEAD + "  - id: r\n    description: d\n    action: block\n"
                    "    when: {fact: email, op: in_list, list: blocked}\n")
    edited = with_list_changes(rules, {"blocked": (frozenset({"a@x.de", "b@x.de"}), frozenset({"b@x.de"})),
                                       "unknown": (frozenset({"c@x.de"}), frozenset())})
    assert edited.lists["blocked"] == rules.lists["blocked"] | {"a@x.de"} and "unknown" not in edited.lists
    assert rules.lists["blocked"] == frozenset()  # the file's list is untouched
