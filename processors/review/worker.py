"""Review worker (`shopstream worker review`): shop.orders -> verdicts (review.decisions), work items (review.queue).

The lists' edits made through the API (`list_store`) are applied over the list files every few seconds.
It also reads `payments` for the provider's risk level of an authorisation (fact `risk_level`, Stripe
Radar's `outcome.risk_level`); every other payment event is skipped.

A thin confluent-kafka adapter in the style of `shop_sync_worker` (to move onto the shared runner):
all deciding is the pure core's (`velocity.step` over `rules.RuleSet`, records from `records.outputs`).

Loop (one thread, consumer group `review`):
1. poll a batch of `shop.orders`; decode each OrderPlaced / OrderUpdated (OrderCancelled is skipped,
   anything undecodable or foreign goes to `shop.orders.dlq`, processor `review`);
2. `step` each event: the verdicts that changed — the event's order and the ones a late event touched;
3. publish every verdict's records keyed by order id and wait until the broker confirmed all of them;
4. commit the batch. A record whose outputs were not confirmed stops the worker without committing
   (exit 1); a restart resumes from the last commit. A record the core fails on (a bug) is parked on
   `shop.orders.dlq` (stage `process`); a transient fault (registry away) stops the worker without
   committing, for its supervisor to restart (the shared runner will retry in place instead).

Velocity state survives a SIGKILL without a store of its own: it is a deterministic function of the
order events, so at start the worker replays `shop.orders` from the start of the topic up to the
group's committed offsets into a fresh state, emitting nothing (the replay also restores which
verdict was last sent per order), then consumes from the committed offsets. Records after the commit
are decided again and re-emit records with the same derived ids, which the orders worker and the
work-queue view treat as duplicates. The state spans every partition (an email's orders live on many),
so run one instance: a second one in the group would see only its partitions' orders.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from typing import Any

import redis
from confluent_kafka import KafkaError, Message, TopicPartition

from shopstream.config import Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.kafka import AsyncProducer, make_consumer, make_producer, poll_batch
from shopstream.metrics import RECORDS_IN, RECORDS_OUT
from shopstream.processing import is_transient
from shopstream.schemas.models import OrderCancelled, OrderPlaced, OrderUpdated, PaymentAuthorized
from shopstream.serde import AvroSerde, SerdeError, make_registry_client
from shopstream.topology import load_topology_for, names

from .evaluate import Verdict
from .list_store import read_changes
from .records import outputs
from .rules import RuleSet, load_rules, with_list_changes
from .velocity import ReviewState, step, step_risk

PROCESSOR = "review"
GROUP_ID = "review"
log = logging.getLogger(__name__)


class NotConfirmed(Exception):
    """The broker did not confirm a verdict's records: stop without committing."""


class ReviewWorker:
    """The loop around the pure review core (build with `create`)."""

    def __init__(self, settings: Settings, rules: RuleSet, *, stop: threading.Event | None = None,
                 lists_every_s: float = 5.0) -> None:
        self.settings = settings
        self.file_rules = rules
        self.rules = rules
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.lists_every_s = lists_every_s
        self._lists_at = -math.inf
        self.state = ReviewState()
        self.stop = stop or threading.Event()
        self.input = settings.topic(names.SHOP_ORDERS)
        self.inputs = [self.input, settings.topic(names.PAYMENTS)]
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        self.consumer = make_consumer(settings, GROUP_ID)
        self.producer = make_producer(settings)
        self._dlq_producer = AsyncProducer(settings)
        self.dlq = DeadLetterWriter(self._dlq_producer, PROCESSOR, load_topology_for(settings).dlq_routes(
            settings.topic_prefix))
        self._loop = asyncio.new_event_loop()
        self._last_error: str | None = None

    def decode(self, msg: Message) -> OrderPlaced | OrderUpdated | PaymentAuthorized | None:
        """The event of a record the review uses; None for one it skips; SerdeError for a foreign one."""
        event = self.serde.decode(msg.value())
        if msg.topic() == self.input:
            if isinstance(event, OrderPlaced | OrderUpdated):
                return event
            if isinstance(event, OrderCancelled):
                return None
            raise SerdeError(f"{type(event).__name__} does not belong on {names.SHOP_ORDERS}")
        return event if isinstance(event, PaymentAuthorized) and event.risk_level else None

    def apply(self, event: OrderPlaced | OrderUpdated | PaymentAuthorized) -> list[Verdict]:
        """The verdicts that changed with one event (the pure core's `step` / `step_risk`)."""
        if isinstance(event, PaymentAuthorized):
            assert event.risk_level is not None
            return step_risk(self.state, self.rules, event.order_id, event.risk_level)
        return step(self.state, self.rules, event)

    def refresh_lists(self) -> None:
        """Apply the lists' API edits (re-read every `lists_every_s`; Redis away: the last ones stay)."""
        if time.monotonic() - self._lists_at < self.lists_every_s:
            return
        self._lists_at = time.monotonic()
        try:
            changes = read_changes(self.redis, self.settings.redis_key_prefix, sorted(self.file_rules.lists))
        except redis.RedisError as exc:
            log.warning("review lists not refreshed (%s): the last ones stay", exc)
            return
        self.rules = with_list_changes(self.file_rules, changes)

    def replay(self, timeout_s: float = 120.0) -> int:
        """Rebuild the state from the input up to the group's committed offsets (emitting nothing)."""
        tps = []
        for topic in self.inputs:
            found = self.consumer.list_topics(topic, timeout=30).topics.get(topic)
            tps += [TopicPartition(topic, p) for p in sorted(found.partitions)] if found is not None else []
        committed = {(tp.topic, tp.partition): tp.offset for tp in self.consumer.committed(tps, timeout=30)
                     if tp.offset >= 0}
        if not committed:
            return 0
        reader = make_consumer(self.settings, f"{GROUP_ID}.replay")
        reader.assign([TopicPartition(t, p, 0) for t, p in committed])
        remaining, count, deadline = dict(committed), 0, time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for msg in reader.consume(500, 0.5):
                where, offset = (msg.topic() or "", msg.partition() or 0), msg.offset() or 0
                if msg.error() or where not in remaining or offset >= remaining[where]:
                    continue
                if offset + 1 >= remaining[where]:
                    remaining.pop(where)
                try:
                    event = self.decode(msg)
                except SerdeError:
                    continue  # parked the first time round
                if event is not None:
                    self.apply(event)
                    count += 1
        reader.close()
        if remaining:
            raise NotConfirmed(f"replay did not reach the committed offsets of {sorted(remaining)}")
        log.info("review state rebuilt from %d order events (%d orders in the window)", count, len(self.state.facts))
        return count

    def handle(self, records: list[Message]) -> int:
        """Decide a batch, publish what changed, wait for the broker; the number of records published."""
        errors: list[KafkaError] = []
        sent = 0
        for msg in records:
            try:
                event = self.decode(msg)
            except SerdeError as exc:
                if msg.topic() == self.input:
                    self._park(msg, exc)  # a poison payment is the orders worker's to park, not a second time here
                continue
            label = names.SHOP_ORDERS if msg.topic() == self.input else names.PAYMENTS
            if event is None:
                RECORDS_IN.labels(PROCESSOR, label, "ignored").inc()
                continue
            try:
                out = [(topic, verdict.order_id, self.serde.encode(self.settings.topic(topic), record))
                       for verdict in self.apply(event) for topic, record in outputs(verdict, event.meta.recorded_at)]
            except Exception as exc:
                if is_transient(exc):
                    raise  # registry away: stop without committing; the restart (later: the runner) retries
                self._park(msg, exc, "process")  # a bug on one record must not block its partition
                continue
            for topic, key, value in out:
                self.producer.produce(self.settings.topic(topic), key=key.encode(), value=value,
                                      on_delivery=lambda err, _m: errors.append(err) if err else None)
                RECORDS_OUT.labels(PROCESSOR, topic).inc()
                sent += 1
            RECORDS_IN.labels(PROCESSOR, label, "ok").inc()
        if self.producer.flush(60) or errors:
            raise NotConfirmed(f"{len(errors)} verdict record(s) not confirmed: {errors[:1]}")
        return sent

    def _park(self, msg: Message, exc: Exception, stage: str = "deserialize") -> None:
        record = FailedRecord(topic=msg.topic() or "", key=msg.key(), value=msg.value(),
                              partition=msg.partition() or 0, offset=msg.offset() or 0)
        self._loop.run_until_complete(self.dlq.park(record, Failure(error=exc, stage=stage)))
        RECORDS_IN.labels(PROCESSOR, names.SHOP_ORDERS, "dlq").inc()

    def run(self) -> None:
        """Replay, then poll, decide, publish and commit until `stop` is set."""
        self.refresh_lists()
        self.replay()
        self.consumer.subscribe(self.inputs)
        while not self.stop.is_set():
            self.refresh_lists()
            records, self._last_error = poll_batch(self.consumer, 500, 0.5, self._last_error)
            if not records:
                continue
            self.handle(records)
            self.consumer.commit(asynchronous=False, offsets=_next_offsets(records))

    def close(self) -> None:
        """Leave the group and free the clients."""
        self.consumer.close()
        self.producer.flush(10)
        self._dlq_producer.close()
        self._loop.close()
        self.redis.close()


def _next_offsets(records: list[Message]) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for msg in records:
        key = (msg.topic() or "", msg.partition() or 0)
        last[key] = max(last.get(key, -1), msg.offset() or 0)
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


def run_review(settings: Settings, stop: threading.Event | None = None, *, metrics_port: int | None = None) -> Any:
    """Run the review worker until `stop` (or SIGTERM/SIGINT); rules from SHOPSTREAM_REVIEW_RULES."""
    import signal

    from prometheus_client import start_http_server

    rules = load_rules(settings.review_rules or None)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    server = start_http_server(metrics_port, addr=settings.http_host)[0] if metrics_port else None
    worker = ReviewWorker(settings, rules, stop=stop)
    log.info("review worker started: rules %s from %s", rules.version, rules.source)
    try:
        worker.run()
    finally:
        worker.close()
        if server is not None:
            server.shutdown()
