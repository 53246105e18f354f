"""`shopstream rules test` / `backtest` on pure inputs: samples, per-rule counts, time parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shopstream.cli import main
from shopstream.processors.review.rules import load_rules
from shopstream.processors.review.tools import (
    DEFAULT_SAMPLES,
    backtest,
    describe,
    load_samples,
    parse_time,
    try_rules,
)

from .review_events import ELSEWHERE, T0, order


def test_the_shipped_samples_show_each_default_rule() -> None:
    verdicts = {v.order_id: v for v in try_rules(load_rules(), load_samples(DEFAULT_SAMPLES))}
    assert (verdicts["S-1"].action, verdicts["S-1"].rule_ids) == ("hold", ("high-value", "first-order"))
    assert verdicts["S-2"].action == "pass" and verdicts["S-4"].action == "pass"
    assert verdicts["S-3"].rule_ids == ("address-mismatch",)
    assert [verdicts[f"S-V{i}"].action for i in (1, 2, 3, 4)] == ["pass", "pass", "pass", "hold"]
    assert "total_eur=389.44" in "\n".join(describe(verdicts["S-1"]))


def test_rules_test_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["rules", "test", "topology/rules/review.yaml"]) == 0
    out = capsys.readouterr().out
    assert "order S-1: HOLD" in out and "order S-2: PASS" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text('version: "x"\nrules:\n  - id: a\n    description: d\n    action: hold\n    when: {fact: nope}\n')
    assert main(["rules", "test", str(bad)]) == 1
    assert f"{bad}:6: invalid review rules: rules.0.when.fact: unknown fact 'nope'" in capsys.readouterr().err
    samples = tmp_path / "s.json"
    samples.write_text(json.dumps([{"id": "X", "total": "999", "currency": "EUR", "orders_count": 9}]))
    assert main(["rules", "test", "topology/rules/review.yaml", "--orders", str(samples)]) == 0
    assert "order X: HOLD" in capsys.readouterr().out


def test_backtest_counts_every_rule_whatever_its_mode_within_the_period() -> None:
    rules = load_rules()
    events = [order("early", minute=-600, total="500"), order("a", minute=0, total="409.94", currency="USD"),
              order("b", minute=10, shipping=ELSEWHERE), order("c", minute=20, orders_count=1),
              order("d", minute=30), order("late", minute=6000, total="999")]
    report = backtest(rules, events, since=T0, until=T0 + timedelta(days=1))
    assert report.orders == 4 and report.events == 6
    assert report.per_rule["high-value"]["hold"] == 1 and report.examples["high-value"] == ["a"]
    assert report.per_rule["address-mismatch"]["hold"] == 1 and report.per_rule["first-order"]["flag"] == 1
    assert report.per_rule["email-velocity"]["hold"] == 1  # d is the fourth of the email within 1 h
    assert report.verdicts["hold"] == 3 and report.verdicts["flag"] == 1
    text = report.render(rules, 0.5)
    assert "high-value" in text and "verdicts with the file as written: block 0, hold 3, flag 1" in text


def test_parse_time() -> None:
    assert parse_time("2026-12-01T10:00:00Z") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_time("2026-12-01T10:00:00") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert abs((datetime.now(UTC) - parse_time("7d")) - timedelta(days=7)) < timedelta(seconds=5)
    with pytest.raises(ValueError):
        parse_time("yesterday")
