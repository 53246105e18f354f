"""The runner's loop: poll, group by partition, handle, produce + confirm, store, commit (see `shopstream.runner`)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from shopstream.config import Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.halt import EXIT_DELIVERY_FAILED, MustRestart, halt
from shopstream.kafka import DeliveryError, make_consumer, poll_batch
from shopstream.metrics import PROCESSING_SECONDS, RECORDS_IN, RECORDS_OUT, RETRIES, STALLED_PARTITIONS
from shopstream.processing import RetryPolicy, StopRequested, fault_kind, is_transient, park, process_record
from shopstream.runner.api import Effects, Processor, Record
from shopstream.runner.offsets import DoneOffsets, by_partition
from shopstream.runner.producer import ConfirmingProducer, OutRecord
from shopstream.runner.store import BATCH_END, PartitionState, restore
from shopstream.runner.watch import StallWatch, lagging
from shopstream.topology import Topology, load_topology_for

log = logging.getLogger("shopstream.runner")

#: Refusals of the producer itself, not of a record: after a message timeout librdkafka's idempotent
#: producer bumps its epoch, and a broker that mishandles that (Tansu under load, seen here) answers every
#: later write PRODUCER_FENCED. Re-sending through the same producer only burns the retry budget and then
#: fails the DLQ write too (a misleading exit 75), so the runner halts at once (exit 76).
PRODUCER_GONE = frozenset({KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH,
                           KafkaError.UNKNOWN_PRODUCER_ID, KafkaError._FENCED, KafkaError._FATAL})
#: The open work (handled, not yet confirmed) is confirmed once it holds this many records, whatever the
#: interval: a backlog read at full speed must not pile up (and be re-sent whole if the broker refuses one).
MAX_OPEN_RECORDS = 10_000


@dataclass
class Handled:
    """One partition's records of a poll after `handle`: what to confirm, then to acknowledge."""

    partition: int
    state: PartitionState
    records: list[Record] = field(default_factory=list)
    outputs: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    held: set[tuple[str, int]] = field(default_factory=set)  # (topic, offset) whose acknowledgement is deferred
    acks: list[tuple[str, int, int]] = field(default_factory=list)


class Runner:
    """Runs one processor in one thread until `stop` is set; see the package docstring for the rules."""

    def __init__(self, settings: Settings, processor: Processor, *, topology: Topology | None = None,
                 batch_size: int | None = None, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.processor = processor
        self.name = processor.name
        self.topology = topology or load_topology_for(settings)
        self.inputs = {settings.topic(name): name for name in processor.inputs}
        self.changelog = settings.topic(processor.changelog) if processor.changelog else None
        self.atomic_state = bool(getattr(processor, "atomic_state", False))
        self.batch_size = batch_size or processor.batch_size
        self.stop = stop or threading.Event()
        client_id = f"shopstream-{processor.name}"
        self.producer = ConfirmingProducer(settings, **{"client.id": client_id})
        self.consumer: Consumer = make_consumer(settings, processor.name, **{"client.id": client_id})
        self.dlq = DeadLetterWriter(self.producer, getattr(processor, "dlq_name", None) or processor.name,
                                    self.topology.dlq_routes(settings.topic_prefix))
        self.retry = getattr(processor, "retry", None) or RetryPolicy(max_elapsed_s=settings.retry_max_elapsed_s)
        self.batched = bool(getattr(processor, "batched", False))
        if self.batched and self.changelog is not None:
            raise ValueError(f"{self.name}: a batched processor has no state store")
        self.states: dict[int, dict[bytes, Any]] = {}  # partition -> confirmed state (stateful processors)
        self.owned: set[tuple[str, int]] = set()
        self.offsets = DoneOffsets()
        self.commit_interval_s = settings.commit_interval_ms / 1000
        # The work handled since the last commit, per partition: outputs queued, not yet confirmed; the
        # state writes and records waiting for that confirmation (see `_flush`).
        self._open: dict[int, Handled] = {}
        self._open_records = 0
        self._open_failures: int | None = None  # len(producer.failures) when the open work's first output was queued
        self._last_flush = time.monotonic()
        self._physical: dict[str, str] = {}
        self._sent: dict[str, Any] = {}
        self._last_error: str | None = None

    # -- readiness -------------------------------------------------------------------------------

    def readiness(self) -> tuple[dict[str, Any], int]:
        """(body, status) of `/readyz`: ready once partitions are assigned and every one is restored.

        The body names the assigned topic-partitions (`partitions`): with replicas in one group, what each
        one holds is visible without asking the broker (the rolling-restart test reads it)."""
        owned = sorted(self.owned)
        restored = self.changelog is None or all(p in self.states for _, p in owned)
        checks = {"assigned_partitions": len(owned), "state_restored": restored,
                  "partitions": [f"{t}[{p}]" for t, p in owned]}
        ready = bool(self.owned) and restored
        return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        """Subscribe, then poll and process batches until `stop`; commits what is done on the way out."""
        self.consumer.subscribe(list(self.inputs), on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        interval = self.processor.tick_interval_s
        next_tick = time.monotonic() + interval if interval else float("inf")
        watch = StallWatch(self.settings.stall_after_s, time.monotonic())
        try:
            while not self.stop.is_set():
                wait = max(0.0, min(0.5, next_tick - time.monotonic()))
                if watch.polled(self.step(wait), time.monotonic()):
                    self._check_stall()
                if time.monotonic() >= next_tick and interval:
                    self._tick()
                    next_tick = time.monotonic() + interval
            self._flush()
            self._drain()
            self._commit()
        except StopRequested as exc:  # stopped amid a transient fault: the record in hand stays unacknowledged
            log.warning("%s: stopped while retrying %s; it is read again on restart", self.name, exc)
        finally:
            self.consumer.close()  # leaves the group (its revoke callback commits what is done)
            self.producer.close()

    def step(self, timeout_s: float = 0.5) -> int:
        """One poll: handle its records per partition and queue their outputs; once the commit interval
        has passed, confirm everything open, store, commit (`_flush`). Returns how many were read."""
        msgs, self._last_error = poll_batch(self.consumer, self.batch_size, timeout_s, self._last_error)
        if self.batched:
            owned = self.owned
            self.process_batch([m for m in msgs if (m.topic() or "", m.partition() or 0) in owned])
        else:
            self._handle_poll(by_partition(msgs, self.owned))
        if (time.monotonic() - self._last_flush >= self.commit_interval_s
                or self._open_records >= MAX_OPEN_RECORDS):
            self._flush()
        return len(msgs)

    def _handle_poll(self, groups: dict[int, list[Message]]) -> None:
        """Each partition's records of a poll onto its open work (its state sees the writes of earlier polls
        not yet confirmed); their outputs are queued now, so the next stage reads them without waiting
        for the commit."""
        queued: list[OutRecord] = []
        for partition, msgs in groups.items():
            done = self._open.get(partition)
            if done is None:
                stored = self.states.get(partition)
                done = Handled(partition, PartitionState(stored if stored is not None else {}))
            had_records, had_outputs = len(done.records), len(done.outputs)
            self._handle_partition(done, msgs)
            if len(done.records) > had_records:
                self._open[partition] = done
                self._open_records += len(done.records) - had_records
            queued += [(self._topic(name), key, value, None) for name, key, value in done.outputs[had_outputs:]]
        if queued:
            if self._open_failures is None:
                self._open_failures = len(self.producer.failures)
            self._produce(", ".join(str(p) for p in groups), queued)

    def _flush(self) -> None:
        """Confirm the open work (outputs, then changelog), store its states, acknowledge, commit."""
        open_work, self._open = list(self._open.values()), {}
        since, self._open_records, self._open_failures = self._open_failures, 0, None
        self._last_flush = time.monotonic()
        self._process(open_work, since)
        self._commit()

    def process_batch(self, msgs: list[Message]) -> bool:
        """A whole poll through `handle_batch`; False when it was rewound (transient faults outlasted the budget).

        Transient faults re-run the (idempotent) batch in place with backoff; past the budget or on stop
        the batch is rewound (every partition seeked back to its first offset, nothing done, nothing
        parked: the fault was the destination's, not the records'), so the consumer keeps polling and
        stays in its group. Permanent faults of single records come back in `Effects.parked`; any other
        exception is a bug and ends the loop without committing the batch."""
        if not msgs:
            return True
        records = [self._record(m, m.partition() or 0) for m in msgs]
        started, attempt = time.monotonic(), 0
        while True:
            try:
                effects = self.processor.handle_batch(records)
                break
            except MustRestart as exc:
                halt(f"{self.name}: {exc}", exc.exit_code)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                limit = self.retry.max_attempts
                if (self.stop.is_set() or time.monotonic() - started >= self.retry.max_elapsed_s
                        or (limit is not None and attempt >= limit)):
                    log.error("%s: giving up on the batch for now, rewinding: %s: %s", self.name,
                              type(exc).__name__, exc)
                    self._rewind(records)
                    self.stop.wait(self.retry.backoff(attempt))  # a long outage must not be a busy loop
                    return False
                RETRIES.labels(self.name, fault_kind(exc)).inc()
                log.warning("%s: transient fault (%s: %s), retrying the batch", self.name, type(exc).__name__, exc)
                self.stop.wait(self.retry.backoff(attempt))
        for record, error, stage in effects.parked:
            self._park(record, Failure(error=error, stage=stage))
        if effects.outputs:
            self._confirm([], effects.outputs, records, queued=False)
        offsets = self.offsets
        for record in records:
            tp = (record.topic, record.partition)
            offsets.read(tp, record.offset)
            offsets.done(tp, record.offset)
        return True

    def _check_stall(self) -> None:
        """Idle for a while: are records waiting past the position of an owned partition? (runner/watch.py)"""
        owned = sorted(self.owned)
        if not owned:
            return
        try:
            positions = {(tp.topic, tp.partition): tp.offset
                         for tp in self.consumer.position([TopicPartition(t, p) for t, p in owned])}
            bounds = {(t, p): self.consumer.get_watermark_offsets(TopicPartition(t, p), timeout=5, cached=False)
                      for t, p in owned}
            unset = [TopicPartition(t, p) for (t, p), position in positions.items() if position < 0]
            started = {(tp.topic, tp.partition): tp.offset
                       for tp in self.consumer.committed(unset, timeout=5)} if unset else {}
            behind = lagging(positions, bounds, started)
            committed = {(tp.topic, tp.partition): tp.offset for tp in self.consumer.committed(
                [TopicPartition(lag.topic, lag.partition) for lag in behind], timeout=5)} if behind else {}
        except KafkaException as exc:  # the broker is away: the poll's own errors say so
            log.info("%s: stall check skipped: %s", self.name, exc)
            return
        STALLED_PARTITIONS.labels(self.name).set(len(behind))
        if behind:
            log.warning("%s: polls returned nothing for %.0f s while records wait: %s", self.name,
                        self.settings.stall_after_s,
                        "; ".join(f"{lag} committed {committed.get((lag.topic, lag.partition))}" for lag in behind))

    def _rewind(self, records: list[Record]) -> None:
        """Seek every partition of `records` back to its first offset in them (the next poll re-reads)."""
        first: dict[tuple[str, int], int] = {}
        for record in records:
            tp = (record.topic, record.partition)
            first[tp] = min(first.get(tp, record.offset), record.offset)
        for (topic, partition), offset in first.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:  # not ours any more: its new owner starts at the last commit
                log.info("%s: seek %s[%d] skipped: %s", self.name, topic, partition, exc)

    def _handle_partition(self, done: Handled, msgs: list[Message]) -> None:
        """One partition's records of a poll through `handle`, against its state, onto `done`; nothing
        confirmed yet."""
        partition, offsets, started = done.partition, self.offsets, time.monotonic()
        for msg in msgs:
            record = self._record(msg, partition)
            tp = (record.topic, partition)
            offsets.read(tp, record.offset)
            effects = self._handle(record, done.state)
            if effects is None:  # parked (confirmed on its DLQ): done
                offsets.done(tp, record.offset)
                continue
            done.records.append(record)
            done.outputs.extend(effects.outputs)
            if effects.writes:
                done.state.writes.update(effects.writes)
            if effects.pending:
                done.held.add((record.topic, record.offset))
            done.acks.extend(effects.acks)
        if msgs:
            PROCESSING_SECONDS.labels(self.name).observe((time.monotonic() - started) / len(msgs))

    def _process(self, batches: list[Handled], since: int | None) -> None:
        """Confirm handled partitions together (one wait for the outputs, already queued, and one for the
        changelog, however many partitions and polls they hold), then acknowledge their records.
        `since`: the producer's failure count before the first of their outputs was queued."""
        batches = [b for b in batches if b.records]
        if not batches:
            return
        self._confirm([(b.partition, b.state) for b in batches], [o for b in batches for o in b.outputs],
                      [r for b in batches for r in b.records], queued=True, since=since)
        offsets = self.offsets
        for batch in batches:
            for record in batch.records:
                if (record.topic, record.offset) not in batch.held:
                    offsets.done((record.topic, batch.partition), record.offset)
                RECORDS_IN.labels(self.name, record.label, "ok").inc()
            self._acked(batch.acks)

    def _record(self, msg: Message, partition: int) -> Record:
        topic = msg.topic() or ""
        ts_type, ts = msg.timestamp()
        raw = msg.headers() or []
        pairs = raw.items() if isinstance(raw, dict) else raw
        headers = tuple((k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in pairs)
        return Record(topic=topic, label=self.inputs.get(topic, topic), partition=partition, offset=msg.offset() or 0,
                      key=msg.key(), value=msg.value(), headers=headers, timestamp_ms=ts if ts_type else None)

    def _handle(self, record: Record, state: PartitionState) -> Effects | None:
        """The processor's handler under the one retry policy; None when the record was parked instead.

        An output over the producer's `message.max.bytes` is refused by every attempt to produce it: the
        record that made it is parked (stage `produce`, the error naming topic, key and size) with its
        effects, like a record its handler cannot handle, instead of failing the whole batch at produce
        time (a crash loop: the batch is read again after every restart)."""
        result: list[Effects] = []

        def handle() -> None:
            effects = self.processor.handle(record, state)
            for name, key, value in effects.outputs:
                too_large = self.producer.too_large(self._topic(name), key, value)
                if too_large is not None:
                    raise too_large
            result.append(effects)

        outcome = process_record(self._failed(record), handle, self.dlq, self.retry, record.label, self.stop.is_set)
        return result[0] if outcome == "ok" else None

    @staticmethod
    def _failed(record: Record) -> FailedRecord:
        return FailedRecord(topic=record.topic, key=record.key, value=record.value, headers=list(record.headers),
                            partition=record.partition, offset=record.offset, timestamp_ms=record.timestamp_ms)

    def _park(self, record: Record, failure: Failure) -> None:
        """Park on the record's DLQ; returns once confirmed, else halts (exit 75): never acknowledged unparked."""
        park(self._failed(record), failure, self.dlq, self.retry)
        RECORDS_IN.labels(self.name, record.label, "dlq").inc()

    def _topic(self, name: str) -> str:
        physical = self._physical.get(name)
        if physical is None:
            physical = self._physical[name] = self.settings.topic(name)
            self._sent[name] = RECORDS_OUT.labels(self.name, name)
        return physical

    def _confirm(self, parts: list[tuple[int, PartitionState]], outputs: list[tuple[str, bytes | None, bytes]],
                 records: list[Record], *, queued: bool, since: int | None = None) -> None:
        """Produce the outputs (unless `queued` already) and wait for the broker, then the changelog records
        and wait, then store the states (`parts`: partition and its state with the batch's writes; empty for
        a stateless processor).

        A refused changelog record halts at once (exit 76). Refused outputs latch the producer (nothing
        is committed by this process any more) and the batch is re-sent in place under the retry policy
        (the same records: ids are deterministic); past the budget its records are parked (exit 75 if that
        fails too). Either way the state is not stored, and the latch halts the process (exit 76) at the
        next commit, so a restart re-reads from the last commit."""
        pending: list[OutRecord] = [(self._topic(name), key, value, None) for name, key, value in outputs]
        which = ", ".join(str(partition) for partition, _ in parts) or "-"
        started, attempt = time.monotonic(), 0
        while pending:
            if not queued:  # a re-send (after refusals) sends them all again: ids are deterministic
                self._produce(which, pending)
            failures = self._confirmed(since)
            queued, since = False, None
            if not failures:
                break
            attempt += 1
            error = DeliveryError(failures[0][0], failures[0][1])
            fenced = next((err for _, err in failures if err.code() in PRODUCER_GONE), None)
            if fenced is not None:  # re-sending through this producer cannot succeed: a restart gets a new id
                halt(f"{self.name}: the broker no longer accepts this process's producer ({fenced}); "
                     f"stopping without committing partition(s) {which}", EXIT_DELIVERY_FAILED)
            if self.stop.is_set():  # nothing parked on the way out: latched, a restart re-reads it all
                halt(f"{self.name}: stopping with outputs of partition(s) {which} refused: {failures[0][1]}",
                     EXIT_DELIVERY_FAILED)
            if time.monotonic() - started >= self.retry.max_elapsed_s:
                for _, state in parts:
                    state.rollback()
                for record in records:
                    self._park(record, Failure(error=error, stage="retry-exhausted", attempts=attempt))
                self._commit()  # latched: halts here
                return
            RETRIES.labels(self.name, "produce").inc()
            log.warning("broker refused %d output(s) of partition(s) %s (%s); re-sending", len(failures), which,
                        failures[0][1])
            time.sleep(self.retry.backoff(attempt))
        # The changelog only after the outputs were confirmed: it never claims an event whose outputs were lost.
        if self.changelog is not None and any(state.writes for _, state in parts):
            encode, changelog = self.processor.encode_state, self.changelog
            entries: list[OutRecord] = []
            for partition, state in parts:
                if not state.writes:
                    continue
                mine: list[OutRecord] = [(changelog, key, None if value is None else encode(value), partition)
                                         for key, value in state.writes.items()]
                entries += mine
                for _, key, value, _ in mine:
                    too_large = self.producer.too_large(changelog, key, value)
                    if too_large is not None:  # the processor's state layout is at fault, not any one input
                        halt(f"{self.name}: a changelog record of partition {partition} cannot be written "
                             f"({too_large}); the processor must keep its state records smaller",
                             EXIT_DELIVERY_FAILED)
                if self.atomic_state:  # last of its partition, in order: once it is on the log, the batch is
                    entries.append((changelog, BATCH_END, b"", partition))
            self._produce(which, entries)
            failures = self._confirmed()
            if failures:
                halt(f"{self.name}: a changelog record of partition(s) {which} was refused: {failures[0][1]}",
                     EXIT_DELIVERY_FAILED)
        for name, count in Counter(name for name, _, _ in outputs).items():
            self._sent[name].inc(count)
        if self.changelog is not None:
            for partition, state in parts:
                writes = state.writes
                state.commit()
                if writes:
                    self.processor.stored(partition, writes)

    def _produce(self, partitions: str, records: list[OutRecord]) -> None:
        """Queue records; a record the producer refuses at once (not a broker's answer: nothing to wait for or
        retry) halts without committing, the reason named, rather than unwind the loop (exit 1, no reason)."""
        try:
            self.producer.produce(records)
        except DeliveryError as exc:
            halt(f"{self.name}: a record of partition(s) {partitions} cannot be produced: {exc}",
                 EXIT_DELIVERY_FAILED)

    def _confirmed(self, since: int | None = None) -> list[tuple[str, Any]]:
        """Wait for everything queued; the refusals (since the failure count `since`, else since the call).
        Records still in flight are waited for again: librdkafka settles each by `message.timeout.ms`."""
        seen = len(self.producer.failures) if since is None else since
        while True:
            try:
                return self.producer.confirm(since=seen)
            except TimeoutError as exc:
                log.warning("%s: %s; waiting", self.name, exc)

    def _tick(self) -> None:
        """The processor's periodic work over owned state (the open work confirmed first, so the tick sees
        every write); its effects go the way of a batch's."""
        self._flush()
        states: Mapping[int, Mapping[bytes, Any]] = dict(self.states)
        try:
            work = list(self.processor.tick(time.time(), states))
        except Exception:  # a bug in a sweep must not stop consumption; the next tick tries again
            log.exception("%s: tick failed", self.name)
            return
        self._settle(work)

    def _drain(self) -> None:
        """What the processor holds back (deferred acks) settled now: on stop and before a revoke's commit
        (after `_flush`: the open work is confirmed first)."""
        try:
            work = list(self.processor.drain(time.time()))
        except Exception:  # held records stay uncommitted: read again by whoever owns them next
            log.exception("%s: drain failed", self.name)
            return
        self._settle(work)

    def _settle(self, work: list[tuple[int, Effects]]) -> None:
        """Confirm a tick's or a drain's effects (states and outputs) together, then count their acks."""
        parts: dict[int, PartitionState] = {}
        outputs: list[tuple[str, bytes | None, bytes]] = []
        acks: list[tuple[str, int, int]] = []
        for partition, effects in work:
            if self.changelog is not None:
                if partition not in self.states:
                    continue  # revoked meanwhile
                state = parts.setdefault(partition, PartitionState(self.states[partition]))
                for key, value in effects.writes.items():
                    state[key] = value
            outputs += effects.outputs
            acks += effects.acks
        if outputs or parts:
            self._confirm(list(parts.items()), outputs, [], queued=False)
        self._acked(acks)

    def _acked(self, acks: list[tuple[str, int, int]]) -> None:
        """Held records acknowledged by effects the broker just confirmed are done now."""
        for topic, partition, offset in acks:
            self.offsets.done((topic, partition), offset)

    def _commit(self) -> None:
        """Commit the done prefix of every partition (never while the producer is latched: that halts)."""
        if self.producer.latched:
            halt(f"{self.name}: the broker refused a record this process wrote: {self.producer.failures[0][1]}",
                 EXIT_DELIVERY_FAILED)
        positions = self.offsets.positions()
        if not positions:
            return
        try:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()],
                                 asynchronous=False)
        except KafkaException as exc:  # typically a rebalance took the partitions: their owner re-reads
            log.warning("offset commit failed (records will be read again): %s", exc)
            return
        self.offsets.committed(positions)

    # -- rebalance -------------------------------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Restore each new partition's state from its changelog before any of its records is handled."""
        for number in sorted({tp.partition for tp in partitions}):
            if self.changelog is not None and number not in self.states:
                self.states[number] = self._restore(number)
                if self.atomic_state:  # what was restored is whole: later batches build on a marker
                    self.producer.produce([(self.changelog, BATCH_END, b"", number)])
                    failures = self._confirmed()
                    if failures:
                        halt(f"{self.name}: the changelog marker of partition {number} was refused: "
                             f"{failures[0][1]}", EXIT_DELIVERY_FAILED)
                self.processor.restored(number, self.states[number])
        self.owned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("%s: partitions assigned: %s", self.name, sorted(f"{t}[{p}]" for t, p in self.owned))

    def _restore(self, partition: int) -> dict[bytes, Any]:
        assert self.changelog is not None
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return restore(self.settings, self.changelog, partition, self.processor.decode_state,
                               atomic=self.atomic_state)
            except (KafkaException, TimeoutError) as exc:
                attempt += 1
                if time.monotonic() - started >= self.retry.max_elapsed_s:
                    raise
                log.warning("restoring partition %d failed (%s); retrying", partition, exc)
                time.sleep(self.retry.backoff(attempt))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Confirm the open work, settle what is held, commit, drop."""
        self._flush()
        self._drain()
        self._commit()
        self._drop(partitions)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Taken without a revoke: commits would fail; the open work of those partitions is dropped unconfirmed
        (its records are read again by their new owner), then what was owned."""
        log.warning("%s: partitions lost: %s", self.name, [f"{tp.topic}[{tp.partition}]" for tp in partitions])
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for number in {p for _, p in gone}:
            work = self._open.pop(number, None)
            if work is None:
                continue
            self._open_records -= len(work.records)
            # a co-partitioned topic of the same number still owned: its records are read again here
            kept = [r for r in work.records if (r.topic, r.partition) not in gone]
            self.offsets.forget({(r.topic, r.partition) for r in work.records})
            self._rewind(kept)
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self.owned -= gone
        self.offsets.forget(gone)
        still = {p for _, p in self.owned}
        for number in {p for _, p in gone} - still:
            # Stateless processors hear of it too: what they hold for the partition (windows) must go.
            if self.states.pop(number, None) is not None or self.changelog is None:
                self.processor.dropped(number)
