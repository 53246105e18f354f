"""Integration fixtures: the embedded schema registry (one per session) and Settings for one test.

`settings` points every client at the session broker, the registry, real Redis, a unique topic
prefix and the test's Redis key prefix; a test module may still define its own `settings`.
`durable_broker` is a Tansu on S3 storage (moto_server) shared by one module's tests, which kill and
restart it mid-stream (`durable_broker.restart()`); `durable_settings` points a test at it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shopstream.config import Settings, load_settings
from shopstream.dev.broker import DURABLE_FETCH_MAX_WAIT_MS, DurableBroker, start_durable_tansu
from shopstream.dev.registry.service import start_in_thread
from shopstream.dev.registry.store import SchemaStore
from tests import processes
from tests.kafka_write import delete_topics


@pytest.fixture(scope="session")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of an embedded Confluent-compatible registry persisting to a tmp file."""
    server = start_in_thread(SchemaStore(tmp_path_factory.mktemp("registry") / "registry.json"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def settings(kafka_bootstrap: str, registry_url: str, redis_url: str, redis_prefix: str, unique: str) -> Settings:
    """Settings for one test (field names are accepted: populate_by_name=True)."""
    return load_settings(kafka_bootstrap_servers=kafka_bootstrap, schema_registry_url=registry_url,
                         redis_url=redis_url, topic_prefix=f"t{unique}.", redis_key_prefix=redis_prefix,
                         kafka_session_timeout_s=6)


@pytest.fixture(scope="module")
def durable_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DurableBroker]:
    """A Tansu on S3 storage in a child moto_server, one per test module: restartable with its data kept.

    Module scope: a start costs ~1 s (moto_server's import), and topics are per test anyway (prefix)."""
    log_dir = tmp_path_factory.mktemp("durable-broker")
    broker = start_durable_tansu(log_dir=log_dir)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def durable_settings(durable_broker: DurableBroker, registry_url: str, redis_url: str, redis_prefix: str,
                     unique: str) -> Settings:
    """`settings`, but on the module's durable broker (started again if an earlier test left it down).

    Producers not idempotent: Tansu acknowledged an idempotent retry across its crash without writing
    it (config.py `kafka_idempotence`); fetches wait DURABLE_FETCH_MAX_WAIT_MS, as Tansu needs that long to
    list a partition in S3 (broker.py); tests/workers.py hands both on to the workers it starts."""
    if not durable_broker.running:
        durable_broker.start()
    for name in ("tansu.log", "s3.log"):
        if durable_broker.log_path is not None:
            processes.track(f"durable broker {name}", durable_broker.log_path.with_name(name))
    return load_settings(kafka_bootstrap_servers=durable_broker.bootstrap, schema_registry_url=registry_url,
                         redis_url=redis_url, topic_prefix=f"t{unique}.", redis_key_prefix=redis_prefix,
                         kafka_session_timeout_s=6, kafka_idempotence=False,
                         kafka_fetch_max_wait_ms=DURABLE_FETCH_MAX_WAIT_MS)


@pytest.fixture(autouse=True)
def _drop_test_topics(request: pytest.FixtureRequest) -> Iterator[None]:
    """A broker test's topics (prefix `t{unique}.`) are deleted when it ends, on the session broker (its
    idempotent produce slows with its topic count, tests/kafka_write.py) or on the module's durable broker
    (after a restart Tansu reads its topics back from moto's S3: the restart tests that came later in a
    module waited on the earlier tests' data, and a feed's writes timed out in a CI run)."""
    if request.node.get_closest_marker("broker") is None or "unique" not in request.fixturenames:
        yield
        return
    prefix = f"t{request.getfixturevalue('unique')}."
    if "durable_broker" in request.fixturenames:  # the module's durable broker: a restart reads every topic in S3
        durable: DurableBroker = request.getfixturevalue("durable_broker")
        yield
        if durable.running:
            delete_topics(durable.bootstrap, prefix)
        return
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    yield
    delete_topics(bootstrap, prefix)
