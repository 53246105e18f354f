"""`shopstream bench <scenario>` argument checking: a bad argument exits 2 with a message naming it.

Only parsing is exercised: no scenario runs, no broker, no timing.
"""

from __future__ import annotations

import pytest

from shopstream.cli import build_parser, cmd_bench, main


@pytest.mark.parametrize(("argv", "message"), [
    (["webhook-latency", "--runs", "0"], "argument --runs: must be at least 1, got 0"),
    (["atp-snapshot", "--runs", "-2"], "argument --runs: must be at least 1, got -2"),
    (["reservations", "--runs", "0"], "argument --runs: must be at least 1, got 0"),
    (["shop-sync", "--runs", "0"], "argument --runs: must be at least 1, got 0"),
    (["views-sink", "--runs", "three"], "argument --runs: not a whole number: 'three'"),
    (["webhook-latency", "--orders", "0"], "argument --orders: must be at least 1, got 0"),
    (["webhook-latency", "--pace", "0"], "argument --pace: must be a finite number above 0, got 0"),
    (["webhook-latency", "--pace", "nan"], "argument --pace: must be a finite number above 0, got nan"),
    (["webhook-latency", "--pace", "fast"], "argument --pace: not a number: 'fast'"),
    (["atp-snapshot", "--skus", "-1"], "argument --skus: must be at least 1, got -1"),
    (["atp-snapshot", "--timeout", "-5"], "argument --timeout: must be a finite number above 0, got -5"),
    (["atp-snapshot", "--changed-pct", "0"], "argument --changed-pct: must be a finite number above 0, got 0"),
    (["atp-snapshot", "--changed-pct", "150"], "argument --changed-pct: must be at most 100, got 150"),
    (["reservations", "--orders", "-200"], "argument --orders: must be at least 1, got -200"),
    (["reservations", "--skus", "0"], "argument --skus: must be at least 1, got 0"),
    (["reservations", "--orders", "1.5"], "argument --orders: not a whole number: '1.5'"),
    (["reservations", "--without-reservations", "--with-baseline"],
     "argument --with-baseline: not allowed with argument --without-reservations"),
    (["shop-sync", "--records", "-1"], "argument --records: must be at least 1, got -1"),
    (["shop-sync", "--window-ms", "-1"], "argument --window-ms: must not be negative, got -1"),
    (["shop-sync", "--scenario", "all"], "argument --scenario: invalid choice: 'all'"),
    (["shop-stock", "--first-load", "0"], "argument --first-load: must be at least 1, got 0"),
    (["shop-stock", "--mutation-cost", "0"], "argument --mutation-cost: must be a finite number above 0, got 0"),
    (["views-sink", "--records", "0"], "argument --records: must be at least 1, got 0"),
    (["catalog-checks", "--products", "0"], "argument --products: must be at least 1, got 0"),
    (["views-sink", "--batch-size", "-10"], "argument --batch-size: must be at least 1, got -10"),
    (["atp-snapshot", "--orders", "5"], "unrecognized arguments: --orders 5"),
    (["no-such-scenario"], "argument SCENARIO: invalid choice: 'no-such-scenario'"),
    ([], "the following arguments are required: SCENARIO"),
])
def test_bad_argument_exits_2_naming_it(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *argv])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert message in err
    assert out == ""


@pytest.mark.parametrize(("argv", "expected"), [
    (["webhook-latency"], {"orders": 300, "runs": 3, "pace": 100.0}),
    (["atp-snapshot", "--skus", "20000", "--runs", "1", "--timeout", "60", "--single-record-batches"],
     {"skus": 20000, "runs": 1, "timeout": 60.0, "single_record_batches": True, "changed_pct": 100.0}),
    (["atp-snapshot", "--changed-pct", "2"], {"skus": 1_000_000, "changed_pct": 2.0, "changed_only": False}),
    (["atp-snapshot", "--changed-pct", "2", "--changed-only"], {"changed_pct": 2.0, "changed_only": True}),
    (["reservations", "--orders", "200", "--runs", "1"],
     {"orders": 200, "runs": 1, "skus": 2000, "without_reservations": False, "with_baseline": False,
      "workers": 1, "single_record_batches": False}),
    (["reservations", "--workers", "2", "--single-record-batches"], {"workers": 2, "single_record_batches": True}),
    (["shop-sync", "--window-ms", "0", "--scenario", "burst"],
     {"records": 100_000, "runs": 3, "window_ms": 0, "scenario_kind": "burst", "single_record_batches": False}),
    (["views-sink", "--records", "1000", "--batch-size", "1"], {"records": 1000, "batch_size": 1, "runs": 3}),
    (["catalog-checks", "--products", "500", "--runs", "1"], {"products": 500, "runs": 1}),
])
def test_good_arguments_parse_to_the_scenario(argv: list[str], expected: dict[str, object]) -> None:
    args = build_parser().parse_args(["bench", *argv])
    assert args.func is cmd_bench
    assert args.scenario == argv[0]
    assert {k: getattr(args, k) for k in expected} == expected


def test_changed_pct_exports_change_one_residue_class_per_run() -> None:
    """The daily-case export: each run changes exactly the lines it says, the others keep their figure."""
    from shopstream.bench.atp import changed_lines, expected_available, last_change

    skus, every = 1000, 50
    assert changed_lines(skus, 0, every) == skus
    for run in range(1, 120):
        moved = [i for i in range(skus) if last_change(i, run, every) != last_change(i, run - 1, every)]
        assert len(moved) == changed_lines(skus, run, every) == 20
        assert all(last_change(i, run, every) == run for i in moved)
        assert all(expected_available(i, run, every) > 0 for i in range(skus))
    assert [last_change(7, run) for run in range(4)] == [0, 1, 2, 3]  # every line changes by default


@pytest.mark.parametrize("scenario", ["shop-sync", "views-sink", "reservations", "webhook-latency"])
def test_changed_pct_belongs_to_atp_snapshot_only(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", scenario, "--changed-pct", "5"])
    assert "unrecognized arguments: --changed-pct 5" in capsys.readouterr().err


def test_changed_only_without_changed_pct_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "atp-snapshot", "--changed-only"]) == 2
    assert "--changed-only needs --changed-pct below 100" in capsys.readouterr().err
