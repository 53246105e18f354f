"""`shopstream bench <scenario>`: measured, never asserted. Each scenario prints one line per run and the median.

| scenario | module | measures |
|---|---|---|
| `webhook-latency` | `webhook.py` | webhook accepted → order readable on the read API (`shopstream dev`) |
| `atp-snapshot` | `atp.py` | ERP snapshot file → ATP in Redis and shop commands (`shopstream dev`) |
| `reservations` | `reservations.py` | OrderPlaced → ReservationChanged through one orders worker |
| `shop-sync` | `shop_sync.py` | AtpLevel → coalesced SyncShopStock, the shop-sync loop in-process |
| `views-sink` | `views_sink.py` | AtpLevel → Redis, the view sink in-process |

Shared pieces (stack start-up, producing, percentiles and medians) are in `common.py`. This module
only builds the argument parser and dispatches; it imports no scenario until one runs, so
`shopstream --help` stays fast. A bad argument exits 2 naming it (argparse); a run that cannot be
measured (records lost, a timeout, a wrong result) exits 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shopstream.config import Settings


def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number ≥ 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def percentage(text: str) -> float:
    """argparse type: a share in percent, above 0 and at most 100."""
    value = positive_float(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be at most 100, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def add_bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `bench` command and one subcommand per scenario."""
    bench = sub.add_parser("bench", help="measure throughput and latency (prints events/s and percentiles)",
                           description="Measured, never asserted: every scenario prints each run and the median "
                                       "of --runs runs. Scenarios that start the embedded Tansu broker use "
                                       "KAFKA_BOOTSTRAP_SERVERS instead when it is set.")
    bsub = bench.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    runs = argparse.ArgumentParser(add_help=False)
    runs.add_argument("--runs", type=positive_int, default=3, metavar="N", help="runs; the median is reported "
                                                                                "(default 3)")

    def scenario(name: str, text: str) -> argparse.ArgumentParser:
        p = bsub.add_parser(name, help=text, description=text, parents=[runs])
        p.set_defaults(func=cmd_bench)
        return p

    p = scenario("webhook-latency", "signed Shopify webhook accepted → order readable on GET /v1/orders/{id}, "
                                    "against its own `shopstream dev`; baseline: the webhook round trip")
    p.add_argument("--orders", type=positive_int, default=300, metavar="N", help="orders per run (default 300)")
    p.add_argument("--pace", type=positive_float, default=100.0, metavar="N",
                   help="webhooks per second offered (default 100)")

    p = scenario("atp-snapshot", "ERP stock export → ATP in Redis and shop commands, against its own "
                                 "`shopstream dev`; baseline: the ingest (file → Kafka)")
    p.add_argument("--skus", type=positive_int, default=1_000_000, metavar="N",
                   help="SKUs in the export (default 1,000,000)")
    p.add_argument("--timeout", type=positive_float, default=900.0, metavar="S",
                   help="give up a run after this many seconds (default 900)")
    p.add_argument("--changed-pct", type=percentage, default=100.0, metavar="P",
                   help="per run, only this share of the lines changed since the previous file (after a first "
                        "load that is not in the median); default 100: every line")
    p.add_argument("--changed-only", action="store_true",
                   help="with --changed-pct: ingest with --changed-only, so unchanged lines are not published")
    p.add_argument("--single-record-batches", action="store_true",
                   help="keep the embedded broker's one-record-per-batch workaround on (the dev default; it "
                        "makes every produced record its own request, see README)")

    p = scenario("reservations", "OrderPlaced (two lines each) → ReservationChanged through one orders worker, "
                                 "a fresh embedded broker and registry per run")
    p.add_argument("--orders", type=positive_int, default=5000, metavar="N", help="orders per run (default 5000)")
    p.add_argument("--skus", type=positive_int, default=2000, metavar="N",
                   help="distinct SKUs the orders spread over (default 2000)")
    variant = p.add_mutually_exclusive_group()
    variant.add_argument("--without-reservations", action="store_true",
                         help="baseline only: the same worker with the reservation step stubbed out "
                              "(counts orders.state)")
    variant.add_argument("--with-baseline", action="store_true",
                         help="per run, the worker with reservations and then the stubbed baseline; prints "
                              "the ratio of the medians")

    p = scenario("shop-sync", "pre-loaded AtpLevels → coalesced SyncShopStock commands, the shop-sync loop "
                              "in-process, a fresh embedded broker and registry per run; baseline: decoding "
                              "through the pydantic model")
    p.add_argument("--records", type=positive_int, default=100_000, metavar="N",
                   help="AtpLevel records per run (default 100,000)")
    p.add_argument("--window-ms", type=non_negative_int, default=2000, metavar="MS",
                   help="coalescing window (SHOPSTREAM_SHOP_SYNC_WINDOW_MS; default 2000)")
    p.add_argument("--scenario", dest="scenario_kind", choices=["distinct", "burst", "both"], default="both",
                   help="distinct: N SKUs, one change each; burst: N/100 SKUs, 100 changes each (default both)")
    p.add_argument("--single-record-batches", action="store_true",
                   help="the worker produces one record per batch (SHOPSTREAM_SINGLE_RECORD_BATCHES, as "
                        "`shopstream dev`)")
    p.add_argument("--preload-single", action="store_true", help="preload inventory.atp one record per batch")
    p.add_argument("--breakdown", action="store_true", help="time spent per loop phase")

    p = scenario("views-sink", "pre-loaded AtpLevels → Redis ATP view, the view sink in-process against the real "
                               "Redis, one embedded broker and registry for all runs")
    p.add_argument("--records", type=positive_int, default=100_000, metavar="N",
                   help="AtpLevel records per run (default 100,000)")
    p.add_argument("--batch-size", type=positive_int, default=1000, metavar="N",
                   help="the sink's batch size (default 1000)")
    p.add_argument("--single-record-batches", action="store_true",
                   help="produce one record per broker batch (the dev stack's Tansu workaround)")


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run the scenario `args` name; 0 measured, 1 a run could not be measured."""
    from shopstream.bench.common import BenchError

    if settings.log_level != "DEBUG":  # in-process components log at INFO; the figures are the output
        logging.getLogger().setLevel(logging.WARNING)
    try:
        return _run(args, settings)
    except BenchError as exc:
        print(f"shopstream bench {args.scenario}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.scenario == "webhook-latency":
        from shopstream.bench.webhook import run_webhook_bench

        return run_webhook_bench(args.orders, args.runs, args.pace)
    if args.scenario == "atp-snapshot":
        from shopstream.bench.atp import run_atp_bench

        if args.changed_only and args.changed_pct >= 100:
            print("shopstream bench atp-snapshot: --changed-only needs --changed-pct below 100 (with every "
                  "line changed there is nothing to skip)", file=sys.stderr)
            return 2
        return run_atp_bench(args.skus, args.runs, args.timeout, args.single_record_batches, args.changed_pct,
                             args.changed_only)
    if args.scenario == "reservations":
        from shopstream.bench.reservations import run_reservations_bench

        return run_reservations_bench(settings, args.orders, args.runs, args.skus,
                                      without_reservations=args.without_reservations,
                                      with_baseline=args.with_baseline)
    if args.scenario == "shop-sync":
        from shopstream.bench.shop_sync import run_shop_sync_bench

        return run_shop_sync_bench(settings, args.records, args.runs, window_ms=args.window_ms,
                                   scenario=args.scenario_kind, single_record_batches=args.single_record_batches,
                                   preload_single=args.preload_single, breakdown=args.breakdown)
    from shopstream.bench.views_sink import run_views_sink_bench

    return run_views_sink_bench(settings, args.records, args.runs, args.batch_size, args.single_record_batches)
