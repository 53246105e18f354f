"""The one Faust app factory: broker, security, store, session timeout, web port, metrics.

Faust workers publish through Faust's own (aiokafka) producer so that its commit protocol holds:
Faust flushes its producer before it commits input offsets, so an output is never lost behind a
committed offset. aiokafka partitions keys with murmur2, as `make_producer` does for confluent-kafka.
The aiokafka idempotent producer is left off: it needs InitProducerId, which Tansu does not serve to
aiokafka (DESIGN.md); at-least-once plus idempotent state updates give effectively-once instead.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Sequence
from typing import Any

import aiokafka.errors
import faust
from aiohttp import web
from faust.transport.drivers import aiokafka as faust_aiokafka

from shopstream.config import Settings
from shopstream.kafka import Headers
from shopstream.metrics import metrics_handler


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust/aiokafka credentials matching the librdkafka security settings."""
    proto = settings.kafka_security_protocol
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if "SSL" in proto else None
    if proto.startswith("SASL"):
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        return faust.SASLCredentials(username=settings.kafka_sasl_username, password=password,
                                     ssl_context=context, mechanism=settings.kafka_sasl_mechanism or "PLAIN")
    if proto == "SSL":
        return faust.SSLCredentials(context)
    return None


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    fetch_max_wait_ms = 100

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust hard-codes fetch_max_wait_ms=1500. Brokers that answer a fetch only when the wait
        # expires (Tansu) would add up to 1.5 s per hop; aiokafka reads the attribute when it starts.
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        thread = _ConsumerThread(self, loop=self.loop, beacon=self.beacon)
        thread.fetch_max_wait_ms = self.app.conf.shopstream_fetch_max_wait_ms
        return thread


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class ShopstreamFaustApp(faust.App):
    """faust.App whose Kafka consumer honours KAFKA_FETCH_MAX_WAIT_MS."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def make_faust_app(settings: Settings, name: str, web_port: int | None = None, **overrides: Any) -> faust.App:
    """A Faust app named `name` (prefixed), with `/metrics` on its web server."""
    conf: dict[str, Any] = dict(
        broker=",".join(f"kafka://{hp.strip()}" for hp in settings.kafka_bootstrap_servers.split(",")),
        broker_credentials=faust_credentials(settings),
        store=settings.faust_store,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.kafka_session_timeout_s / 5),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # aiokafka always puts the first record in a batch, so 1 byte means one record per batch.
        producer_max_batch_size=1 if settings.single_record_batches else 512 * 1024,
        # Up to 5 ms for more records to join a produce request: per-request overhead dominated bulk
        # output (one AtpLevel and one changelog record per SKU), measured with py-spy.
        producer_linger=0.005,
        producer_request_timeout=settings.kafka_producer_timeout_s,
        producer_compression_type=None if settings.kafka_compression == "none" else settings.kafka_compression,
        topic_partitions=4,
        topic_replication_factor=1,
        topic_allow_declare=True,   # Faust declares its own table changelog topics
        topic_disable_leader=True,
        web_host=settings.http_host,
        web_port=web_port or settings.worker_web_port,
        web_in_thread=False,
        datadir=f"{settings.state_dir}/faust",
        table_cleanup_interval=30.0,
    )
    conf.update(overrides)
    app = ShopstreamFaustApp(settings.topic(name), **conf)
    app.conf.shopstream_fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms

    @app.page("/metrics")  # type: ignore[arg-type]  # Faust's web types wrap aiohttp's
    async def _metrics(_view: Any, request: web.Request) -> web.Response:
        return await metrics_handler(request)

    return app


async def wait_confirmed(deliveries: Sequence[Awaitable[Any]], timeout_s: float) -> None:
    """Wait until the broker confirmed every send of Faust's producer; aiokafka's KafkaTimeoutError
    (transient, `shopstream.processing`) for those still unconfirmed after `timeout_s`.

    aiokafka expires a queued batch only while its partition has no leader: with the leader known but
    unreachable (a cut connection, a hung broker) the delivery future never resolves, whatever
    `producer_request_timeout` says, and an agent awaiting it would hang instead of retrying,
    parking, or stopping. The futures are not cancelled: a late confirmation stays harmless (a retry
    re-sends the same deterministic records, which consumers treat as duplicates)."""
    if not deliveries:
        return
    futures = [asyncio.ensure_future(d) for d in deliveries]
    _done, pending = await asyncio.wait(futures, timeout=timeout_s)
    if pending:
        raise aiokafka.errors.KafkaTimeoutError(
            f"{len(pending)} of {len(futures)} sends not confirmed by the broker within {timeout_s:g} s")
    for fut in futures:
        fut.result()  # the first refused send raises its error


class FaustPublisher:
    """`Publisher` over a Faust app's producer, for DLQ writes from inside agents; a write not confirmed
    within `timeout_s` raises KafkaTimeoutError (see `wait_confirmed`)."""

    def __init__(self, app: faust.App, timeout_s: float = 30.0) -> None:
        self._app = app
        self._timeout_s = timeout_s

    async def publish(self, topic: str, key: bytes | None, value: bytes | None,
                      headers: Headers | None = None) -> None:
        # The enqueue itself may wait for metadata; bound it too.
        delivery = await asyncio.wait_for(
            self._app.producer.send(topic, key, value, None, None, list(headers or [])), self._timeout_s)
        await wait_confirmed([delivery], self._timeout_s)


_FAUST_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error"}


def run_worker(app: faust.App, settings: Settings) -> None:
    """Run a Faust app as a worker in the foreground until SIGINT/SIGTERM."""
    from faust.worker import Worker

    worker = Worker(app, loglevel=_FAUST_LEVELS[settings.log_level], quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG so that it spins per log record: every
    # debug call of aiokafka and Faust then builds a record (~10% of a busy worker's CPU, measured).
    worker.spinner = None
    worker.execute_from_commandline()
