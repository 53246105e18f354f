"""`shopstream dlq redrive connectors.dlq`: re-submit parked webhook bodies through their connector.

For "a mapping was missing, I added it, now process what was rejected". Each selected record of
`connectors.dlq` whose original is a webhook (`webhook:<source>`) goes through the same front as a live
request (`connectors.webhook.WebhookFront.accept`): the signature is verified again from the stored body
and the stored (allowlisted) headers — timed signatures against the time the body was first received —,
the delivery is claimed under the same delivery id, translated, published, and acknowledged in the dedupe
store. Outcomes per record: `accepted` / `duplicate` / `ignored` (done), `refused` (4xx: parked again with
`shopstream.redrive.count` + 1, the reason printed), `failed` (503 or a signature that no longer verifies:
nothing parked, run it again later).

Like `dlq replay` it terminates (reads up to the end offsets captured at the start), does not send twice
(each finished record is recorded on `dlq.replay-log`; a rerun skips it unless `--force`), is bounded per
body (`--max-redrives`, default 3, counted across re-parks) and explicit (`--dry-run` verifies and
translates, prints what would happen, publishes and records nothing). Bodies parked truncated (413) and
records that are not webhook bodies (ERP file rows) are skipped.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from shopstream.config import Settings
from shopstream.connectors.base import LinksPayments, PayloadError, SourceConnector
from shopstream.connectors.carrier_mapping import load_carrier_mapping
from shopstream.connectors.service import build_front, redis_client, source_connectors
from shopstream.connectors.webhook import RECEIVED_HEADER, SOURCE_HEADER, TRUNCATED_HEADER, WebhookFront
from shopstream.kafka import AsyncProducer
from shopstream.topology import CONNECTORS_DLQ, Topology

from .dlq_common import REPLAY_LOG, now_ms, one_line, resolve_dlq, safe_out
from .dlq_filters import DeadLetter, Selection, UsageError, log_value
from .dlq_scan import TopicMissing, broker_topics, read_log, scan

REDRIVE_COUNT = "shopstream.redrive.count"
WEBHOOK_PREFIX = "webhook:"
HTTP_PREFIX = "http."


@dataclass(frozen=True)
class RedriveOptions:
    """What `dlq redrive` does; checked on construction (UsageError on a bad value)."""

    selection: Selection = field(default_factory=Selection)
    source: str | None = None
    dry_run: bool = False
    limit: int | None = None
    max_redrives: int = 3
    force: bool = False

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {self.limit}")
        if self.max_redrives < 1:
            raise UsageError(f"--max-redrives must be at least 1, got {self.max_redrives}")


@dataclass
class RedriveSummary:
    """Counts per outcome, for the closing line."""

    selected: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def line(self, dry_run: bool) -> str:
        done = ", ".join(f"{k} {n}" for k, n in sorted(self.outcomes.items())) or "none processed"
        skipped = ", ".join(f"{k}: {n}" for k, n in sorted(self.skipped.items()))
        text = f"selected {self.selected}, {done}, skipped {sum(self.skipped.values())}"
        return text + (f" ({skipped})" if skipped else "") + (" (dry run: nothing published)" if dry_run else "")


def webhook_source(dl: DeadLetter) -> str | None:
    """The connector a parked body came to (`shopify`), or None when it is no webhook body."""
    named = dict(dl.headers).get(SOURCE_HEADER)
    if named:
        return named.decode("utf-8", "replace")
    original = dl.original_topic or ""
    return original.removeprefix(WEBHOOK_PREFIX) if original.startswith(WEBHOOK_PREFIX) else None


def stored_request(dl: DeadLetter) -> tuple[dict[str, str], float]:
    """The request headers kept with the body, and when it was first received (unix seconds)."""
    headers = {k.removeprefix(HTTP_PREFIX): (v or b"").decode("utf-8", "surrogateescape")
               for k, v in dl.headers if k.startswith(HTTP_PREFIX)}
    raw = dict(dl.headers).get(RECEIVED_HEADER)
    received_ms = int(raw) if raw and raw.isdigit() else (dl.original_timestamp_ms or dl.timestamp_ms or now_ms())
    return headers, received_ms / 1000


def redrive_count(dl: DeadLetter) -> int:
    """How often this body was redriven already (kept across re-parks)."""
    raw = dict(dl.headers).get(REDRIVE_COUNT)
    return int(raw) if raw and raw.isdigit() else 0


def skip_reason(dl: DeadLetter, options: RedriveOptions, known: Mapping[str, object], done: bool) -> str | None:
    """Why `dl` is not redriven, or None."""
    source = webhook_source(dl)
    if source is None:
        return "not a webhook body"
    if source not in known:
        return f"no connector {source!r}"
    if options.source and source != options.source:
        return "another source"
    if dict(dl.headers).get(TRUNCATED_HEADER):
        return "body was truncated (413): re-deliver from the source"
    if options.force:
        return None
    if done:
        return "already redriven"
    if redrive_count(dl) >= options.max_redrives:
        return "max redrives reached"
    return None


def _clock(at: float) -> Callable[[], float]:
    return lambda: at


def _dry_run(connector: SourceConnector, headers: dict[str, str], body: bytes) -> str:
    if not connector.verify(headers, body):
        return "would fail: the signature does not verify"
    try:
        if isinstance(connector, LinksPayments):
            outgoing = connector.translate_linked(headers, body, datetime.now(UTC), None)
        else:
            outgoing = connector.translate(headers, body, datetime.now(UTC))
    except PayloadError as exc:
        return f"would be refused again: {one_line(str(exc), 200)}"
    return f"would publish {len(outgoing)} event(s)" if outgoing else "would be acknowledged (nothing to publish)"


async def _redrive(settings: Settings, physical: str, options: RedriveOptions, out: IO[str]) -> RedriveSummary:
    log_topic = settings.topic(REPLAY_LOG)
    done_refs = read_log(settings, log_topic, key_prefix=f"{physical}:")
    summary = RedriveSummary()
    producer = None if options.dry_run else AsyncProducer(settings)
    client = None if options.dry_run else redis_client(settings)
    front: WebhookFront | None = None
    if producer is not None and client is not None:
        front = build_front(settings, producer, client)
    mapping = load_carrier_mapping(extra=settings.carrier_mapping or None)  # once, not per record
    known = source_connectors(settings, carrier_mapping=mapping)
    try:
        for dl in scan(settings, physical, options.selection):
            if options.limit is not None and sum(summary.outcomes.values()) >= options.limit:
                break
            summary.selected += 1
            reason = skip_reason(dl, options, known, dl.ref in done_refs)
            if reason is not None:
                summary.skipped[reason] += 1
                print(f"skip         {dl.ref}  {reason}", file=out)
                continue
            source = webhook_source(dl)
            assert source is not None
            headers, received_s = stored_request(dl)
            # The signature is checked against the time the body first arrived: a timed one has expired since.
            connector = source_connectors(settings, now=_clock(received_s), carrier_mapping=mapping)[source]
            body = dl.value or b""
            if front is None:
                summary.outcomes["dry-run"] += 1
                print(f"would redrive {dl.ref} -> webhook:{source}: {_dry_run(connector, headers, body)}", file=out)
                continue
            extra = [(REDRIVE_COUNT, str(redrive_count(dl) + 1).encode()),
                     (RECEIVED_HEADER, str(int(received_s * 1000)).encode())]
            outcome = await front.accept(connector, headers, body, extra_headers=extra)
            status = outcome.body.get("status") if outcome.status < 300 else None  # 202: parked again
            kind = (str(status) if status else "accepted") if outcome.status < 300 else \
                "refused" if outcome.status < 500 and outcome.status != 401 and outcome.status != 409 else "failed"
            summary.outcomes[kind] += 1
            detail = one_line(str(outcome.body.get("error") or outcome.body.get("status") or ""), 200)
            print(f"{kind:<12} {dl.ref} -> webhook:{source} ({outcome.status}) {detail}", file=out)
            if kind != "failed":  # finished: accepted, or parked again as a new dead letter
                await producer.publish(log_topic, dl.ref.encode(),  # type: ignore[union-attr]
                                       log_value(f"webhook:{source}", now_ms(), redrive_count(dl) + 1,
                                                 dl.fingerprint), [])
    finally:
        if producer is not None:
            await asyncio.get_running_loop().run_in_executor(None, producer.close)
        if client is not None:
            await client.aclose()
    return summary


def dlq_redrive(settings: Settings, topology: Topology, topic_name: str, options: RedriveOptions, *,
                out: IO[str] | None = None) -> int:
    """Re-submit parked webhook bodies (see the module docs); exit 1 when any could not be processed."""
    out = safe_out(out or sys.stdout)
    topic = resolve_dlq(topology, topic_name, settings.topic_prefix)
    if topic.name != CONNECTORS_DLQ:
        raise UsageError(f"redrive re-submits webhook bodies: only {CONNECTORS_DLQ}; "
                         f"for {topic.name} use `shopstream dlq replay`")
    physical = topic.physical_name(settings.topic_prefix)
    existing = broker_topics(settings)
    for needed in (physical, settings.topic(REPLAY_LOG)):
        if needed not in existing:
            raise TopicMissing(needed)
    mode = "dry run: " if options.dry_run else ""
    print(f"{mode}redriving webhook bodies from {physical}", file=out)
    summary = asyncio.run(_redrive(settings, physical, options, out))
    print(f"{mode}redrive of {physical}: {summary.line(options.dry_run)}", file=out)
    return 1 if summary.outcomes.get("failed") else 0
