"""The whole stack as a user runs it: `shopstream dev` as a subprocess against the session broker."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Message

from shopstream.dev.process import DevProcess, spawn_dev
from tests.kafka_read import read_all
from tests.kafka_write import delete_topics

# The webhook secrets the stack runs with (one per source; the tests sign with the same values).
SHOPIFY_SECRET = "e2e-shopify-secret"
SECRET = SHOPIFY_SECRET  # the name the first e2e tests import
STRIPE_SECRET = "whsec_e2e_stripe_secret"
WOOCOMMERCE_SECRET = "e2e-woocommerce-secret"
CARRIER_SECRET = "e2e-carrier-secret"
RETURNS_SECRET = "e2e-returns-secret"


@dataclass
class RunningStack:
    dev: DevProcess
    prefix: str
    bootstrap: str
    mappings_dir: Path

    @property
    def registry(self) -> str:
        return f"http://127.0.0.1:{self.dev.env['SHOPSTREAM_REGISTRY_PORT']}"

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """`shopstream …` as an operator runs it against this stack."""
        env = {**self.dev.env, "SCHEMA_REGISTRY_URL": self.registry}
        return subprocess.run([sys.executable, "-m", "shopstream.cli", *argv], env=env, capture_output=True,
                              text=True, timeout=120)

    @property
    def connectors(self) -> str:
        return self.dev.connectors_url

    @property
    def api(self) -> str:
        return self.dev.api_url

    @property
    def token(self) -> str:
        """The API admin token `shopstream dev` made for this stack."""
        return self.dev.admin_token

    def log_tail(self) -> str:
        return self.dev.log_tail()

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def read_topic(self, name: str, partitions: int = 4) -> list[Message]:
        """Every record currently on a topic (no consumer group)."""
        return read_all(self.bootstrap, self.topic(name), partitions)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`shopstream dev` with its own topic prefix, ports, Redis prefix and state dir."""
    token = uuid.uuid4().hex[:8]
    prefix = f"e2e{token}."
    mappings = tmp_path_factory.mktemp("mappings")
    dev = spawn_dev(tmp_path_factory.mktemp("dev"), KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
                    SHOPSTREAM_MAPPINGS_DIR=str(mappings),
                    SHOPSTREAM_TOPIC_PREFIX=prefix, SHOPSTREAM_REDIS_PREFIX=f"test:e2e{token}:",
                    REDIS_URL=redis_url, SHOPSTREAM_SHOPIFY_SECRET=SHOPIFY_SECRET,
                    SHOPSTREAM_STRIPE_SECRET=STRIPE_SECRET, SHOPSTREAM_WOOCOMMERCE_SECRET=WOOCOMMERCE_SECRET,
                    SHOPSTREAM_CARRIER_SECRET=CARRIER_SECRET, SHOPSTREAM_RETURNS_SECRET=RETURNS_SECRET,
                    KAFKA_SESSION_TIMEOUT_S="6",
                    SCHEMA_REGISTRY_URL="")
    dev.wait_ready()
    try:
        yield RunningStack(dev=dev, prefix=prefix, bootstrap=kafka_bootstrap, mappings_dir=mappings)
    finally:
        dev.stop()
        delete_topics(kafka_bootstrap, prefix)  # the session broker stays small (tests/kafka_write.py)
