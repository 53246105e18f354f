"""The `shopstream` command line: one entry point for every service and operator task.

Exit codes: 0 success; 1 the task ran and found a problem (topic drift, a failed check);
2 bad usage or configuration (the message names the argument or environment variable).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopstream.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from shopstream.topology import Topology

Handler = Callable[[argparse.Namespace, Settings], int]


def _require(settings: Settings, *fields: str) -> None:
    from shopstream.config import env_name

    missing = [env_name(f) for f in fields if not getattr(settings, f)]
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be set for this command "
                          "(or use `shopstream dev`, which starts the embedded broker and registry)")


def _topology(args: argparse.Namespace, settings: Settings) -> Topology:
    """The topology of a `topics` command: --file (or the shipped one) + --overlay (or the setting)."""
    from shopstream.topology import load_topology_for

    return load_topology_for(settings, Path(args.file) if args.file else None,
                             overlay=Path(args.overlay) if args.overlay else None)


def cmd_topics_check(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.topology import TopologyError, check, check_production, known_record_names

    try:
        topology = _topology(args, settings)
    except TopologyError as exc:
        print(f"shopstream topics check: {exc}", file=sys.stderr)
        return 2
    problems = check(topology, known_records=known_record_names())
    if args.production:
        problems += check_production(topology)
    for p in problems:
        print(f"problem: {p}")
    print(f"topology ok ({topology.source})" if not problems else f"{len(problems)} problem(s) in {topology.source}")
    return 1 if problems else 0


def cmd_topics_apply(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.topology import TopologyError, apply, check

    try:
        topology = _topology(args, settings)
    except TopologyError as exc:
        print(f"shopstream topics apply: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        # The plan from the topology alone: reviewable (e.g. in CI, or before a production change)
        # without a broker, and nothing is contacted or created.
        problems = check(topology)
        for p in problems:
            print(f"problem: {p}")
        if args.json:
            print(json.dumps({"dry_run": True, "source": topology.source, "prefix": settings.topic_prefix,
                              "topics": [{"name": t.physical_name(settings.topic_prefix), "kind": t.kind,
                                          "partitions": t.partitions, "replication_factor": t.replication_factor,
                                          "configs": t.kafka_configs()} for t in topology.topics],
                              "problems": problems}, indent=2))
        else:
            print(topology.render_plan(settings.topic_prefix))
        return 1 if problems else 0
    _require(settings, "kafka_bootstrap_servers")
    report = apply(topology, settings.kafka_client_config(), prefix=settings.topic_prefix)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.render())
    return int(report.exit_code)


#: worker → (module, its entry function, the keyword naming its admin port, the configuration errors it
#: reports with exit 2 as "module:Class"). Imported only when that worker runs.
_WORKERS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "orders": ("shopstream.processors.orders.app", "run", "web_port", ()),
    "inventory": ("shopstream.processors.inventory.app", "run", "web_port", ()),
    # one sink for both Redis views: orders.state and inventory.atp
    "views": ("shopstream.views.sink", "run_sink", "metrics_port", ()),
    "shop-sync": ("shopstream.processors.inventory.shop_sync_worker", "run_shop_sync", "metrics_port", ()),
    "shop-writer": ("shopstream.processors.shop_writer.worker", "run", "web_port",
                    ("shopstream.processors.shop_writer.worker:ConfigurationError",
                     "shopstream.processors.shop_writer.config:ShopWriterConfigError")),
    "review": ("shopstream.processors.review.worker", "run_review", "metrics_port",
               ("shopstream.processors.review.rules:RulesError",)),
    "support": ("shopstream.processors.support.worker", "run", "web_port",
                ("shopstream.processors.support.worker:SupportConfigError",)),
    "anomalies": ("shopstream.processors.anomalies.worker", "run", "web_port",
                  ("shopstream.processors.anomalies.rules:AnomalyRulesError",)),
    "catalog": ("shopstream.processors.catalog.worker", "run", "web_port",
                ("shopstream.processors.catalog.rules:CatalogRulesError", "shopstream.topology:TopologyError")),
}


def _attribute(dotted: str) -> Any:
    """The object `module:name` names, imported now (a worker's module loads only when it runs)."""
    import importlib

    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def _config_errors(names: tuple[str, ...]) -> tuple[type[BaseException], ...]:
    """The exception classes `names` stand for, flat: a name may be a tuple of classes (support's
    SupportConfigError), and `except` refuses a tuple nested in its tuple (TypeError at match time)."""
    out: list[type[BaseException]] = []
    for name in names:
        found = _attribute(name)
        out.extend(found if isinstance(found, tuple) else (found,))
    return tuple(out)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    _require(settings, "kafka_bootstrap_servers", "schema_registry_url")
    module, entry, port_keyword, config_errors = _WORKERS[args.processor]
    # Its web server serves only /metrics and /readyz: SHOPSTREAM_ADMIN_PORT names it in a container.
    port = args.port or settings.admin_port or settings.worker_port(args.processor)
    errors = _config_errors(config_errors)
    try:
        _attribute(f"{module}:{entry}")(settings, **{port_keyword: port})
    except errors as exc:
        print(f"shopstream worker {args.processor}: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_rules_test(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.processors.review.rules import RulesError, load_rules
    from shopstream.processors.review.tools import DEFAULT_SAMPLES, describe, load_samples, try_rules

    try:
        rules = load_rules(args.file)
        samples = load_samples(Path(args.orders) if args.orders else DEFAULT_SAMPLES)
    except (RulesError, ValueError, OSError) as exc:
        print(f"shopstream rules test: {exc}", file=sys.stderr)
        return 1
    print(f"rules {rules.version} ({rules.source}): {len(rules.rules)} rules, valid")
    for verdict in try_rules(rules, samples):
        print("\n".join(describe(verdict)))
    return 0


def cmd_rules_backtest(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from shopstream.processors.review.rules import RulesError, load_rules
    from shopstream.processors.review.tools import backtest, parse_time, read_orders

    _require(settings, "kafka_bootstrap_servers", "schema_registry_url")
    try:
        rules = load_rules(args.rules or settings.review_rules or None)
        since = parse_time(args.since)
        until = parse_time(args.until) if args.until else None
    except (RulesError, ValueError) as exc:
        print(f"shopstream rules backtest: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    events = read_orders(settings)
    report = backtest(rules, events, since, until)
    print(report.render(rules, time.monotonic() - started))
    return 0


def cmd_connectors_serve(args: argparse.Namespace, settings: Settings) -> int:
    _require(settings, "kafka_bootstrap_servers", "schema_registry_url")
    from shopstream.connectors.service import serve

    serve(settings)
    return 0


def cmd_api_serve(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.api.app import serve
    from shopstream.auth import TokenFileError

    try:
        serve(settings)
    except TokenFileError as exc:
        print(f"shopstream api serve: SHOPSTREAM_API_TOKENS_FILE: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_registry_serve(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.dev.registry.service import serve

    serve(settings.http_host, settings.registry_port, settings.registry_storage,
          token=settings.registry_token.get_secret_value(), allow_remote=settings.registry_allow_remote)
    return 0


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.dev.runtime import run_dev

    return run_dev(settings, durable_broker=args.durable_broker)


def cmd_dlq(args: argparse.Namespace, settings: Settings) -> int:
    """`dlq list|show|replay|redrive` (shopstream.ops.dlq_cli): bad argument exit 2, broker problem 1."""
    _require(settings, "kafka_bootstrap_servers")
    from shopstream.ops.dlq_cli import run_dlq

    return run_dlq(args, settings)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """`ingest erp-stock|pim FILE`: 0 all rows published, 1 a row rejected (the rest published), 2 unusable file."""
    _require(settings, "kafka_bootstrap_servers", "schema_registry_url")
    if args.source == "pim":
        from shopstream.connectors.pim_ingest import run_pim

        return run_pim(settings, args.file)
    from shopstream.connectors.ingest import run_erp_stock

    return run_erp_stock(settings, args.file, args.as_of, args.changed_only)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """`bench SCENARIO`: the benchmarks are imported here only, never by a production process."""
    from shopstream.bench import run_bench

    return run_bench(args, settings)


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


def fraction(text: str) -> float:
    """argparse type: a share from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _add_bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `bench` command and one subcommand per scenario (`shopstream.bench` runs them, see `cmd_bench`)."""
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

    p = scenario("orders", "open-loop signed Shopify orders (and Stripe captures) at a fixed arrival schedule → "
                           "order state visible on orders.state and in the Redis view; lag, per-process CPU and "
                           "memory; baselines: the webhook round trip and a plain consume → produce loop")
    p.add_argument("--rate", type=positive_float, default=50.0, metavar="R",
                   help="orders per second offered (default 50); with --find-max the first step's rate")
    p.add_argument("--duration", type=positive_float, default=20.0, metavar="S",
                   help="seconds of load per run (default 20); with --find-max per step")
    p.add_argument("--stripe-share", type=fraction, default=0.5, metavar="F",
                   help="share of the orders followed by a Stripe capture (default 0.5; needs the stack's "
                        "SHOPSTREAM_STRIPE_SECRET)")
    p.add_argument("--connections", type=positive_int, default=32, metavar="N",
                   help="concurrent HTTP connections (default 32)")
    p.add_argument("--settle", type=positive_float, default=60.0, metavar="S",
                   help="after the load, wait up to this long for every order to become visible (default 60)")
    p.add_argument("--find-max", action="store_true",
                   help="steps doubling from --rate, then bisecting: the highest rate whose lag does not grow "
                        "(--runs is ignored)")
    p.add_argument("--max-rate", type=positive_float, default=3200.0, metavar="R",
                   help="--find-max stops doubling above this rate (default 3200)")
    p.add_argument("--spawn", action="store_true",
                   help="start its own `shopstream dev` instead of measuring the one the environment names")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

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
                   help="send one record per batch (SHOPSTREAM_SINGLE_RECORD_BATCHES; off by default, as in "
                        "`shopstream dev`: it makes every produced record its own request)")

    p = scenario("reservations", "OrderPlaced (two lines each) → ReservationChanged through the orders worker(s), "
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
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="orders workers in one consumer group, splitting the 4 partitions (default 1)")
    p.add_argument("--single-record-batches", action="store_true",
                   help="the worker and the bench's producer send one record per batch "
                        "(SHOPSTREAM_SINGLE_RECORD_BATCHES; off by default, as in `shopstream dev`)")

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

    p = scenario("shop-stock", "the shop writer's core and Shopify GraphQL client into the local API double: "
                               "commands/s (unlimited budget) and a first load at the default budget (virtual clock)")
    p.add_argument("--skus", type=positive_int, default=100_000, metavar="N", help="SKUs for commands/s (100,000)")
    p.add_argument("--first-load", type=positive_int, default=1_000_000, metavar="N",
                   help="SKUs of the first load at the default budget (default 1,000,000)")
    p.add_argument("--mutation-cost", type=positive_float, default=10.0, metavar="POINTS",
                   help="requested cost of one inventorySetQuantities mutation (default 10)")

    p = scenario("catalog-checks", "the catalog's quality checks in-process over generated products: without the "
                                   "index (baseline), the index build, and with the cross-product checks")
    p.add_argument("--products", type=positive_int, default=20_000, metavar="N",
                   help="products per run (default 20,000)")

    p = scenario("views-sink", "pre-loaded AtpLevels → Redis ATP view, the view sink in-process against the real "
                               "Redis, one embedded broker and registry for all runs")
    p.add_argument("--records", type=positive_int, default=100_000, metavar="N",
                   help="AtpLevel records per run (default 100,000)")
    p.add_argument("--batch-size", type=positive_int, default=1000, metavar="N",
                   help="the sink's batch size (default 1000)")
    p.add_argument("--single-record-batches", action="store_true",
                   help="produce one record per broker batch (the dev stack's Tansu workaround)")


def _add_ingest_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = sub.add_parser("ingest", help="publish a source system's export file as canonical events")
    isub = ingest.add_subparsers(dest="source", required=True, metavar="SOURCE")
    p = isub.add_parser("erp-stock", help="ERP/WaWi stock export (CSV) -> StockSnapshot on inventory.stock",
                        description="Publish one StockSnapshot per row of a CSV stock export (comma or semicolon, "
                                    "UTF-8 with or without BOM; columns sku, on_hand, optional location, "
                                    "safety_stock, incoming). Rejected rows go to connectors.dlq. Exit 0: all "
                                    "published; 1: rows rejected (valid rows still published); 2: unusable file.")
    p.add_argument("file", metavar="FILE", help="the export file, or - for stdin")
    p.add_argument("--as-of", metavar="T",
                   help="when the ERP counted: ISO-8601 with a zone, e.g. 2026-11-23T06:00:00Z (default: now)")
    p.add_argument("--changed-only", action="store_true",
                   help="publish only rows whose figures differ from the last ingest's (kept in Redis); see "
                        "the README for the trade-off")
    p.set_defaults(func=cmd_ingest)
    p = isub.add_parser("pim", help="PIM export (CSV, JSON, JSON Lines) -> ProductUpserted on catalog.products",
                        description="Publish each product row of a PIM export as ProductUpserted (or ProductDeleted) "
                                    "keyed by SKU. Rejected rows are reported with their line number and parked on "
                                    "connectors.dlq. Exit 0: all published; 1: rows rejected; 2: unusable file.")
    p.add_argument("file", metavar="FILE", help="the export file, or - for stdin")
    p.set_defaults(func=cmd_ingest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopstream", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("dev", help="run the embedded stack in the foreground (Ctrl-C stops it)")
    p.add_argument("--durable-broker", action="store_true",
                   help="run the embedded Tansu on S3 storage in a local moto_server: a killed broker is "
                        "started again on the same port with its data kept (needs moto[server])")
    p.set_defaults(func=cmd_dev)
    from shopstream.sim.cli import add_sim_parsers

    add_sim_parsers(sub)  # simulate, demo

    topics = sub.add_parser("topics", help="create or validate the topics of topology/topics.yaml")
    tsub = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    overlay_help = ("overlay merged over the topology, e.g. topology/overlays/production.yaml "
                    "(default: SHOPSTREAM_TOPOLOGY_OVERLAY, else none)")
    p = tsub.add_parser("apply", help="create missing topics, report drift on existing ones (changes nothing else)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (every topic with partitions, replication, configs) from the topology "
                        "alone; contacts no broker, creates nothing")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--file", help="topology file (default: the shipped topology/topics.yaml)")
    p.add_argument("--overlay", metavar="FILE", help=overlay_help)
    p.set_defaults(func=cmd_topics_apply)
    p = tsub.add_parser("check", help="validate the topology file (partitions, DLQs, record names)")
    p.add_argument("--file", help="topology file (default: the shipped topology/topics.yaml)")
    p.add_argument("--overlay", metavar="FILE", help=overlay_help)
    p.add_argument("--production", action="store_true",
                   help="also fail on any topic with replication below 3 or min.insync.replicas below 2")
    p.set_defaults(func=cmd_topics_check)

    p = sub.add_parser("worker", help="run a stream processor")
    p.add_argument("processor", choices=list(_WORKERS), help="which processor")
    p.add_argument("--port", type=int, default=None,
                   help="port of the worker's /metrics and /readyz (default: SHOPSTREAM_ADMIN_PORT, else "
                        "SHOPSTREAM_WORKER_PORT + the worker's offset)")
    p.set_defaults(func=cmd_worker)

    for group, func, text in (("connectors", cmd_connectors_serve, "the webhook service"),
                              ("api", cmd_api_serve, "the read API"),
                              ("registry", cmd_registry_serve, "the embedded schema registry")):
        g = sub.add_parser(group, help=text)
        gsub = g.add_subparsers(dest="action", required=True, metavar="ACTION")
        gsub.add_parser("serve", help=f"serve {text}").set_defaults(func=func)

    r = sub.add_parser("rules", help="review rules: try a file on sample orders or on the order history")
    rsub = r.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = rsub.add_parser("test", help="validate a rules file and show which rules fire on sample orders and why")
    p.add_argument("file", help="rules file, e.g. topology/rules/review.yaml")
    p.add_argument("--orders", metavar="SAMPLES.json", help="sample orders (default: the shipped samples)")
    p.set_defaults(func=cmd_rules_test)
    p = rsub.add_parser("backtest", help="replay shop.orders through a rules file: per rule, what it would do")
    p.add_argument("--since", required=True, help="orders placed from (ISO-8601, or 7d / 12h back from now)")
    p.add_argument("--until", help="orders placed before (default: now)")
    p.add_argument("--rules", metavar="FILE", help="rules file (default: SHOPSTREAM_REVIEW_RULES or the shipped one)")
    p.set_defaults(func=cmd_rules_backtest)

    from shopstream.ops.dlq_cli import add_dlq_parser

    add_dlq_parser(sub, cmd_dlq)
    _add_ingest_parser(sub)

    _add_bench_parser(sub)
    from shopstream.processors.support.tools import add_support_parser
    add_support_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `shopstream` console script."""
    args = build_parser().parse_args(argv)
    # authlib (pulled in by confluent-kafka's registry client) warns about its own httpx shim on import.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    try:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        return int(args.func(args, settings))
    except ConfigError as exc:
        print(f"shopstream: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
