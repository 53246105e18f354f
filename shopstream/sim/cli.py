"""`shopstream simulate` and `shopstream demo`: their arguments and handlers (heavy imports inside the handlers)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopstream.config import Settings, secret_list

Handler = Callable[[argparse.Namespace, Settings], int]


def faces_from_settings(settings: Settings, token: str | None) -> Any:
    """Where a running `shopstream dev` answers, from the same settings it was started with."""
    from shopstream.dev.pids import read_pids
    from shopstream.dev.runtime import DEV_SHOPIFY_SECRET
    from shopstream.dev.tokens import read_dev_admin_token
    from shopstream.sim.faces import Faces

    secrets = {"shopify": (secret_list(settings.shopify_secret) or [DEV_SHOPIFY_SECRET])[0]}
    for source in ("stripe", "carrier", "returns", "erp"):
        values = secret_list(getattr(settings, f"{source}_secret"))
        if values:
            secrets[source] = values[0]
    host = settings.http_host
    # Where this state dir's dev put its broker and registry (it takes free ports when the defaults are busy).
    dev = read_pids(Path(settings.state_dir)) or {}
    return Faces(connectors=f"http://{host}:{settings.connectors_port}", api=f"http://{host}:{settings.api_port}",
                 token=token or read_dev_admin_token(Path(settings.state_dir)) or "", secrets=secrets,
                 bootstrap=settings.kafka_bootstrap_servers or dev.get("bootstrap") or "127.0.0.1:9092",
                 registry=(settings.schema_registry_url or dev.get("registry")
                           or f"http://{host}:{settings.registry_port}"),
                 prefix=settings.topic_prefix, state_dir=settings.state_dir, worker_port=settings.worker_web_port)


def config_from_args(args: argparse.Namespace, capabilities: set[str]) -> Any:
    """The plan's configuration from the command line; ValueError on a bad fault list."""
    from shopstream.sim.plan import Config, parse_faults

    # About 2.5 orders per customer whatever the volume: the velocity rule then holds the busy ones, not everyone.
    customers = max(120, int(args.duration * args.orders_per_second / 2.5))
    return Config(seed=args.seed, duration_s=args.duration, orders_per_second=args.orders_per_second,
                  faults=parse_faults(args.faults), skus=args.skus, customers=customers,
                  capabilities=frozenset(capabilities))


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Run a simulated shop day against a running stack; exit 1 on any mismatch, 2 on bad usage."""
    from shopstream.sim.driver import simulate

    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the registry client logs every schema lookup
    faces = faces_from_settings(settings, args.token)
    if not faces.token:
        print("shopstream simulate: no API token (--token, or run `shopstream dev` first: it writes "
              f"{settings.state_dir}/dev-admin-token)", file=sys.stderr)
        return 2
    try:
        cfg = config_from_args(args, set(faces.secrets))
    except ValueError as exc:
        print(f"shopstream simulate: {exc}", file=sys.stderr)
        return 2
    result = simulate(faces, cfg, settle_s=args.settle, quiet=args.json)
    if args.json:
        print(json.dumps(result.verdict.to_json(), indent=2, default=str))
    else:
        print(result.verdict.render())
        stats = result.verdict.stats
        lat, late = stats.get("latency_ms", {}), stats.get("send_late_s", {})
        print(f"latency (webhook accepted -> orders.state), ms: p50 {lat.get('p50')} p95 {lat.get('p95')} "
              f"p99 {lat.get('p99')} max {lat.get('max')} over {lat.get('samples')} orders")
        print(f"rate: {stats.get('deliveries_per_s')} deliveries/s sent of {stats.get('planned_deliveries_per_s')}/s "
              f"planned ({stats.get('senders')} senders); deliveries went out after their planned time by "
              f"p50 {late.get('p50')} s, p99 {late.get('p99')} s, max {late.get('max')} s")
    return 0 if result.verdict.clean else 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The shop in a box: embedded stack, a few minutes of traffic with faults, a report, an HTML page."""
    from shopstream.sim.demo import run_demo

    return run_demo(args, settings)


def add_sim_parsers(sub: Any) -> None:
    """Register `simulate` and `demo` on the top-level subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=7, help="seed of the catalog, customers, orders and faults")
    common.add_argument("--orders-per-second", type=float, default=2.0, help="order rate (default 2)")
    common.add_argument("--skus", type=int, default=40, help="catalog size (default 40)")
    common.add_argument("--settle", type=float, default=180.0,
                        help="seconds to wait after the last delivery for the system to agree (default 180)")
    p = sub.add_parser("simulate", parents=[common],
                       help="a simulated shop day through the real faces, checked against its own oracle",
                       description="Sends signed webhooks, ingests ERP stock and decides holds through the API "
                                   "of a running `shopstream dev` (same environment), then checks the read API "
                                   "and the output topics against an oracle. Exit 1 on any mismatch.")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of traffic (default 60)")
    p.add_argument("--faults", default="", help="dup,reorder,malformed,badsig,kill-worker,restart-broker or all "
                                                  "(restart-broker needs `shopstream dev --durable-broker`)")
    p.add_argument("--token", default=None, help="API token of a reviewer (default: dev's admin token)")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.set_defaults(func=cmd_simulate)
    d = sub.add_parser("demo", parents=[common],
                       help="run the embedded stack, simulate a shop day with faults, print a report + HTML")
    d.add_argument("--duration", type=float, default=120.0, help="seconds of traffic (default 120)")
    d.add_argument("--faults", default="dup,reorder,malformed,badsig", help="faults to inject")
    d.add_argument("--keep", action="store_true", help="leave the stack running after the report (Ctrl-C stops)")
    d.add_argument("--report", default=None, help="where to write the HTML report (default: in the demo's dir)")
    d.set_defaults(func=cmd_demo)
