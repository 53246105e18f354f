"""Start shopstream workers as real subprocesses for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from shopstream.config import Settings
from shopstream.embedded import free_port

T = TypeVar("T")


def start_worker(processor: str, settings: Settings, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """`shopstream worker <processor>` against the test's broker, registry and topic prefix."""
    full_env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "SCHEMA_REGISTRY_URL": settings.schema_registry_url, "SHOPSTREAM_TOPIC_PREFIX": settings.topic_prefix,
                "REDIS_URL": settings.redis_url, "SHOPSTREAM_REDIS_PREFIX": settings.redis_key_prefix,
                "KAFKA_SESSION_TIMEOUT_S": "6", "SHOPSTREAM_LOG_LEVEL": "INFO",
                "SHOPSTREAM_STATE_DIR": str(log.parent), "SHOPSTREAM_SINGLE_RECORD_BATCHES": "true", **env}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "shopstream.cli", "worker", processor, "--port",
                                 str(free_port())], env=full_env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit within 20 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(check: Callable[[], T], timeout_s: float = 60.0, log: Path | Sequence[Path] = (),
             what: str = "condition", *, interval_s: float = 0.3) -> T:
    """Poll `check` until it returns something truthy and return that; on timeout fail with the logs' tails."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval_s)
    logs = [log] if isinstance(log, Path) else list(log)
    tails = "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}" + (f"; logs:{tails}" if tails else ""))
