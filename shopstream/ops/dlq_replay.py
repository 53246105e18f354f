"""`shopstream dlq replay`: re-send selected dead letters to their original topic (or `--to`), each at
most once per run and recorded on the replay log. What it guarantees: the package docs (`shopstream.ops`).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO

from confluent_kafka import KafkaError, Message, Producer

from shopstream.config import Settings
from shopstream.kafka import make_producer
from shopstream.topology import Topology

from .dlq_common import REPLAY_LOG, now_ms, resolve_dlq, resolve_target, safe_out
from .dlq_filters import (
    Selection,
    UsageError,
    log_key,
    log_value,
    render_bytes,
    replay_headers,
    replay_target,
    skip_reason,
)
from .dlq_scan import TopicMissing, broker_topics, read_log, scan


@dataclass(frozen=True)
class ReplayOptions:
    """What `dlq replay` does; checked on construction (UsageError on a bad combination)."""

    selection: Selection = field(default_factory=Selection)
    to: str | None = None
    dry_run: bool = False
    rate: float | None = None
    limit: int | None = None
    max_replays: int = 3
    force: bool = False

    def __post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise UsageError(f"--rate must be a positive number of records per second, got {self.rate:g}")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {self.limit}")
        if self.max_replays < 1:
            raise UsageError(f"--max-replays must be at least 1, got {self.max_replays}")


@dataclass
class ReplaySummary:
    selected: int = 0
    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    unrecorded: int = 0

    def line(self, dry_run: bool) -> str:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items()))
        skipped = f"skipped {sum(self.skipped.values())}" + (f" ({reasons})" if reasons else "")
        verb = "would send" if dry_run else "sent"
        text = f"selected {self.selected}, {verb} {self.sent}, {skipped}, failed {self.failed}"
        if self.unrecorded:
            text += f", sent but not recorded in the replay log {self.unrecorded}"
        return text + (" (dry run: nothing sent, nothing recorded)" if dry_run else "")


def _deliver(producer: Producer, topic: str, key: bytes | None, value: bytes | None,
             headers: Sequence[tuple[str, bytes | None]], timeout_s: float = 30.0) -> str | None:
    """Write one record and wait for the broker's confirmation; the error text, or None when confirmed."""
    outcome: dict[str, KafkaError | None] = {}
    header_list: list[tuple[str, str | bytes | None]] = list(headers)

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        outcome["err"] = err

    try:
        producer.produce(topic, key=key, value=value, headers=header_list, on_delivery=on_delivery)
    except Exception as exc:  # BufferError (queue full), KafkaException
        return f"{type(exc).__name__}: {exc}"
    deadline = time.monotonic() + timeout_s
    while "err" not in outcome and time.monotonic() < deadline:
        producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
    if "err" not in outcome:
        return f"not confirmed within {timeout_s:.0f}s"
    err = outcome["err"]
    return None if err is None else str(err)


def dlq_replay(settings: Settings, topology: Topology, topic_name: str, options: ReplayOptions, *,
               out: IO[str] | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Re-send selected dead letters (see the package docs for what this guarantees); exit 1 if any failed."""
    out = safe_out(out or sys.stdout)  # what a DLQ holds may carry terminal escape sequences
    prefix = settings.topic_prefix
    topic = resolve_dlq(topology, topic_name, prefix)
    to_topic = resolve_target(topology, options.to, prefix) if options.to else None
    physical = topic.physical_name(prefix)
    log_topic = settings.topic(REPLAY_LOG)
    # Without --to a record goes back only to a topic whose DLQ this is (not wherever its header says).
    sources = frozenset(t for t, dlq in topology.dlq_routes(prefix).items() if dlq == physical)

    # 1. Which topics exist: a record is never sent to a topic the broker would have to invent.
    existing = broker_topics(settings)
    for needed in (physical, log_topic):
        if needed not in existing:
            raise TopicMissing(needed)
    # 2. What was already sent: the replay log, read to the end captured now.
    replayed = read_log(settings, log_topic, key_prefix=f"{physical}:")
    producer = None if options.dry_run else make_producer(settings, **{"linger.ms": 0})
    summary = ReplaySummary()
    interval = 1.0 / options.rate if options.rate else 0.0
    next_at = time.monotonic()
    mode = "dry run: " if options.dry_run else ""
    print(f"{mode}replaying from {physical}" + (f" to {to_topic}" if to_topic else " to each record's original topic"),
          file=out)
    try:
        # 3. The DLQ, read to the end captured now: re-failures of this replay land after it.
        for dl in scan(settings, physical, options.selection):
            if options.limit is not None and summary.sent + summary.failed >= options.limit:
                break
            summary.selected += 1
            reason = skip_reason(dl, to_topic=to_topic, max_replays=options.max_replays, force=options.force,
                                 already_replayed=log_key(dl.topic, dl.partition, dl.offset) in replayed,
                                 sources=sources)
            if reason is not None:
                summary.skipped[reason] += 1
                extra = f" ({dl.replay_count} of --max-replays {options.max_replays})" if "max" in reason else ""
                print(f"skip         {dl.ref}  {reason}{extra}", file=out)
                continue
            target = replay_target(dl, to_topic, sources)
            assert target is not None  # skip_reason returned None
            describe = (f"{dl.ref} -> {target}  key {render_bytes(dl.key)}  replay {dl.replay_count + 1}  "
                        f"{dl.error_class_short} {dl.fingerprint or '-'}")
            if target not in existing:
                summary.failed += 1
                print(f"FAILED       {describe}: topic {target} does not exist on the broker", file=out)
                continue
            if producer is None:
                summary.sent += 1
                print(f"would send   {describe}", file=out)
                continue
            if interval:
                now = time.monotonic()
                if now < next_at:
                    sleep(next_at - now)
                next_at = max(now, next_at) + interval
            at = now_ms()
            error = _deliver(producer, target, dl.key, dl.value, replay_headers(dl, at))
            if error is not None:
                summary.failed += 1
                print(f"FAILED       {describe}: {error}", file=out)
                continue
            summary.sent += 1
            print(f"sent         {describe}", file=out)
            # 4. Recorded only after the broker confirmed the replayed record.
            log_error = _deliver(producer, log_topic, dl.ref.encode(),
                                 log_value(target, at, dl.replay_count + 1, dl.fingerprint), [])
            if log_error is not None:
                summary.unrecorded += 1
                print(f"WARNING      {dl.ref} was sent but not recorded in {log_topic}: {log_error} "
                      "(a rerun would send it again)", file=out)
    finally:
        if producer is not None:
            producer.flush(10)
    print(f"{mode}replay of {physical}: {summary.line(options.dry_run)}", file=out)
    return 1 if summary.failed or summary.unrecorded else 0
