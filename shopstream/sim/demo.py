"""`shopstream demo`: the embedded stack, a simulated shop day with a few faults, a report and an HTML page."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from shopstream.config import Settings
from shopstream.dev.process import spawn_dev
from shopstream.sim.cli import config_from_args
from shopstream.sim.driver import simulate
from shopstream.sim.faces import Faces
from shopstream.sim.html import render_html
from shopstream.sim.report import render_text, sections

# Local-only secrets of the demo's own stack (loopback; `shopstream dev` refuses them on other addresses).
DEMO_SECRETS = {"shopify": "demo-shopify-secret-local", "stripe": "whsec_demo_local", "carrier": "demo-carrier-local",
                "returns": "demo-returns-local", "erp": "demo-erp-local"}


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same path as Ctrl-C: stop the stack cleanly


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Start the stack (logs to files), simulate, print the report, write the HTML; 0 only when clean."""
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    home = Path(settings.state_dir).resolve() / "demo" / stamp
    print(f"demo: starting the embedded stack (broker, registry, connectors, API, 5 workers); "
          f"service logs in {home / 'logs'}", flush=True)
    env = {f"SHOPSTREAM_{k.upper()}_SECRET": v for k, v in DEMO_SECRETS.items()}
    dev = spawn_dev(home, KAFKA_SESSION_TIMEOUT_S="6", SHOPSTREAM_REDIS_PREFIX=f"demo{stamp}:", **env)
    try:
        dev.wait_ready(180)
        client = dev.client_env()
        faces = Faces(connectors=dev.connectors_url, api=dev.api_url, token=dev.admin_token, secrets=DEMO_SECRETS,
                      bootstrap=client.get("KAFKA_BOOTSTRAP_SERVERS", ""), registry=client["SCHEMA_REGISTRY_URL"],
                      prefix=client.get("SHOPSTREAM_TOPIC_PREFIX", ""), state_dir=str(home),
                      worker_port=int(client["SHOPSTREAM_WORKER_PORT"]))
        print(f"demo: ready; simulating {args.duration:.0f} s of a shop at {args.orders_per_second} orders/s "
              f"with faults {args.faults}", flush=True)
        result = simulate(faces, config_from_args(args, set(DEMO_SECRETS)), settle_s=args.settle)
        cli_env = f"KAFKA_BOOTSTRAP_SERVERS={faces.bootstrap} SCHEMA_REGISTRY_URL={faces.registry}"
        sec = sections(result, cli_env)
        print("\n" + render_text(result, sec), flush=True)
        report = Path(args.report) if args.report else home / "report.html"
        report.write_text(render_html(result, sec), encoding="utf-8")
        print(f"\nHTML report: {report}", flush=True)
        if args.keep:
            print(f"demo: the stack keeps running (Ctrl-C stops it): webhooks {dev.connectors_url}, API {dev.api_url}"
                  f" (token: {dev.admin_token}), logs {home / 'logs'}", flush=True)
            signal.signal(signal.SIGTERM, _interrupt)
            try:
                while dev.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return 0 if result.verdict.clean else 1
    except RuntimeError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        print("demo: stopping the stack …", flush=True)
        dev.stop()
