"""`shopstream dev`: the whole stack on one machine, in the foreground.

Starts the embedded Tansu broker (unless KAFKA_BOOTSTRAP_SERVERS is set) and the embedded schema
registry (unless SCHEMA_REGISTRY_URL is set), applies the topology, then runs the connectors
service, the read API and every worker as child processes (`worker views` writes both Redis views,
orders and ATP, that the read API serves). Ctrl-C (or SIGTERM) stops the children,
then the registry and the broker. A worker killed by a signal (SIGKILL, the OOM killer) or halted
by the runner for a restart (`shopstream.halt`: exit 75 or 76, "start me again, I committed nothing
unsafe") is started again with the same arguments: the runner resumes from its committed offsets
and changelog, which is what a process supervisor does in production. Any other child that exits,
or a worker that exits with another code (bad config, a bug), stops everything and the exit code is
1: a restart would only fail the same way. The process ids are kept in `<state dir>/dev-pids.json` (pids.py).

`--durable-broker`: the embedded Tansu runs on S3 storage in a child moto_server (broker.py), and
when the broker process dies (a crash, or `kill -9` to rehearse one) dev starts it again on the same
port with every topic and committed offset kept, while the services ride it out. The data lives as
long as dev runs: moto_server keeps it in memory, so nothing more goes into the state dir.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from shopstream.children import signal_group, spawn
from shopstream.config import ADMIN_PORT_OFFSET, Settings, exposure_problems, load_settings
from shopstream.dev.broker import (
    DURABLE_FETCH_MAX_WAIT_MS,
    DurableBroker,
    EmbeddedBroker,
    EmbeddedBrokerError,
    start_durable_tansu,
    start_tansu,
)
from shopstream.dev.pids import write_pids
from shopstream.dev.ports import free_port, http_ok, port_free, wait_for_port
from shopstream.dev.tokens import ADMIN_TOKEN_FILE, dev_admin_token
from shopstream.halt import EXIT_DELIVERY_FAILED, EXIT_PARK_FAILED

DEV_SHOPIFY_SECRET = "shopstream-dev-secret"
REDIS_HINT = ("start one with:\n  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' "
              "--appendonly no\nor point REDIS_URL at a running server")

# The workers dev always starts (the shop writer only with shop credentials), with what their /metrics show;
# each on its port from config.WORKER_PORT_OFFSETS.
WORKERS_ALWAYS = {"orders": "orders worker", "views": "views sink: order + ATP views",
                  "inventory": "inventory worker", "shop-sync": "shop stock sync", "review": "review rules",
                  "support": "support", "anomalies": "anomalies and KPIs", "catalog": "catalog"}
# orders, inventory, support, anomalies and catalog serve /readyz (the runner's readiness)
RUNNER_WORKERS = ("orders", "inventory", "support", "anomalies", "catalog")
# The order path's hops (webhook → orders worker → orders.state → views sink → Redis) fetch with a short
# wait unless KAFKA_FETCH_MAX_WAIT_MS is set: Tansu answers a fetch only when the wait expires (README,
# Tansu quirks), so each hop adds up to the wait. Not every worker: each idle consumer fetches 1000/W
# times a second (the idle broker used 9% of a core with every worker at 100 ms). Measured with
# `bench webhook-latency --orders 300 --pace 40` (one run each, machine loaded alike): p50 94 ms at
# 100 ms for every worker, 49 ms at 20.
HOT_PATH_FETCH_WAIT_MS = {"worker-orders": "20", "worker-views": "20"}


# How long a stage of `Stack.stop` waits for its processes before killing them; `DevProcess.stop`
# waits longer than the whole stop (services, registry, broker), so dev is never killed mid-stop.
STOP_STAGE_S = 15.0
DEV_STOP_S = 3 * STOP_STAGE_S + 15.0


RESTART_RESET_S = 60.0  # a worker that ran this long since its last restart starts again at once
RESTART_MAX_WAIT_S = 30.0


@dataclass
class Stack:
    """The processes `shopstream dev` owns."""

    env: dict[str, str]
    log_dir: Path | None = None
    broker: EmbeddedBroker | None = None
    durable: DurableBroker | None = None
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    argv: dict[str, tuple[str, ...]] = field(default_factory=dict)
    state_dir: Path | None = None
    #: per worker: when it was last started again, the last backoff, and when it is due (crash-loop backoff)
    restarts: dict[str, tuple[float, float, float | None]] = field(default_factory=dict)
    #: per process name: environment over `env` (the hot path's fetch wait)
    env_for: dict[str, dict[str, str]] = field(default_factory=dict)

    def spawn(self, name: str, *args: str) -> None:
        # Own group (children.spawn): a terminal's Ctrl-C reaches only `shopstream dev`, which then stops the
        # services first and the broker last, instead of everything at once (clients shouting at a dead
        # broker); and if dev itself is killed, the kernel stops its children (PR_SET_PDEATHSIG).
        out = open(self.log_dir / f"{name}.log", "ab") if self.log_dir else None  # noqa: SIM115 - child owns it
        self.argv[name] = args
        try:
            self.children[name] = spawn([sys.executable, "-m", "shopstream.cli", *args],
                                        env={**self.env, **self.env_for.get(name, {})},
                                        stdout=out, stderr=subprocess.STDOUT if out else None)
        finally:
            if out is not None:
                out.close()

    def stop(self) -> None:
        """Stop the services and workers, then the registry, then the broker."""
        self._stop([p for n, p in self.children.items() if n != "registry"])
        self._stop([p for n, p in self.children.items() if n == "registry"])
        if self.broker is not None:
            self.broker.stop()
        if self.durable is not None:
            self.durable.stop()

    def revive_broker(self) -> None:
        """Start the durable broker again if its process died (same port, data kept); no-op otherwise."""
        if self.durable is None or self.durable.running or self.durable.broker is None:
            return
        code = self.durable.broker.process.poll()
        took = self.durable.start()
        print(f"shopstream dev: the broker exited ({code}); started again on {self.durable.bootstrap} with its "
              f"data, answering after {took:.2f} s (pid {self.durable.broker.process.pid})", flush=True)
        self.write_pids()

    def write_pids(self) -> None:
        """Record the current process ids in the state dir (pids.py); no-op without one."""
        if self.state_dir is None:
            return
        broker = self.durable.broker if self.durable is not None else self.broker
        write_pids(self.state_dir, broker=broker.process.pid if broker is not None else None,
                   durable=self.durable is not None,
                   children={name: proc.pid for name, proc in self.children.items()},
                   bootstrap=self.env.get("KAFKA_BOOTSTRAP_SERVERS", ""),
                   registry=self.env.get("SCHEMA_REGISTRY_URL", ""))

    def restart_killed_worker(self, name: str, code: int) -> bool:
        """Start a worker again if a signal killed it (negative exit code) or it halted asking for a restart
        (`shopstream.halt`'s 75 / 76); False for anything else."""
        if not name.startswith("worker-") or not (code < 0 or code in (EXIT_PARK_FAILED, EXIT_DELIVERY_FAILED)):
            return False
        now = time.monotonic()
        # Like a supervisor's crash-loop backoff: a worker that keeps halting (the broker away for minutes)
        # is started again after 1, 2, 4 … 30 s instead of every loop; a minute of health resets the wait.
        last, wait, due = self.restarts.get(name, (-RESTART_RESET_S, 0.0, None))
        if due is None:
            wait = 0.0 if now - last >= RESTART_RESET_S else min(RESTART_MAX_WAIT_S, max(1.0, 2 * wait))
            due = now + wait
            self.restarts[name] = (last, wait, due)
        if now < due:
            return True  # backing off (this is called every loop)
        self.restarts[name] = (now, wait, None)
        signal_group(self.children[name], signal.SIGKILL)  # a grandchild of the dead worker goes too
        self.spawn(name, *self.argv[name])
        why = f"was killed by signal {-code}" if code < 0 else f"halted for a restart (exit {code})"
        print(f"shopstream dev: {name} {why}; started again (pid {self.children[name].pid}"
              f"{f', after backing off {wait:.0f} s' if wait else ''})", flush=True)
        self.write_pids()
        return True

    @staticmethod
    def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            if proc.poll() is None:
                signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_STAGE_S
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
                proc.wait()
        for proc in procs:  # a grandchild that ignored the TERM must not outlive its group leader
            signal_group(proc, signal.SIGKILL)


def _redis_answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
        return True
    except redis.RedisError:
        return False


def _interrupt(_signum: int, _frame: object) -> None:
    # SIGTERM (docker stop, kubectl) takes the same clean path as Ctrl-C.
    raise KeyboardInterrupt


def run_dev(settings: Settings, durable_broker: bool = False) -> int:
    """Run the embedded stack until interrupted; returns the process exit code."""
    if not _redis_answers(settings.redis_url):
        print(f"shopstream dev: no Redis answers at {settings.redis_url}; {REDIS_HINT}", file=sys.stderr)
        return 2
    busy = [f"{var}={port}" for var, port in (("SHOPSTREAM_CONNECTORS_PORT", settings.connectors_port),
                                               ("SHOPSTREAM_API_PORT", settings.api_port),
                                               ("SHOPSTREAM_CONNECTORS_PORT (+1000: admin)", settings.connectors_port
                                                + ADMIN_PORT_OFFSET),
                                               ("SHOPSTREAM_API_PORT (+1000: admin)", settings.api_port
                                                + ADMIN_PORT_OFFSET))
            if not port_free(settings.http_host, port)]
    if busy:
        print(f"shopstream dev: port in use: {', '.join(busy)}; set the variable to a free port", file=sys.stderr)
        return 2
    weak = exposure_problems(settings)
    if weak:
        # The dev secret is public: on an address others can reach it would let anyone publish orders.
        print(f"shopstream dev: refusing to listen on {settings.http_host}: {'; '.join(weak)}", file=sys.stderr)
        return 2
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    log_dir = Path(settings.dev_log_dir) if settings.dev_log_dir else None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(env=dict(os.environ), log_dir=log_dir, state_dir=Path(settings.state_dir))
    # One host, two HTTP services: each takes its public port + ADMIN_PORT_OFFSET, not one shared port.
    stack.env.pop("SHOPSTREAM_ADMIN_PORT", None)
    os.environ.pop("SHOPSTREAM_ADMIN_PORT", None)
    if not settings.shopify_secret.get_secret_value():
        # Local only: without a secret every webhook would be refused; production must set its own.
        stack.env["SHOPSTREAM_SHOPIFY_SECRET"] = DEV_SHOPIFY_SECRET
        print(f"SHOPSTREAM_SHOPIFY_SECRET not set: using {DEV_SHOPIFY_SECRET!r} for this dev stack", flush=True)
    if not settings.api_tokens_file:
        # Local only: an admin token for this state dir, shown once; production sets its own tokens file.
        tokens, admin_token, created = dev_admin_token(Path(settings.state_dir))
        stack.env["SHOPSTREAM_API_TOKENS_FILE"] = str(tokens)
        if created:
            print(f"API admin token (shown once, kept in {Path(settings.state_dir) / ADMIN_TOKEN_FILE}): "
                  f"{admin_token}", flush=True)
        else:
            print(f"API admin token: in {Path(settings.state_dir) / ADMIN_TOKEN_FILE}", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(stack, settings, durable_broker)
    except KeyboardInterrupt:
        print("\nshopstream dev: stopping …", flush=True)
        return 0
    except EmbeddedBrokerError as exc:
        print(f"shopstream dev: {exc}", file=sys.stderr)
        return 2
    finally:
        stack.stop()


def _run(stack: Stack, settings: Settings, durable_broker: bool = False) -> int:
    if not settings.kafka_bootstrap_servers:
        port = 9092 if port_free("127.0.0.1", 9092) else free_port()
        if durable_broker:
            stack.durable = start_durable_tansu(port=port, log_dir=Path(settings.state_dir))
            bootstrap, storage = stack.durable.bootstrap, f"on S3 at {stack.durable.s3.endpoint}"
            pid = stack.durable.broker.process.pid if stack.durable.broker else 0
            storage += f", pid {pid}: restarted with its data if it dies"
            # Tansu acknowledged an idempotent retry across its crash without writing it (config.py).
            stack.env.setdefault("KAFKA_ENABLE_IDEMPOTENCE", "false")
            # Tansu gives up listing S3 when a fetch's wait is spent: a short wait starves every consumer
            # that is behind (broker.py, DURABLE_FETCH_MAX_WAIT_MS).
            stack.env.setdefault("KAFKA_FETCH_MAX_WAIT_MS", str(DURABLE_FETCH_MAX_WAIT_MS))
        else:
            stack.broker = start_tansu(port=port, log_path=Path(settings.state_dir) / "tansu.log")
            bootstrap, storage = stack.broker.bootstrap, "in memory"
        stack.env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        print(f"embedded Kafka broker (Tansu, {storage}): {bootstrap}", flush=True)
    if not settings.schema_registry_url:
        port = settings.registry_port if port_free(settings.http_host, settings.registry_port) else free_port()
        stack.env["SHOPSTREAM_REGISTRY_PORT"] = str(port)
        stack.spawn("registry", "registry", "serve")
        url = f"http://{settings.http_host}:{port}"
        if not wait_for_port(settings.http_host, port, 20):
            print("shopstream dev: the embedded schema registry did not start", file=sys.stderr)
            return 1
        stack.env["SCHEMA_REGISTRY_URL"] = url
        print(f"embedded schema registry: {url}", flush=True)
    os.environ.update(stack.env)
    effective = load_settings()
    from shopstream.topology import apply, load_topology_for

    report = apply(load_topology_for(effective), effective.kafka_client_config(), prefix=effective.topic_prefix)
    print(report.render(), flush=True)
    if "KAFKA_FETCH_MAX_WAIT_MS" not in stack.env:
        for name, wait in HOT_PATH_FETCH_WAIT_MS.items():
            stack.env_for.setdefault(name, {})["KAFKA_FETCH_MAX_WAIT_MS"] = wait
    stack.spawn("connectors", "connectors", "serve")
    stack.spawn("api", "api", "serve")
    for worker in WORKERS_ALWAYS:
        stack.spawn(f"worker-{worker}", "worker", worker, "--port", str(effective.worker_port(worker)))
    if (effective.shopify_access_token.get_secret_value()
            or effective.woocommerce_consumer_key.get_secret_value()):
        # only with a shop to write to: without credentials it would exit 2 and stop the whole stack
        stack.spawn("worker-shop-writer", "worker", "shop-writer", "--port", str(effective.worker_port("shop-writer")))
    else:
        print("shop writer not started: no shop credentials (SHOPSTREAM_SHOPIFY_ACCESS_TOKEN or "
              "SHOPSTREAM_WOOCOMMERCE_CONSUMER_KEY/_SECRET; see README, Shop stock writer)", flush=True)
    base = f"http://{effective.http_host}"
    for name, port in (("connectors", effective.connectors_port), ("api", effective.api_port),
                       ("connectors admin", effective.connectors_admin_port), ("api admin", effective.api_admin_port)):
        if not http_ok(f"{base}:{port}/healthz", 30):
            print(f"shopstream dev: {name} did not come up on port {port}", file=sys.stderr)
            return 1
    print(f"\nconnectors (webhooks): {base}:{effective.connectors_port}/webhooks/shopify\n"
          f"read API:              {base}:{effective.api_port}/v1/orders/{{order_id}}, "
          f"{base}:{effective.api_port}/v1/atp/{{sku}}, {base}:{effective.api_port}/v1/atp?sku=A&sku=B\n"
          f"admin (/metrics, /readyz): {base}:{effective.connectors_admin_port} (connectors), "
          f"{base}:{effective.api_admin_port} (read API)\n"
          "metrics:               " + ", ".join(f"{base}:{effective.worker_port(w)}/metrics ({WORKERS_ALWAYS[w]})"
                                                for w in WORKERS_ALWAYS) + "\n"
          f"alerts and KPIs:       {base}:{effective.api_port}/v1/alerts, {base}:{effective.api_port}/v1/kpis\n"
          "shopstream dev: ready (Ctrl-C stops everything)", flush=True)
    stack.write_pids()
    while True:
        stack.revive_broker()
        for name, proc in list(stack.children.items()):
            code = proc.poll()
            if code is not None and not stack.restart_killed_worker(name, code):
                print(f"shopstream dev: {name} exited with code {code}; stopping", file=sys.stderr)
                return 1
        time.sleep(0.5)
