"""Integration fixtures: the embedded schema registry (one per session) and Settings for one test.

`settings` points every client at the session broker, the registry, real Redis, a unique topic
prefix and the test's Redis key prefix; a test module may still define its own `settings`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shopstream.config import Settings, load_settings
from shopstream.dev.registry.service import start_in_thread
from shopstream.dev.registry.store import SchemaStore


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
    """Settings for one test (field names are accepted: populate_by_name=True).

    single_record_batches: tests run on Tansu, which mishandles multi-record batches (config.py)."""
    return load_settings(kafka_bootstrap_servers=kafka_bootstrap, schema_registry_url=registry_url,
                         redis_url=redis_url, topic_prefix=f"t{unique}.", redis_key_prefix=redis_prefix,
                         kafka_session_timeout_s=6, single_record_batches=True)
