"""`shopstream dev` as a child process, for the end-to-end tests, the benchmarks and `shopstream demo`.

`spawn_dev(state_dir)` starts it on free ports with its own state dir and per-service logs; the returned
`DevProcess` knows its URLs, admin token and logs, waits until every service is ready and stops it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from shopstream.children import spawn, stop
from shopstream.config import ADMIN_PORT_OFFSET, WORKER_PORT_OFFSETS
from shopstream.dev.ports import free_port, free_port_block, http_ok, port_free
from shopstream.dev.runtime import DEV_STOP_S, RUNNER_WORKERS
from shopstream.dev.tokens import read_dev_admin_token


@dataclass
class DevProcess:
    """`shopstream dev` running as a child process (used by the benchmarks and the end-to-end tests)."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log_path: Path

    @property
    def connectors_url(self) -> str:
        return f"http://127.0.0.1:{self.env['SHOPSTREAM_CONNECTORS_PORT']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['SHOPSTREAM_API_PORT']}"

    @property
    def admin_token(self) -> str:
        """The API admin token `shopstream dev` made in its state dir."""
        token = read_dev_admin_token(Path(self.env["SHOPSTREAM_STATE_DIR"]))
        if token is None:
            raise RuntimeError("shopstream dev has not written its admin token (yet)")
        return token

    @property
    def connectors_admin_url(self) -> str:
        """The connectors service's admin port (/metrics, /readyz)."""
        return f"http://127.0.0.1:{self._admin_port('SHOPSTREAM_CONNECTORS_PORT')}"

    @property
    def api_admin_url(self) -> str:
        """The read API's admin port (/metrics, /readyz)."""
        return f"http://127.0.0.1:{self._admin_port('SHOPSTREAM_API_PORT')}"

    def _admin_port(self, public_var: str) -> int:
        return int(self.env[public_var]) + ADMIN_PORT_OFFSET

    @property
    def readiness_urls(self) -> list[str]:
        """What `wait_ready` polls: both HTTP services' /readyz on their admin ports (Kafka and Redis answer)
        and each stateful worker's /readyz (joined its group, holds partitions, state restored from the changelog)."""
        workers = int(self.env["SHOPSTREAM_WORKER_PORT"])
        return [f"{self.connectors_admin_url}/readyz", f"{self.api_admin_url}/readyz",
                *(f"http://127.0.0.1:{workers + WORKER_PORT_OFFSETS[w]}/readyz" for w in RUNNER_WORKERS)]

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until every service says it is ready; stop dev and raise with the logs' tails if not."""
        deadline = time.monotonic() + timeout_s
        for url in self.readiness_urls:
            while not http_ok(url, 0.5):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"shopstream dev did not become ready ({url}):\n{self.log_tail()}")

    def client_env(self) -> dict[str, str]:
        """The environment for a CLI command against this stack: its broker and registry as dev printed them."""
        env = dict(self.env)
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for variable, pattern in (("KAFKA_BOOTSTRAP_SERVERS", r"embedded Kafka broker \(Tansu, [^)]*\): (\S+)"),
                                  ("SCHEMA_REGISTRY_URL", r"embedded schema registry: (\S+)")):
            match = re.search(pattern, log)
            if match:
                env[variable] = match[1]
        return env

    def log_tail(self, chars: int = 2500) -> str:
        """The tail of dev's log and of each service's, with how long ago each was last written.

        A service that stopped progressing shows as the one whose log went quiet first."""
        now = time.time()
        parts = []
        for name, path in self.service_logs().items():
            if path.exists():
                age = now - path.stat().st_mtime
                parts.append(f"--- {name} (last written {age:.0f} s ago)\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def service_logs(self) -> dict[str, Path]:
        """Dev's log and each service's own (under SHOPSTREAM_DEV_LOG_DIR, which `spawn_dev` sets)."""
        logs = {"dev": self.log_path}
        log_dir = self.env.get("SHOPSTREAM_DEV_LOG_DIR")
        if log_dir:
            logs.update({p.stem: p for p in sorted(Path(log_dir).glob("*.log"))})
        return logs

    def stop(self, timeout_s: float = DEV_STOP_S) -> None:
        stop(self.process, timeout_s)


def _public_ports_with_admin() -> int:
    """Two free consecutive public ports (connectors, API) whose admin ports (+ ADMIN_PORT_OFFSET) are free too."""
    for _ in range(100):
        public = free_port_block(2)
        if public + 1 + ADMIN_PORT_OFFSET < 65536 and all(
                port_free("127.0.0.1", public + ADMIN_PORT_OFFSET + i) for i in range(2)):
            return public
    raise RuntimeError("no free public ports with free admin ports above them")


def spawn_dev(state_dir: Path, *args: str, **overrides: str) -> DevProcess:
    """Start `shopstream dev` on free ports with its own state dir; `args` are dev's options
    (`--durable-broker`), `overrides` extra env variables."""
    state_dir.mkdir(parents=True, exist_ok=True)
    public = _public_ports_with_admin()
    env = {
        **os.environ,
        "SHOPSTREAM_CONNECTORS_PORT": str(public),
        "SHOPSTREAM_API_PORT": str(public + 1),
        "SHOPSTREAM_REGISTRY_PORT": str(free_port()),
        "SHOPSTREAM_WORKER_PORT": str(free_port_block(len(WORKER_PORT_OFFSETS))),
        "SHOPSTREAM_REGISTRY_STORAGE": str(state_dir / "registry.json"),
        "SHOPSTREAM_STATE_DIR": str(state_dir),
        "SHOPSTREAM_DEV_LOG_DIR": str(state_dir / "logs"),
        **overrides,
    }
    log_path = state_dir / "dev.log"
    with open(log_path, "wb") as out:
        proc = spawn([sys.executable, "-m", "shopstream.cli", "dev", *args], env=env, stdout=out,
                     stderr=subprocess.STDOUT)
    return DevProcess(process=proc, env=env, log_path=log_path)
