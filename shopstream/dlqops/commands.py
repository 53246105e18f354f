"""`shopstream dlq list|show|replay`: the operations behind the CLI verbs (argument parsing is in cli.py).

Each function prints to `out` and returns the exit code (0 ok, 1 something failed); a bad or
conflicting argument raises `UsageError` (the CLI exits 2). Topic arguments are logical topology
names (`shop.orders.dlq`); the physical name adds SHOPSTREAM_TOPIC_PREFIX.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from confluent_kafka import KafkaError, Message, Producer

from shopstream.config import Settings
from shopstream.kafka import make_producer
from shopstream.metrics import DLQ_BACKLOG
from shopstream.topology import Topic, Topology, names

from .filters import (
    DeadLetter,
    Selection,
    UsageError,
    age,
    iso,
    log_key,
    log_value,
    plain_value,
    render_bytes,
    replay_headers,
    replay_target,
    skip_reason,
)
from .scan import TopicMissing, broker_topics, read_log, scan

#: Logical name of the replay log (topology/topics.yaml).
REPLAY_LOG = names.DLQ_REPLAY_LOG
SHOW_LIMIT = 20
EXAMPLE_CHARS = 100


def now_ms() -> int:
    return int(time.time() * 1000)


def _one_line(text: str | None, limit: int = EXAMPLE_CHARS) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# ----------------------------------------------------------------------------------- topic arguments


def dlq_topics(topology: Topology) -> list[Topic]:
    """The DLQ topics of the topology, in file order."""
    return [t for t in topology.topics if t.kind == "dlq"]


def resolve_dlq(topology: Topology, name: str, prefix: str = "") -> Topic:
    """The DLQ topic named `name` (logical, or physical with the prefix); UsageError otherwise."""
    known = ", ".join(t.name for t in dlq_topics(topology))
    candidates = [name]
    if prefix and name.startswith(prefix):
        candidates.append(name[len(prefix):])
    for candidate in candidates:
        try:
            topic = topology.topic(candidate)
        except KeyError:
            continue
        if topic.kind != "dlq":
            hint = f" (its DLQ is {topic.dlq})" if topic.dlq else ""
            article = "an" if topic.kind[0] in "aeiou" else "a"
            raise UsageError(f"{name} is {article} {topic.kind} topic, not a DLQ{hint}; DLQ topics: {known}")
        return topic
    raise UsageError(f"unknown topic {name!r}; DLQ topics: {known}")


def _replayable(topic: Topic) -> bool:
    """A DLQ, the replay log or a Faust table changelog (internal, read by no processor as input) is no
    replay target: records sent there are parked again or corrupt a table's state."""
    return topic.kind != "dlq" and topic.name != REPLAY_LOG and not (topic.kind == "internal" and not topic.consumed)


def resolve_target(topology: Topology, name: str, prefix: str = "") -> str:
    """The physical name of a `--to` topic: a non-DLQ topic of the topology; UsageError otherwise."""
    candidates = [name] + ([name[len(prefix):]] if prefix and name.startswith(prefix) else [])
    for candidate in candidates:
        try:
            topic = topology.topic(candidate)
        except KeyError:
            continue
        if topic.kind == "dlq" or topic.name == REPLAY_LOG:
            raise UsageError(f"--to {name}: replaying into {topic.name} would only park the records again; "
                             "name the topic a processor reads")
        if not _replayable(topic):
            raise UsageError(f"--to {name}: {topic.name} is a worker's internal topic (a table changelog): "
                             "replayed records would corrupt its state; name the topic a processor reads")
        return topic.physical_name(prefix)
    targets = ", ".join(t.name for t in topology.topics if _replayable(t))
    raise UsageError(f"--to {name}: unknown topic; topics: {targets}")


# ---------------------------------------------------------------------------------------------- list


@dataclass
class _Group:
    count: int = 0
    error_class: str | None = None
    example: str | None = None


@dataclass
class _TopicSummary:
    topic: str
    physical: str
    present: bool = True
    error: str | None = None
    records: int = 0
    oldest_ms: int | None = None
    newest_ms: int | None = None
    by_fingerprint: dict[str, _Group] = field(default_factory=dict)
    by_error_class: dict[str, _Group] = field(default_factory=dict)

    def add(self, dl: DeadLetter) -> None:
        self.records += 1
        if dl.timestamp_ms is not None:
            self.oldest_ms = dl.timestamp_ms if self.oldest_ms is None else min(self.oldest_ms, dl.timestamp_ms)
            self.newest_ms = dl.timestamp_ms if self.newest_ms is None else max(self.newest_ms, dl.timestamp_ms)
        for groups, key in ((self.by_fingerprint, dl.fingerprint or "-"), (self.by_error_class, dl.error_class or "-")):
            group = groups.setdefault(key, _Group(error_class=dl.error_class, example=dl.error_message))
            group.count += 1

    def as_dict(self, now: int) -> dict[str, Any]:
        def groups(items: dict[str, _Group], name: str) -> list[dict[str, Any]]:
            ordered = sorted(items.items(), key=lambda kv: (-kv[1].count, kv[0]))
            out = []
            for key, g in ordered:
                entry: dict[str, Any] = {name: key, "count": g.count}
                if name == "fingerprint":
                    entry["error_class"] = g.error_class
                entry["example_message"] = g.example
                out.append(entry)
            return out

        return {
            "topic": self.topic, "physical_topic": self.physical, "present": self.present, "error": self.error,
            "records": self.records,
            "oldest": iso(self.oldest_ms), "newest": iso(self.newest_ms),
            "oldest_age_s": None if self.oldest_ms is None else max(0, (now - self.oldest_ms) // 1000),
            "newest_age_s": None if self.newest_ms is None else max(0, (now - self.newest_ms) // 1000),
            "by_fingerprint": groups(self.by_fingerprint, "fingerprint"),
            "by_error_class": groups(self.by_error_class, "error_class"),
        }


def dlq_list(settings: Settings, topology: Topology, *, as_json: bool = False, out: IO[str] | None = None) -> int:
    """Every DLQ topic: record count, oldest/newest age, counts per fingerprint and error class.

    Sets the `shopstream_dlq_backlog{dlq_topic}` gauge. Exit 1 if a DLQ topic is missing or unreadable.
    """
    out = out or sys.stdout
    existing = broker_topics(settings)
    summaries: list[_TopicSummary] = []
    for topic in dlq_topics(topology):
        summary = _TopicSummary(topic.name, topic.physical_name(settings.topic_prefix))
        try:
            if summary.physical not in existing:
                raise TopicMissing(summary.physical)
            for dl in scan(settings, summary.physical):
                summary.add(dl)
        except TopicMissing as exc:
            summary.present, summary.error = False, str(exc)
        except Exception as exc:  # ScanError, broker away: report it for this topic and go on
            summary.error = str(exc)
        if summary.present and summary.error is None:
            DLQ_BACKLOG.labels(summary.physical).set(summary.records)
        summaries.append(summary)
    now = now_ms()
    if as_json:
        print(json.dumps({"topics": [s.as_dict(now) for s in summaries],
                          "total_records": sum(s.records for s in summaries)}, indent=2), file=out)
    else:
        width = max([len(s.physical) for s in summaries] + [9])
        print(f"{'DLQ TOPIC':<{width}}  {'RECORDS':>7}  {'OLDEST':>8}  {'NEWEST':>8}", file=out)
        for s in summaries:
            if s.error is not None:
                print(f"{s.physical:<{width}}  {'-':>7}  {'-':>8}  {'-':>8}  ERROR: {s.error}", file=out)
                continue
            print(f"{s.physical:<{width}}  {s.records:>7}  {age(s.oldest_ms, now):>8}  {age(s.newest_ms, now):>8}",
                  file=out)
            if not s.records:
                continue
            print("    by error class:", file=out)
            for key, g in sorted(s.by_error_class.items(), key=lambda kv: (-kv[1].count, kv[0])):
                print(f"    {g.count:>7}  {key}  e.g. \"{_one_line(g.example)}\"", file=out)
            print("    by fingerprint:", file=out)
            for key, g in sorted(s.by_fingerprint.items(), key=lambda kv: (-kv[1].count, kv[0])):
                short = (g.error_class or "?").rsplit(".", 1)[-1]
                print(f"    {g.count:>7}  {key}  {short}  e.g. \"{_one_line(g.example)}\"", file=out)
        total = sum(s.records for s in summaries)
        print(f"{len(summaries)} DLQ topics, {total} records", file=out)
    return 1 if any(s.error for s in summaries) else 0


# ---------------------------------------------------------------------------------------------- show


class ValueDecoder:
    """The decoded view of a value: Avro through the registry when Confluent-framed, else plain."""

    def __init__(self, registry_url: str) -> None:
        self._url = registry_url
        self._serde: Any = None

    def decode(self, value: bytes | None) -> dict[str, Any]:
        if value is None:
            return {"format": "null", "data": None}
        if len(value) >= 5 and value[0] == 0:
            schema_id = int.from_bytes(value[1:5], "big")
            note = self._avro(value, schema_id)
            if "data" in note:
                return note
            plain = plain_value(value)
            plain["note"] = note["note"]
            return plain
        return plain_value(value)

    def _avro(self, value: bytes, schema_id: int) -> dict[str, Any]:
        if not self._url:
            return {"note": f"Confluent-framed (schema id {schema_id}); SCHEMA_REGISTRY_URL is not set"}
        from shopstream.serde import AvroSerde, RegistryUnavailable, SerdeError, make_registry_client

        if self._serde is None:
            self._serde = AvroSerde(make_registry_client(self._url))
        try:
            model = self._serde.decode(value)
        except (SerdeError, RegistryUnavailable) as exc:
            return {"note": f"Confluent-framed (schema id {schema_id}) but not decodable: {exc}"}
        return {"format": "avro", "schema_id": schema_id, "record": getattr(model, "AVRO_NAME", type(model).__name__),
                "data": model.model_dump(mode="json")}


def _record_view(dl: DeadLetter, decoder: ValueDecoder) -> dict[str, Any]:
    return {
        "topic": dl.topic, "partition": dl.partition, "offset": dl.offset,
        "timestamp": iso(dl.timestamp_ms), "timestamp_ms": dl.timestamp_ms,
        "key": render_bytes(dl.key) if dl.key is not None else None,
        "headers": [[k, render_bytes(v)] for k, v in dl.headers],
        "context": dl.context(),
        "value": decoder.decode(dl.value),
    }


def _print_record(view: dict[str, Any], now: int, out: IO[str]) -> None:
    ctx = view["context"]
    print(f"== {view['topic']}  partition {view['partition']}  offset {view['offset']}  "
          f"parked {view['timestamp']} ({age(view['timestamp_ms'], now)} ago)", file=out)
    print(f"original     {ctx['original_topic']} [{ctx['original_partition']}] @ {ctx['original_offset']}, "
          f"{iso(ctx['original_timestamp_ms'])}", file=out)
    print(f"processor    {ctx['processor']} ({ctx['processor_version']}), stage {ctx['stage']}, "
          f"attempts {ctx['attempts']}", file=out)
    print(f"error        {ctx['error_class']}: {_one_line(ctx['error_message'], 300)}", file=out)
    print(f"fingerprint  {ctx['fingerprint']}", file=out)
    print(f"failures     first {iso(ctx['first_failure_ms'])}, last {iso(ctx['last_failure_ms'])}", file=out)
    print(f"replays      {ctx['replay_count']}", file=out)
    print(f"key          {view['key'] if view['key'] is not None else 'null'}", file=out)
    print("headers", file=out)
    for k, v in view["headers"]:
        lines = str(v).splitlines() or [""]
        print(f"  {k}: {lines[0]}", file=out)
        for line in lines[1:]:
            print(f"      {line}", file=out)
    value = view["value"]
    title = {"avro": f"avro {value.get('record')} (schema id {value.get('schema_id')})", "json": "JSON (UTF-8)",
             "text": "text (UTF-8)", "hex": "hex (not UTF-8)", "null": "null"}[value["format"]]
    print(f"value        {title}", file=out)
    if value.get("note"):
        print(f"  note: {value['note']}", file=out)
    data = value["data"]
    if value["format"] in ("avro", "json"):
        body = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    else:
        body = "null" if data is None else str(data)
    for line in body.splitlines():
        print(f"  {line}", file=out)
    print(file=out)


def dlq_show(settings: Settings, topology: Topology, topic_name: str, *, offset: int | None = None,
             fingerprint: str | None = None, since_ms: int | None = None, until_ms: int | None = None,
             limit: int = SHOW_LIMIT, as_json: bool = False, out: IO[str] | None = None) -> int:
    """The decoded view of the records of one DLQ (all, one offset, one fingerprint or a time window)."""
    out = out or sys.stdout
    if offset is not None and (fingerprint is not None or since_ms is not None or until_ms is not None):
        raise UsageError("--offset selects one record: it cannot be combined with --fingerprint, --since or --until")
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    topic = resolve_dlq(topology, topic_name, settings.topic_prefix)
    selection = Selection(fingerprint=fingerprint, since_ms=since_ms, until_ms=until_ms,
                          offset_from=offset, offset_to=offset)
    physical = topic.physical_name(settings.topic_prefix)
    if physical not in broker_topics(settings):
        raise TopicMissing(physical)
    decoder = ValueDecoder(settings.schema_registry_url)
    views: list[dict[str, Any]] = []
    more = False
    for dl in scan(settings, physical, selection):
        if len(views) == limit:
            more = True
            break
        views.append(_record_view(dl, decoder))
    now = now_ms()
    if as_json:
        print(json.dumps({"topic": topic.name, "physical_topic": physical, "records": views,
                          "truncated": more}, indent=2, ensure_ascii=False), file=out)
        return 0
    for view in views:
        _print_record(view, now, out)
    tail = f" (limit {limit} reached: narrow the selection or raise --limit)" if more else ""
    print(f"{len(views)} record(s) shown from {physical}{tail}", file=out)
    return 0


# -------------------------------------------------------------------------------------------- replay


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
    out = out or sys.stdout
    prefix = settings.topic_prefix
    topic = resolve_dlq(topology, topic_name, prefix)
    to_topic = resolve_target(topology, options.to, prefix) if options.to else None
    physical = topic.physical_name(prefix)
    log_topic = settings.topic(REPLAY_LOG)

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
                                 already_replayed=log_key(dl.topic, dl.partition, dl.offset) in replayed)
            if reason is not None:
                summary.skipped[reason] += 1
                extra = f" ({dl.replay_count} of --max-replays {options.max_replays})" if "max" in reason else ""
                print(f"skip         {dl.ref}  {reason}{extra}", file=out)
                continue
            target = replay_target(dl, to_topic)
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
