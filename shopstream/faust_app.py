"""The one Faust app factory: broker, security, store, session timeout, web port, metrics.

Faust workers publish through Faust's own (aiokafka) producer so that its commit protocol holds:
Faust flushes its producer before it commits input offsets, so an output is never lost behind a
committed offset. aiokafka partitions keys with murmur2, as `make_producer` does for confluent-kafka.
The aiokafka idempotent producer is left off: it needs InitProducerId, which Tansu does not serve to
aiokafka (DESIGN.md); at-least-once plus idempotent state updates give effectively-once instead.

Topic defaults come from the topology (`shopstream.topology`), not constants: topic_partitions and
topic_replication_factor are those of the app's internal topics (its table changelogs, declared in
topics.yaml), so a topic Faust declares itself gets the settings `topics apply` would give it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any

import aiokafka.errors
import faust
from aiohttp import web
from faust.transport.drivers import aiokafka as faust_aiokafka

from shopstream.config import Settings
from shopstream.kafka import Headers
from shopstream.metrics import metrics_handler
from shopstream.topology import Topology, TopologyError, load_topology_for

log = logging.getLogger(__name__)

# How often the consumer looks for a commit stuck behind records it will never deliver (two looks in a
# row must agree before it reads them again).
STALL_CHECK_INTERVAL_S = 5.0


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


def split_fetched(records: Mapping[Any, Sequence[Any]], active: Iterable[Any],
                  buffered: Iterable[Any]) -> tuple[dict[Any, Sequence[Any]], dict[Any, int]]:
    """(records Faust will deliver, {partition: offset to rewind to}) for a batch the client handed over.

    Faust delivers a fetched record only if its partition is still active (or buffered) when it gets to
    it, and drops the others silently although the client's position has moved past them. Those
    partitions are rewound to their first fetched record instead, so a record is delivered or read again,
    never skipped."""
    keep_set = set(active) | set(buffered)
    keep = {tp: recs for tp, recs in records.items() if tp in keep_set}
    rewind = {tp: recs[0].offset for tp, recs in records.items() if tp not in keep_set and recs}
    return keep, rewind


class _Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stall_suspects: dict[Any, tuple[int, int]] = {}

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        thread = _ConsumerThread(self, loop=self.loop, beacon=self.beacon)
        thread.fetch_max_wait_ms = self.app.conf.shopstream_fetch_max_wait_ms
        return thread

    async def _getmany(self, active_partitions: set[Any] | None, timeout: float) -> Any:  # noqa: ASYNC109 - Faust's signature
        # Faust hands the client thread its *live* set of active partitions, which the main thread changes
        # while a fetch waits (recovery pauses the changelog partitions before it resumes the stream ones,
        # so the set can be empty, and aiokafka reads an empty filter as "every partition"); records of a
        # partition that is not active when Faust gets to them are dropped although the client's position
        # moved past them. A snapshot (an empty one fetches nothing) and a rewind narrow that hole; Faust's
        # own getmany can still drop records mid-batch (a pause, a rebalance), and the stall guard
        # (`heal_stalled_partitions`) is the backstop that reads them again.
        if active_partitions is None:  # client-only apps: every partition
            return await super()._getmany(None, timeout)
        snapshot = set(active_partitions)
        if not snapshot:
            await asyncio.sleep(min(timeout, 0.1))
            return {}
        records = await super()._getmany(snapshot, timeout)
        keep, rewind = split_fetched(records, active_partitions, self._buffered_partitions)
        if rewind:
            log.info("fetched records of partitions paused meanwhile; read again from %s", rewind)
            await self._thread.seek_wait(rewind)
        return keep


    def _new_offset(self, tp: Any) -> int | None:
        # Faust commits past a head gap of exactly one unacked offset (`min(acked) - committed > 1`), so a
        # single record lost between fetch and stream would be committed past for good. Commit only from
        # the committed offset on (or through a gap Faust recorded, e.g. compacted offsets).
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None and min(acked) > committed and not self._gap[tp]:
            return None
        return super()._new_offset(tp)

    async def heal_stalled_partitions(self) -> dict[Any, int]:
        """Seek back every partition whose commit is stuck behind records read but never handed to a stream.

        A partition is stuck when its next offset to commit was read past (later offsets are acked), no
        message below the first acked one is still being processed, and Faust recorded no gap there — twice
        in a row, one check interval apart. Faust would never deliver those records again: the commit
        would wait at the gap for good while the worker idled (the restarted orders worker, 1 CI run in ~8:
        committed 312, acked 320..595, records 312..318 never applied). Reading again from the committed
        offset delivers them; the records after them come again as duplicates, which every processor's
        state update ignores. Returns what was sought."""
        if self.app.rebalancing or not self.flow_active:
            self._stall_suspects = {}
            return {}
        in_flight = [(m.tp, m.offset) for m in list(self._unacked_messages) if not m.acked]
        suspects = stalled_partitions(
            {tp: self._committed_offset.get(tp) for tp in list(self._acked)},
            {tp: list(offsets) for tp, offsets in list(self._acked.items())},
            {tp for tp, gap in list(self._gap.items()) if gap}, in_flight)
        previous, self._stall_suspects = self._stall_suspects, suspects
        stuck = {tp: at for tp, at in suspects.items() if previous.get(tp) == at}
        for tp, (committed, first_acked) in stuck.items():
            log.error("partition %s: records %d..%d were read but never processed; reading again from %d",
                      tp, committed, first_acked - 1, committed)
            await self.seek(tp, committed)
        return {tp: committed for tp, (committed, _) in stuck.items()}


def stalled_partitions(committed: Mapping[Any, int | None], acked: Mapping[Any, Sequence[int]],
                       gapped: set[Any], in_flight: Iterable[tuple[Any, int]]) -> dict[Any, tuple[int, int]]:
    """{partition: (committed offset, first acked offset)} where the commit waits for records that were
    read past and are not being processed (see `_Consumer.heal_stalled_partitions`)."""
    lowest_in_flight: dict[Any, int] = {}
    for tp, offset in in_flight:
        lowest_in_flight[tp] = min(offset, lowest_in_flight.get(tp, offset))
    stuck: dict[Any, tuple[int, int]] = {}
    for tp, offsets in acked.items():
        at = committed.get(tp)
        if at is None or not offsets or tp in gapped:
            continue
        first = min(offsets)
        if first > at and lowest_in_flight.get(tp, first) >= first:
            stuck[tp] = (at, first)
    return stuck


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class ShopstreamFaustApp(faust.App):
    """faust.App whose Kafka consumer honours KAFKA_FETCH_MAX_WAIT_MS."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def make_faust_app(settings: Settings, name: str, web_port: int | None = None, topology: Topology | None = None,
                   **overrides: Any) -> faust.App:
    """A Faust app named `name` (prefixed), with `/metrics` on its web server.

    `topology` (default: `load_topology_for(settings)`) must declare the app's internal topics (its
    table changelogs); their partitions and replication become Faust's topic defaults.
    """
    topology = topology or load_topology_for(settings)
    internal = topology.internal_topics(name)
    if not internal:
        raise TopologyError(f"{topology.source}: no internal topics declared for Faust app {name!r} "
                            f"(its table changelogs, named `{name}-<table>-changelog`)")
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
        topic_partitions=max(t.partitions for t in internal),
        topic_replication_factor=max(t.replication_factor for t in internal),
        # Faust creates a changelog only when it is missing (started without `topics apply`), with the
        # table's partitions and configs from the topology and this replication: the same topic either way.
        topic_allow_declare=True,
        topic_disable_leader=True,
        # The worker's web server serves /metrics and /readyz only: Faust's /table/ (reads table keys: order
        # data) and /router/ (the cluster's worker URLs) are off, so are its debug statistics and graph;
        # it binds SHOPSTREAM_HTTP_HOST (loopback by default), never all interfaces.
        web_host=settings.http_host,
        web_bind=settings.http_host,
        web_port=web_port or settings.worker_web_port,
        web_in_thread=False,
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        datadir=f"{settings.state_dir}/faust",
        table_cleanup_interval=30.0,
    )
    conf.update(overrides)
    app = ShopstreamFaustApp(settings.topic(name), **conf)
    app.conf.shopstream_fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms

    @app.page("/metrics")  # type: ignore[arg-type]  # Faust's web types wrap aiohttp's
    async def _metrics(_view: Any, request: web.Request) -> web.Response:
        return await metrics_handler(request)

    @app.timer(STALL_CHECK_INTERVAL_S, name="shopstream.stall-guard")
    async def _stall_guard() -> None:
        consumer = app.consumer
        if isinstance(consumer, _Consumer):
            await consumer.heal_stalled_partitions()

    @app.page("/readyz")  # type: ignore[arg-type]
    async def _readyz(_view: Any, _request: web.Request) -> web.Response:
        body, status = faust_readiness(app)
        return web.json_response(body, status=status)

    return app


def faust_readiness(app: faust.App) -> tuple[dict[str, Any], int]:
    """(body, status) of `/readyz`: 200 once the worker holds partitions, its tables are recovered and no
    rebalance is under way; 503 naming what is missing otherwise (e.g. still joining its group)."""
    try:
        assigned = len(app.consumer.assignment())
    except Exception:  # the consumer has not started yet
        assigned = 0
    recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]  # TableManager, not its ABC
    checks = {"assigned_partitions": assigned, "tables_recovered": recovered, "rebalancing": bool(app.rebalancing)}
    ready = assigned > 0 and recovered and not app.rebalancing
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503


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
