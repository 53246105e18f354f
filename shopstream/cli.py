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

from shopstream.config import ConfigError, Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _require(settings: Settings, *fields: str) -> None:
    from shopstream.config import env_name

    missing = [env_name(f) for f in fields if not getattr(settings, f)]
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be set for this command "
                          "(or use `shopstream dev`, which starts the embedded broker and registry)")


def cmd_topics_check(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.topology import check, known_record_names, load_topology

    problems = check(load_topology(args.file) if args.file else load_topology(), known_records=known_record_names())
    for p in problems:
        print(f"problem: {p}")
    print("topology ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_topics_apply(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.topology import apply, load_topology

    _require(settings, "kafka_bootstrap_servers")
    report = apply(load_topology(args.file) if args.file else load_topology(), settings.kafka_client_config(),
                   prefix=settings.topic_prefix, dry_run=args.dry_run)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.render())
    return int(report.exit_code)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    _require(settings, "kafka_bootstrap_servers", "schema_registry_url")
    if args.processor == "orders":
        from shopstream.processors.orders.app import run

        run(settings, web_port=args.port)
    elif args.processor == "views":
        from shopstream.views.sink import run_sink

        run_sink(settings, metrics_port=args.port or settings.worker_web_port + 10)
    return 0


def cmd_connectors_serve(args: argparse.Namespace, settings: Settings) -> int:
    _require(settings, "kafka_bootstrap_servers", "schema_registry_url")
    from shopstream.connectors.service import serve

    serve(settings)
    return 0


def cmd_api_serve(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.api.app import serve

    serve(settings)
    return 0


def cmd_registry_serve(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.registry.service import serve

    serve(settings.http_host, settings.registry_port, settings.registry_storage)
    return 0


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.runtime import run_dev

    return run_dev(settings, demo=args.command == "demo")


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from shopstream.bench import run_bench

    return run_bench(args.scenario, settings, orders=args.orders, runs=args.runs, pace_per_s=args.pace)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopstream", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name, text in (("dev", "run the embedded stack in the foreground (Ctrl-C stops it)"),
                       ("demo", "run the embedded stack and feed it sample orders")):
        p = sub.add_parser(name, help=text)
        p.set_defaults(func=cmd_dev)

    topics = sub.add_parser("topics", help="create or validate the topics of topology/topics.yaml")
    tsub = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = tsub.add_parser("apply", help="create missing topics, report drift on existing ones (changes nothing else)")
    p.add_argument("--dry-run", action="store_true", help="report only, create nothing")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--file", help="topology file (default: the shipped topology/topics.yaml)")
    p.set_defaults(func=cmd_topics_apply)
    p = tsub.add_parser("check", help="validate the topology file (partitions, DLQs, record names)")
    p.add_argument("--file", help="topology file (default: the shipped topology/topics.yaml)")
    p.set_defaults(func=cmd_topics_check)

    p = sub.add_parser("worker", help="run a stream processor")
    p.add_argument("processor", choices=["orders", "views"], help="which processor")
    p.add_argument("--port", type=int, default=None, help="port of the worker's /metrics web server")
    p.set_defaults(func=cmd_worker)

    for group, func, text in (("connectors", cmd_connectors_serve, "the webhook service"),
                              ("api", cmd_api_serve, "the read API"),
                              ("registry", cmd_registry_serve, "the embedded schema registry")):
        g = sub.add_parser(group, help=text)
        gsub = g.add_subparsers(dest="action", required=True, metavar="ACTION")
        gsub.add_parser("serve", help=f"serve {text}").set_defaults(func=func)

    p = sub.add_parser("bench", help="measure throughput and latency (prints events/s and percentiles)")
    p.add_argument("scenario", choices=["webhook-latency"], help="what to measure")
    p.add_argument("--orders", type=int, default=300, help="orders per run")
    p.add_argument("--runs", type=int, default=3, help="runs (the median is reported)")
    p.add_argument("--pace", type=float, default=100.0, help="webhooks per second offered")
    p.set_defaults(func=cmd_bench)
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
