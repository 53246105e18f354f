"""The pure part of the DLQ tool: dead letters as values, selections, time arguments, replay headers.

No Kafka, registry or clock access here (callers pass `now_ms`), so every rule the operator relies on
(what a filter selects, what a replayed record carries, when a record is skipped) is unit-tested
directly in tests/unit/test_dlq_filters.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from shopstream.connectors.payload import MAX_DEPTH, too_deep

#: The DLQ context namespace written by `shopstream.dlq` (kept in sync there; a unit test checks it).
DLQ_PREFIX = "shopstream.dlq."
#: The namespace of the headers a replay adds.
REPLAY_PREFIX = "shopstream.replay."
REPLAY_FROM_TOPIC = REPLAY_PREFIX + "from.topic"
REPLAY_FROM_PARTITION = REPLAY_PREFIX + "from.partition"
REPLAY_FROM_OFFSET = REPLAY_PREFIX + "from.offset"
REPLAY_COUNT = REPLAY_PREFIX + "count"
REPLAY_AT = REPLAY_PREFIX + "at"

#: Skip reasons of `replay` (the summary counts records per reason).
SKIP_NOT_A_TOPIC = "original is not a Kafka topic: `dlq redrive` it, or re-deliver from the source"
SKIP_NOT_A_SOURCE = "original topic is not a source of this DLQ in the topology (give --to to send it anyway)"
SKIP_ALREADY_REPLAYED = "already replayed"
SKIP_MAX_REPLAYS = "max replays reached"

HeaderList = Sequence[tuple[str, bytes | None]]

_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_RELATIVE = re.compile(r"^(?:\d+[smhdw])+$")
_RELATIVE_PART = re.compile(r"(\d+)([smhdw])")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
TIME_FORMAT_HELP = ("ISO-8601 with a zone (2026-11-23T10:00:00Z, 2026-11-23T11:00:00+01:00) "
                    "or an age ago (90m, 2h, 3d, 1d12h; units s m h d w)")


class UsageError(ValueError):
    """A bad or conflicting argument: the CLI prints the message and exits 2."""


# ------------------------------------------------------------------------------------------ records


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def _int(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None


@dataclass(frozen=True)
class DeadLetter:
    """One record of a DLQ topic plus the failure context parsed from its `shopstream.dlq.*` headers.

    Context fields are None when the header is missing or unreadable (a record parked by another tool).
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    original_timestamp_ms: int | None = None
    processor: str | None = None
    processor_version: str | None = None
    stage: str | None = None
    error_class: str | None = None
    error_message: str | None = None
    fingerprint: str | None = None
    attempts: int | None = None
    first_failure_ms: int | None = None
    last_failure_ms: int | None = None
    replay_count: int = 0

    @property
    def ref(self) -> str:
        """`<dlq topic>:<partition>:<offset>`: the record's identity (and its replay-log key)."""
        return log_key(self.topic, self.partition, self.offset)

    @property
    def error_class_short(self) -> str:
        """The class name without its module (`NotAvroFramed`), or `?`."""
        return (self.error_class or "?").rsplit(".", 1)[-1]

    def context(self) -> dict[str, object]:
        """The parsed failure context as a JSON-ready dict."""
        return {
            "original_topic": self.original_topic, "original_partition": self.original_partition,
            "original_offset": self.original_offset, "original_timestamp_ms": self.original_timestamp_ms,
            "processor": self.processor, "processor_version": self.processor_version, "stage": self.stage,
            "error_class": self.error_class, "error_message": self.error_message,
            "fingerprint": self.fingerprint, "attempts": self.attempts,
            "first_failure_ms": self.first_failure_ms, "last_failure_ms": self.last_failure_ms,
            "replay_count": self.replay_count,
        }


def parse_dead_letter(topic: str, partition: int, offset: int, timestamp_ms: int | None, key: bytes | None,
                      value: bytes | None, headers: Iterable[tuple[str, bytes | None]] | None) -> DeadLetter:
    """A `DeadLetter` from the parts of a consumed record (the last header of a name wins)."""
    hs = tuple(headers or ())
    h = dict(hs)

    def ctx(name: str) -> bytes | None:
        return h.get(DLQ_PREFIX + name)

    return DeadLetter(
        topic=topic, partition=partition, offset=offset, timestamp_ms=timestamp_ms, key=key, value=value,
        headers=hs,
        original_topic=_text(ctx("original.topic")),
        original_partition=_int(ctx("original.partition")),
        original_offset=_int(ctx("original.offset")),
        original_timestamp_ms=_int(ctx("original.timestamp")),
        processor=_text(ctx("processor")),
        processor_version=_text(ctx("processor.version")),
        stage=_text(ctx("stage")),
        error_class=_text(ctx("error.class")),
        error_message=_text(ctx("error.message")),
        fingerprint=_text(ctx("error.fingerprint")),
        attempts=_int(ctx("attempts")),
        first_failure_ms=_int(ctx("first.failure")),
        last_failure_ms=_int(ctx("last.failure")),
        replay_count=max(0, _int(h.get(REPLAY_COUNT)) or 0),
    )


def log_key(topic: str, partition: int, offset: int) -> str:
    """The replay-log key of a DLQ record."""
    return f"{topic}:{partition}:{offset}"


# ---------------------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Selection:
    """Which dead letters an operation applies to; every criterion set must hold (AND).

    `since_ms` is inclusive, `until_ms` exclusive (record timestamp, i.e. when it was parked);
    `offset_from`/`offset_to` are both inclusive; `error_class` matches the full class name or a
    dotted suffix of it (`NotAvroFramed`, `serde.NotAvroFramed`); `key` is compared as UTF-8 bytes.
    """

    fingerprint: str | None = None
    error_class: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    offset_from: int | None = None
    offset_to: int | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if self.offset_from is not None and self.offset_from < 0:
            raise UsageError(f"--offset-from must be >= 0, got {self.offset_from}")
        if self.offset_to is not None and self.offset_to < 0:
            raise UsageError(f"--offset-to must be >= 0, got {self.offset_to}")
        if self.offset_from is not None and self.offset_to is not None and self.offset_from > self.offset_to:
            raise UsageError(f"--offset-from {self.offset_from} is after --offset-to {self.offset_to}")
        if self.since_ms is not None and self.until_ms is not None and self.since_ms >= self.until_ms:
            raise UsageError("--since must be before --until")

    def matches(self, dl: DeadLetter) -> bool:
        """True when `dl` satisfies every criterion."""
        if self.fingerprint is not None and dl.fingerprint != self.fingerprint:
            return False
        if self.error_class is not None and not error_class_matches(dl.error_class, self.error_class):
            return False
        if self.since_ms is not None and (dl.timestamp_ms is None or dl.timestamp_ms < self.since_ms):
            return False
        if self.until_ms is not None and (dl.timestamp_ms is None or dl.timestamp_ms >= self.until_ms):
            return False
        if self.offset_from is not None and dl.offset < self.offset_from:
            return False
        if self.offset_to is not None and dl.offset > self.offset_to:
            return False
        return self.key is None or dl.key == self.key.encode("utf-8")


def error_class_matches(actual: str | None, wanted: str) -> bool:
    """`wanted` is the full class name or a dotted suffix of it."""
    if not actual:
        return False
    wanted = wanted.strip()
    return actual == wanted or actual.endswith("." + wanted)


# -------------------------------------------------------------------------------------------- time


def parse_time(text: str, now_ms: int, option: str = "time") -> int:
    """Milliseconds since epoch for an ISO-8601 instant with a zone, or an age such as `90m` ago.

    A time without a zone is refused: guessing UTC or local time at 3 a.m. selects the wrong records.
    Raises UsageError naming `option` and the accepted formats.
    """
    raw = text.strip()
    compact = raw.lower().replace(" ", "")
    if _RELATIVE.match(compact):
        age = sum(int(n) * _UNIT_MS[u] for n, u in _RELATIVE_PART.findall(compact))
        return now_ms - age
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"{option}: cannot read {text!r}; expected {TIME_FORMAT_HELP}") from None
    if parsed.tzinfo is None:
        raise UsageError(f"{option}: {text!r} has no time zone; add Z (UTC) or an offset like +01:00 "
                         f"(expected {TIME_FORMAT_HELP})")
    return int(parsed.timestamp() * 1000)


def iso(ms: int | None) -> str | None:
    """UTC ISO-8601 with milliseconds and a Z, or None."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def age(ms: int | None, now_ms: int) -> str:
    """A short human age (`45s`, `12m`, `3h05m`, `2d04h`), or `-`."""
    if ms is None:
        return "-"
    s = max(0, (now_ms - ms) // 1000)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86_400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"


# ------------------------------------------------------------------------------------------ replay


def is_kafka_topic(name: str | None) -> bool:
    """True when `name` is a legal Kafka topic name (`webhook:shopify` is not: it is a source)."""
    return bool(name) and bool(_KAFKA_TOPIC.match(name or "")) and name not in {".", ".."}


def replay_headers(dl: DeadLetter, now_ms: int) -> list[tuple[str, bytes | None]]:
    """The headers a replayed record carries: its original headers, then where it was replayed from.

    The `shopstream.dlq.*` failure context and any older `shopstream.replay.*` headers are dropped;
    the count is the record's own previous count + 1 (it survives a re-failure, see module docs).
    """
    kept = [(k, v) for k, v in dl.headers if not k.startswith((DLQ_PREFIX, REPLAY_PREFIX))]
    kept += [
        (REPLAY_FROM_TOPIC, dl.topic.encode()),
        (REPLAY_FROM_PARTITION, str(dl.partition).encode()),
        (REPLAY_FROM_OFFSET, str(dl.offset).encode()),
        (REPLAY_COUNT, str(dl.replay_count + 1).encode()),
        (REPLAY_AT, str(now_ms).encode()),
    ]
    return kept


def replay_target(dl: DeadLetter, to_topic: str | None, sources: frozenset[str] | None = None) -> str | None:
    """Where a record goes: `to_topic` if given, else its original topic if that is a Kafka topic and (when
    `sources` is given) one of the topics this DLQ serves: the header is unauthenticated, so it alone must
    not choose where a record is written."""
    if to_topic:
        return to_topic
    if not is_kafka_topic(dl.original_topic):
        return None
    return dl.original_topic if sources is None or dl.original_topic in sources else None


def skip_reason(dl: DeadLetter, *, to_topic: str | None, max_replays: int, force: bool,
                already_replayed: bool, sources: frozenset[str] | None = None) -> str | None:
    """Why `dl` is not replayed (one of the SKIP_* reasons), or None when it is to be sent.

    A record with no allowed topic to go to is skipped even with `--force` (there is nowhere to send
    it); `--force` overrides the two safety stops: already in the replay log, and max replays reached.
    """
    if replay_target(dl, to_topic) is None:
        return SKIP_NOT_A_TOPIC
    if replay_target(dl, to_topic, sources) is None:
        return SKIP_NOT_A_SOURCE
    if force:
        return None
    if already_replayed:
        return SKIP_ALREADY_REPLAYED
    if dl.replay_count >= max_replays:
        return SKIP_MAX_REPLAYS
    return None


def log_value(sent_to: str, at_ms: int, replay_count: int, fingerprint: str | None) -> bytes:
    """The replay-log value of one sent record."""
    return json.dumps({"sent_to": sent_to, "at": iso(at_ms), "replay_count": replay_count,
                       "fingerprint": fingerprint}, sort_keys=True).encode()


# --------------------------------------------------------------------------------------- rendering


def render_bytes(data: bytes | None) -> str:
    """A header value or key for humans: UTF-8 text, else `hex:...`, `null` for None."""
    if data is None:
        return "null"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + data.hex()
    return text if _printable(text) else "hex:" + data.hex()


#: Characters a terminal acts on: C0/C1 controls but newline and tab (ESC starts colour, cursor and title
#: sequences; CSI U+009B too; a bare CR overwrites a line), DEL, and the bidi overrides that reorder text.
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """`text` with every terminal control character written as `\\uXXXX` (valid inside JSON strings too), so
    error text from a sender cannot recolour, move the cursor, retitle the terminal or hide a line."""
    return _TERMINAL_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _printable(text: str) -> bool:
    return all(c.isprintable() or c in "\n\r\t" for c in text)


def plain_value(data: bytes) -> dict[str, object]:
    """The non-Avro view of a value: pretty JSON if it parses, else UTF-8 text, else hex."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"format": "hex", "data": data.hex()}
    try:
        parsed = json.loads(text)
        # A parked hostile body may nest deeper than printing it (json.dumps recurses) could go.
        if not too_deep(parsed, MAX_DEPTH):
            return {"format": "json", "data": parsed}
    except (ValueError, RecursionError):  # not JSON, an integer beyond the int-string limit, deep nesting
        pass
    if _printable(text):
        return {"format": "text", "data": text}
    return {"format": "hex", "data": data.hex()}
