"""Start shopstream workers as real subprocesses for integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TypeVar

from aiohttp.test_utils import TestClient, TestServer

from shopstream import children
from shopstream.children import spawn
from shopstream.config import Settings
from shopstream.dev.ports import free_port
from tests import processes
from tests.kafka_write import Feed

T = TypeVar("T")


def start_worker(processor: str, settings: Settings, log: Path, *, port: int | None = None,
                 **env: str) -> subprocess.Popen[bytes]:
    """`shopstream worker <processor>` against the test's broker, registry and topic prefix.

    `port`: its admin port (`/readyz`, `assigned_partitions`); a free one when not given."""
    full_env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "SCHEMA_REGISTRY_URL": settings.schema_registry_url, "SHOPSTREAM_TOPIC_PREFIX": settings.topic_prefix,
                "REDIS_URL": settings.redis_url, "SHOPSTREAM_REDIS_PREFIX": settings.redis_key_prefix,
                "KAFKA_SESSION_TIMEOUT_S": "6", "SHOPSTREAM_LOG_LEVEL": "INFO",
                "SHOPSTREAM_STATE_DIR": str(log.parent),
                "KAFKA_ENABLE_IDEMPOTENCE": str(settings.kafka_idempotence).lower(),
                "KAFKA_FETCH_MAX_WAIT_MS": str(settings.kafka_fetch_max_wait_ms), **env}
    processes.track(f"worker {processor}", log)
    with open(log, "ab") as out:
        return spawn([sys.executable, "-m", "shopstream.cli", "worker", processor, "--port", str(port or free_port())],
                     env=full_env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM its process group, then SIGKILL if it does not exit within 20 s; its exit code."""
    return children.stop(proc, 20)


def assigned_partitions(port: int) -> set[str] | None:
    """The `topic[partition]`s a worker holds, from its `/readyz` on `port`; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:  # 503 while unassigned or restoring: the body still says what it holds
        body = exc.read()
    except OSError:  # not listening yet, or gone
        return None
    return set(json.loads(body)["checks"]["partitions"])


def sigkill_mid_feed(worker: subprocess.Popen[bytes], feed: Feed, log: Path) -> None:
    """Start `feed`, SIGKILL `worker` once a third of it is out; the feed must still be running (mid-stream)."""
    feed.start()
    wait_for(lambda: feed.sent >= len(feed.records) // 3, 60, log, "a third of the feed")
    assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert feed.thread.is_alive(), "the feed ended before the kill: not mid-stream"


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


@contextmanager
def running_sink(settings: Settings, batch_size: int) -> Iterator[None]:
    """`run_sink` (the views worker) in a thread for the block; its crash fails the test at the end."""
    from shopstream.views.sink import run_sink

    stop_event = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_sink(settings, stop_event, metrics_port=0, batch_size=batch_size)
        except BaseException as exc:  # surface the worker's crash in the test
            errors.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    yield
    stop_event.set()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert not errors, errors


#: One token per role for API tests: role -> (name, token). The tokens file holds only their hashes.
TEST_TOKENS: dict[str, tuple[str, str]] = {role: (f"test-{role}", f"token-of-test-{role}")
                                           for role in ("viewer", "reviewer", "operator", "admin")}


def write_test_tokens(folder: Path) -> Path:
    """A tokens file with one token per role (TEST_TOKENS) in `folder`."""
    from shopstream.auth import TokenEntry, hash_token, write_tokens

    path = folder / "api-tokens.yaml"
    write_tokens(path, [TokenEntry(name=name, roles=(role,), sha256=hash_token(token))  # type: ignore[arg-type]
                        for role, (name, token) in TEST_TOKENS.items()])
    return path


def auth_header(role: str | None) -> dict[str, str]:
    """The Authorization header of the test token of `role` (none for None)."""
    return {"Authorization": f"Bearer {TEST_TOKENS[role][1]}"} if role else {}


@asynccontextmanager
async def api_client(settings: Settings, role: str | None = "viewer") -> AsyncIterator[TestClient]:
    """The read API app in an aiohttp test server for the block; requests carry `role`'s test token.

    Unless `settings` names a tokens file, one with the TEST_TOKENS is written for the block."""
    from shopstream.api.app import make_app

    with tempfile.TemporaryDirectory() as folder:
        if not settings.api_tokens_file:
            settings = settings.model_copy(update={"api_tokens_file": str(write_test_tokens(Path(folder)))})
        client = TestClient(TestServer(make_app(settings)), headers=auth_header(role))
        await client.start_server()
        try:
            yield client
        finally:
            await client.close()


@asynccontextmanager
async def api_clients(settings: Settings, role: str | None = "viewer") -> AsyncIterator[tuple[TestClient, TestClient]]:
    """The read API (public port, requests carrying `role`'s test token) and its admin app (/metrics, /readyz)."""
    from shopstream.api.app import make_admin, make_app

    with tempfile.TemporaryDirectory() as folder:
        if not settings.api_tokens_file:
            settings = settings.model_copy(update={"api_tokens_file": str(write_test_tokens(Path(folder)))})
        public = make_app(settings)
        client = TestClient(TestServer(public), headers=auth_header(role))
        admin = TestClient(TestServer(make_admin(settings, public)))
        await client.start_server()
        await admin.start_server()
        try:
            yield client, admin
        finally:
            await admin.close()
            await client.close()
