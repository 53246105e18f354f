"""Review worker (`shopstream worker review`): shop.orders -> verdicts (review.decisions), work items (review.queue).

The lists' edits made through the API (`list_store`) are applied over the list files every few seconds
(the runner's `tick`). It also reads `payments` for the provider's risk level of an authorisation
(fact `risk_level`, Stripe Radar's `outcome.risk_level`); every other payment event is skipped.

A processor on the shared runner (`shopstream.runner`, consumer group `review`): all deciding is the
pure core's (`velocity.step` over `rules.RuleSet`, records from `records.outputs`). Per record,
`ReviewProcessor.handle` decodes an OrderPlaced / OrderUpdated (OrderCancelled is skipped; anything
undecodable or foreign on `shop.orders` is parked by the runner on `shop.orders.dlq`, processor
`review`; an undecodable payment is the orders worker's to park, not a second time here), steps the
core and returns the changed verdicts' records keyed by order id; the runner confirms them before it
commits. A transient fault (registry away) is retried in place by the one retry policy; a record the
core fails on (a bug) is parked (stage `process`).

Velocity state survives a SIGKILL without a store of its own, by decision (docs/decisions/0001-runner.md):
it is a deterministic function of the order events and spans every partition (an email's orders live
on many), which the runner's per-partition changelogged store does not model, so at start `replay`
reads `shop.orders` and `payments` from the start up to the group's committed offsets into a fresh
state, emitting nothing (the replay also restores which verdict was last sent per order), before the
runner subscribes. Records after the commit are decided again and re-emit records with the same
derived ids, which the orders worker and the work-queue view treat as duplicates. Run one instance:
a second one in the group would see only its partitions' orders.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import redis
from confluent_kafka import TopicPartition

from shopstream.config import Settings
from shopstream.kafka import make_consumer
from shopstream.metrics import RECORDS_IN
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.runner.api import Position
from shopstream.schemas.models import OrderCancelled, OrderPlaced, OrderUpdated, PaymentAuthorized
from shopstream.serde import AvroSerde, SerdeError, make_registry_client
from shopstream.topology import names

from .evaluate import Verdict
from .list_store import read_changes
from .records import outputs
from .rules import RuleSet, load_rules, with_list_changes
from .velocity import ReviewState, step, step_risk

PROCESSOR = "review"
GROUP_ID = "review"
log = logging.getLogger(__name__)


class ReplayIncomplete(Exception):
    """The replay did not reach the committed offsets in time: starting would decide on a partial state."""


Event: TypeAlias = OrderPlaced | OrderUpdated | PaymentAuthorized


class ReviewProcessor(ProcessorBase):
    """The review rules on the runner: one record at a time against the velocity state (build with `create`)."""

    name = PROCESSOR
    inputs: tuple[str, ...] = (names.SHOP_ORDERS, names.PAYMENTS)

    def __init__(self, settings: Settings, rules: RuleSet, *, lists_every_s: float = 5.0) -> None:
        self.settings = settings
        self.file_rules = rules
        self.rules = rules
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.tick_interval_s = lists_every_s
        self.state = ReviewState()
        self.input = settings.topic(names.SHOP_ORDERS)
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        # The verdicts of the last record stepped: a retry of that record (registry away while encoding)
        # must reuse them, since stepping twice would count it twice and `decide` would call them unchanged.
        self._stepped: tuple[Position, list[Verdict]] | None = None

    def decode(self, topic: str, value: bytes | None) -> Event | None:
        """The event of a record the review uses; None for one it skips; SerdeError for a foreign one."""
        event = self.serde.decode(value)
        if topic == self.input:
            if isinstance(event, OrderPlaced | OrderUpdated):
                return event
            if isinstance(event, OrderCancelled):
                return None
            raise SerdeError(f"{type(event).__name__} does not belong on {names.SHOP_ORDERS}")
        return event if isinstance(event, PaymentAuthorized) and event.risk_level else None

    def apply(self, event: Event) -> list[Verdict]:
        """The verdicts that changed with one event (the pure core's `step` / `step_risk`)."""
        if isinstance(event, PaymentAuthorized):
            assert event.risk_level is not None
            return step_risk(self.state, self.rules, event.order_id, event.risk_level)
        return step(self.state, self.rules, event)

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Decide one record: the records of the verdicts it changed (raises to park or retry)."""
        try:
            event = self.decode(record.topic, record.value)
        except SerdeError:
            if record.topic == self.input:
                raise  # parked by the runner
            return Effects()  # a poison payment is the orders worker's to park
        if event is None:
            RECORDS_IN.labels(PROCESSOR, record.label, "ignored").inc()
            return Effects()
        position = (record.topic, record.partition, record.offset)
        if self._stepped is not None and self._stepped[0] == position:
            verdicts = self._stepped[1]
        else:
            verdicts = self.apply(event)
            self._stepped = (position, verdicts)
        topic = self.settings.topic
        return Effects([(name, verdict.order_id.encode(), self.serde.encode(topic(name), out))
                        for verdict in verdicts for name, out in outputs(verdict, event.meta.recorded_at)])

    def tick(self, now: float, states: Mapping[int, Mapping[bytes, Any]]) -> Iterable[tuple[int, Effects]]:
        """Apply the lists' API edits (Redis away: the last ones stay)."""
        self.refresh_lists()
        return ()

    def refresh_lists(self) -> None:
        """Re-read the lists' API edits over the list files."""
        try:
            changes = read_changes(self.redis, self.settings.redis_key_prefix, sorted(self.file_rules.lists))
        except redis.RedisError as exc:
            log.warning("review lists not refreshed (%s): the last ones stay", exc)
            return
        self.rules = with_list_changes(self.file_rules, changes)

    def replay(self, timeout_s: float = 120.0) -> int:
        """Rebuild the state from the inputs up to the group's committed offsets (emitting nothing)."""
        settings = self.settings
        consumer = make_consumer(settings, GROUP_ID)  # asks for the group's offsets; never joins it
        try:
            tps = []
            for topic in (settings.topic(name) for name in self.inputs):
                found = consumer.list_topics(topic, timeout=30).topics.get(topic)
                tps += [TopicPartition(topic, p) for p in sorted(found.partitions)] if found is not None else []
            committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(tps, timeout=30)
                         if tp.offset >= 0}
        finally:
            consumer.close()
        if not committed:
            return 0
        reader = make_consumer(settings, f"{GROUP_ID}.replay")
        reader.assign([TopicPartition(t, p, 0) for t, p in committed])
        remaining, count, deadline = dict(committed), 0, time.monotonic() + timeout_s
        try:
            while remaining and time.monotonic() < deadline:
                for msg in reader.consume(500, 0.5):
                    where, offset = (msg.topic() or "", msg.partition() or 0), msg.offset() or 0
                    if msg.error() or where not in remaining or offset >= remaining[where]:
                        continue
                    if offset + 1 >= remaining[where]:
                        remaining.pop(where)
                    try:
                        event = self.decode(where[0], msg.value())
                    except SerdeError:
                        continue  # parked the first time round
                    if event is not None:
                        self.apply(event)
                        count += 1
        finally:
            reader.close()
        if remaining:
            raise ReplayIncomplete(f"replay did not reach the committed offsets of {sorted(remaining)}")
        log.info("review state rebuilt from %d order events (%d orders in the window)", count, len(self.state.facts))
        return count

    def close(self) -> None:
        """Free the Redis client."""
        self.redis.close()


def run_review(settings: Settings, stop: threading.Event | None = None, *, metrics_port: int | None = None) -> None:
    """Replay, then run the review on the runner until `stop` (or SIGTERM/SIGINT); rules from SHOPSTREAM_REVIEW_RULES.

    `metrics_port`: the admin port (`/metrics`, `/readyz`, `/healthz`); None or 0: none."""
    rules = load_rules(settings.review_rules or None)
    processor = ReviewProcessor(settings, rules)
    log.info("review worker started: rules %s from %s", rules.version, rules.source)
    try:
        processor.refresh_lists()
        processor.replay()
        run_processor(settings, processor, web_port=metrics_port or 0, stop=stop)
    finally:
        processor.close()
