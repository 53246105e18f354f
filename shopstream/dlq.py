"""The one dead-letter writer: every connector, processor and sink parks what it cannot handle here.

A DLQ record keeps the original key, value bytes and headers untouched and adds context headers
in one namespace, `shopstream.dlq.*` (modelled on Kafka Connect's `__connect.errors.*` and
Spring's `kafka_dlt-*`):

- `shopstream.dlq.original.topic`, `.original.partition`, `.original.offset`, `.original.timestamp`:
  where the record was read (timestamp in ms since epoch). A connector writes the source
  (`webhook:shopify`) as topic and -1 as partition and offset.
- `shopstream.dlq.original.key`: the original key (also the DLQ record's key).
- `shopstream.dlq.processor`, `.processor.version`: consumer group or service, and shopstream's version.
- `shopstream.dlq.stage`: `connector`, `deserialize`, `process`, `produce` (an output the record produced
  can never be written: over the producer's `message.max.bytes`), `retry-exhausted` or `sink`.
- `shopstream.dlq.error.class`, `.error.message` (≤ 2 KiB), `.error.stacktrace` (≤ 8 KiB), both with
  customer PII masked (`shopstream.redact`); the record itself is kept as it was.
- `shopstream.dlq.error.fingerprint`: stable id of error class + raising code location, for grouping.
- `shopstream.dlq.attempts`: how many times handling was tried.
- `shopstream.dlq.first.failure`, `.last.failure`: ms since epoch.

Where a record goes is the topology's decision, made in one place: the writer is given
`Topology.dlq_routes(prefix)` (physical topic -> physical DLQ, from each topic's `dlq` entry; `dlq: auto`
names `<topic>.dlq`), and a topic without a DLQ in the topology cannot be parked silently somewhere
invented. Connectors name their target explicitly: `connectors.dlq` (`CONNECTORS_DLQ`), the one DLQ
that no topic owns.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from shopstream.kafka import Headers, Publisher
from shopstream.metrics import DLQ_WRITES
from shopstream.redact import mask

PREFIX = "shopstream.dlq."
MAX_MESSAGE = 2048
MAX_STACK = 8192
log = logging.getLogger("shopstream.dlq")

try:
    SHOPSTREAM_VERSION = version("shopstream")
except PackageNotFoundError:  # running from a source tree without install
    SHOPSTREAM_VERSION = "0+unknown"


@dataclass(frozen=True)
class FailedRecord:
    """What was read (or received) and could not be handled."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    partition: int = -1
    offset: int = -1
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class Failure:
    """Why it failed: the exception plus how often and since when."""

    error: BaseException
    stage: str
    attempts: int = 1
    first_failure_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def fingerprint(error: BaseException) -> str:
    """A stable 12-hex id of the error class and the innermost code location that raised it."""
    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ else []
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].name}" if frames else "-"
    basis = f"{type(error).__module__}.{type(error).__qualname__}@{where}"
    return hashlib.sha1(basis.encode()).hexdigest()[:12]


def _bounded(text: str, limit: int) -> bytes:
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data
    # Cut on a character boundary: a header that is not valid UTF-8 breaks readers decoding it.
    return data[: limit - 3].decode("utf-8", "ignore").encode("utf-8") + b"..."


def context_headers(record: FailedRecord, failure: Failure, processor: str) -> list[tuple[str, bytes]]:
    """The original headers (minus an older DLQ context) followed by this failure's context."""
    err = failure.error
    stack = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    now_ms = int(time.time() * 1000)
    ctx = {
        "original.topic": record.topic,
        "original.partition": str(record.partition),
        "original.offset": str(record.offset),
        "original.timestamp": str(record.timestamp_ms if record.timestamp_ms is not None else now_ms),
        "processor": processor,
        "processor.version": SHOPSTREAM_VERSION,
        "stage": failure.stage,
        "error.class": f"{type(err).__module__}.{type(err).__qualname__}",
        "error.fingerprint": fingerprint(err),
        "attempts": str(failure.attempts),
        "first.failure": str(failure.first_failure_ms),
        "last.failure": str(now_ms),
    }
    headers = [(k, v) for k, v in record.headers if not k.startswith(PREFIX)]
    headers += [(PREFIX + k, v.encode()) for k, v in ctx.items()]
    headers.append((PREFIX + "original.key", record.key or b""))
    headers.append((PREFIX + "error.message", _bounded(mask(str(err)), MAX_MESSAGE)))
    headers.append((PREFIX + "error.stacktrace", _bounded(mask(stack), MAX_STACK)))
    return headers


def header_map(headers: Headers | None) -> dict[str, bytes]:
    """Headers as a dict (last value wins), for reading DLQ context back."""
    return {k: v for k, v in (headers or [])}


class NoDeadLetterTopic(LookupError):
    """A record's topic has no DLQ in the topology (declare `dlq: auto` on it)."""


class DeadLetterWriter:
    """Parks failed records on their DLQ topic and returns once the broker confirmed the write.

    `routes`: physical topic -> physical DLQ topic, i.e. `Topology.dlq_routes(settings.topic_prefix)`.
    """

    def __init__(self, publisher: Publisher, processor: str, routes: Mapping[str, str]) -> None:
        self._publisher = publisher
        self.processor = processor
        self._routes = dict(routes)

    def dlq_for(self, topic: str) -> str:
        """The DLQ of physical topic `topic`, as the topology names it; NoDeadLetterTopic if it has none."""
        try:
            return self._routes[topic]
        except KeyError:
            raise NoDeadLetterTopic(f"topic {topic!r} has no dlq in the topology") from None

    async def park(self, record: FailedRecord, failure: Failure, to_topic: str | None = None) -> str:
        """Write `record` with failure context to `to_topic` (default: its DLQ); returns the topic."""
        target = to_topic or self.dlq_for(record.topic)
        headers = context_headers(record, failure, self.processor)
        await self._publisher.publish(target, record.key, record.value, headers)
        fp = fingerprint(failure.error)
        err_class = type(failure.error).__name__
        DLQ_WRITES.labels(target, self.processor, err_class, fp).inc()
        # Structured line; the message is not logged (it may quote customer data), the fingerprint is.
        log.warning("dlq write", extra={"dlq_topic": target, "processor": self.processor,
                                        "original_topic": record.topic, "partition": record.partition,
                                        "offset": record.offset, "error_class": err_class,
                                        "fingerprint": fp, "stage": failure.stage,
                                        "attempts": failure.attempts})
        return target
