"""The pure rules of `shopstream dlq`: header parsing, selections, time arguments, replay headers, skips."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shopstream import dlq as dlq_writer
from shopstream.ops.dlq_filters import (
    DLQ_PREFIX,
    REPLAY_AT,
    REPLAY_COUNT,
    REPLAY_FROM_OFFSET,
    REPLAY_FROM_PARTITION,
    REPLAY_FROM_TOPIC,
    SKIP_ALREADY_REPLAYED,
    SKIP_MAX_REPLAYS,
    SKIP_NOT_A_TOPIC,
    DeadLetter,
    Selection,
    UsageError,
    age,
    error_class_matches,
    is_kafka_topic,
    iso,
    log_key,
    log_value,
    parse_dead_letter,
    parse_time,
    plain_value,
    render_bytes,
    replay_headers,
    replay_target,
    skip_reason,
)

NOW = 1_795_000_000_000  # 2026-11-18T...Z
ORIGINAL_HEADERS = [("trace", b"abc"), ("shopstream.source", b"shopify"), ("nullable", None)]


def context(**over: str) -> list[tuple[str, bytes | None]]:
    ctx = {
        "original.topic": "t1.shop.orders", "original.partition": "2", "original.offset": "17",
        "original.timestamp": str(NOW - 60_000), "original.key": "order-42",
        "processor": "t1.orders-processor", "processor.version": "0.1.0", "stage": "deserialize",
        "error.class": "shopstream.serde.NotAvroFramed", "error.message": "first byte is 123",
        "error.stacktrace": "Traceback ...", "error.fingerprint": "0123456789ab", "attempts": "1",
        "first.failure": str(NOW - 50_000), "last.failure": str(NOW - 40_000),
    }
    ctx.update(over)
    return [(DLQ_PREFIX + k, v.encode()) for k, v in ctx.items()]


def letter(headers: list[tuple[str, bytes | None]] | None = None, **kw: Any) -> DeadLetter:
    base: dict[str, Any] = dict(topic="t1.shop.orders.dlq", partition=0, offset=5, timestamp_ms=NOW - 30_000,
                                key=b"order-42", value=b"\x00\x00\x00\x00\x01body")
    base.update(kw)
    hs = headers if headers is not None else [*ORIGINAL_HEADERS, *context()]
    return parse_dead_letter(headers=hs, **base)


# ------------------------------------------------------------------------------------- header parsing


def test_prefix_matches_the_writer() -> None:
    assert DLQ_PREFIX == dlq_writer.PREFIX


def test_parse_reads_every_context_header() -> None:
    dl = letter()
    assert (dl.original_topic, dl.original_partition, dl.original_offset) == ("t1.shop.orders", 2, 17)
    assert dl.original_timestamp_ms == NOW - 60_000
    assert (dl.processor, dl.processor_version, dl.stage) == ("t1.orders-processor", "0.1.0", "deserialize")
    assert dl.error_class == "shopstream.serde.NotAvroFramed" and dl.error_class_short == "NotAvroFramed"
    assert dl.error_message == "first byte is 123"
    assert dl.fingerprint == "0123456789ab"
    assert dl.attempts == 1
    assert (dl.first_failure_ms, dl.last_failure_ms) == (NOW - 50_000, NOW - 40_000)
    assert dl.replay_count == 0
    assert dl.ref == "t1.shop.orders.dlq:0:5" == log_key("t1.shop.orders.dlq", 0, 5)
    assert dl.context()["fingerprint"] == "0123456789ab"


def test_parse_reads_headers_the_real_writer_wrote() -> None:
    try:
        raise ValueError("bad")
    except ValueError as exc:
        err = exc
    record = dlq_writer.FailedRecord(topic="t1.payments", key=b"o-1", value=b"x",
                                     headers=[("shopstream.replay.count", b"2")], partition=1, offset=9,
                                     timestamp_ms=NOW)
    headers = dlq_writer.context_headers(record, dlq_writer.Failure(error=err, stage="process", attempts=3),
                                         "t1.orders-processor")
    dl = parse_dead_letter("t1.payments.dlq", 0, 0, NOW, b"o-1", b"x", headers)
    assert (dl.original_topic, dl.original_partition, dl.original_offset) == ("t1.payments", 1, 9)
    assert dl.error_class == "builtins.ValueError" and dl.attempts == 3 and dl.stage == "process"
    assert dl.fingerprint == dlq_writer.fingerprint(err)
    assert dl.replay_count == 2  # a replay count survives a re-failure


def test_parse_tolerates_missing_and_garbled_headers() -> None:
    dl = letter(headers=[(DLQ_PREFIX + "attempts", b"many"), (DLQ_PREFIX + "original.offset", None),
                         (REPLAY_COUNT, b"-4")])
    assert dl.attempts is None and dl.original_offset is None and dl.original_topic is None
    assert dl.replay_count == 0
    assert dl.error_class_short == "?"


# ------------------------------------------------------------------------------------------- filters


def test_empty_selection_matches_everything() -> None:
    assert Selection().matches(letter())


@pytest.mark.parametrize(("selection", "expected"), [
    (Selection(fingerprint="0123456789ab"), True),
    (Selection(fingerprint="0123456789ac"), False),
    (Selection(error_class="NotAvroFramed"), True),
    (Selection(error_class="serde.NotAvroFramed"), True),
    (Selection(error_class="shopstream.serde.NotAvroFramed"), True),
    (Selection(error_class="AvroFramed"), False),  # suffix on a dotted boundary only
    (Selection(error_class="SerdeError"), False),
    (Selection(since_ms=NOW - 30_000), True),  # since is inclusive
    (Selection(since_ms=NOW - 29_999), False),
    (Selection(until_ms=NOW - 30_000), False),  # until is exclusive
    (Selection(until_ms=NOW - 29_999), True),
    (Selection(offset_from=5, offset_to=5), True),
    (Selection(offset_from=6), False),
    (Selection(offset_to=4), False),
    (Selection(key="order-42"), True),
    (Selection(key="order-4"), False),
    (Selection(fingerprint="0123456789ab", key="other"), False),  # every criterion must hold
])
def test_selection(selection: Selection, expected: bool) -> None:
    assert selection.matches(letter()) is expected


def test_time_filters_exclude_records_without_timestamp() -> None:
    assert not Selection(since_ms=0).matches(letter(timestamp_ms=None))
    assert Selection().matches(letter(timestamp_ms=None))


def test_key_filter_on_null_key() -> None:
    assert not Selection(key="order-42").matches(letter(key=None))


def test_error_class_matches_none() -> None:
    assert not error_class_matches(None, "X")


@pytest.mark.parametrize(("kw", "message"), [
    ({"offset_from": 9, "offset_to": 3}, "--offset-from 9 is after --offset-to 3"),
    ({"offset_from": -1}, "--offset-from must be >= 0"),
    ({"offset_to": -2}, "--offset-to must be >= 0"),
    ({"since_ms": 10, "until_ms": 10}, "--since must be before --until"),
])
def test_conflicting_selection_is_a_usage_error(kw: dict[str, int], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Selection(**kw)


# ---------------------------------------------------------------------------------------------- time


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-23T10:00:00Z", 1_795_428_000_000),
    ("2026-11-23T11:00:00+01:00", 1_795_428_000_000),
    ("2026-11-23T10:00:00.250Z", 1_795_428_000_250),
    ("90m", NOW - 90 * 60_000),
    ("2h", NOW - 2 * 3_600_000),
    ("3d", NOW - 3 * 86_400_000),
    ("1d12h", NOW - 36 * 3_600_000),
    ("45s", NOW - 45_000),
    ("1w", NOW - 7 * 86_400_000),
    (" 2H ", NOW - 2 * 3_600_000),
])
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "10:00", "2h ago", "-2h", "2026-13-01T00:00:00Z", "", "5"])
def test_bad_time_names_the_option_and_the_format(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_time(text, NOW, "--since")
    msg = str(info.value)
    assert msg.startswith("--since:") and "2026-11-23T10:00:00Z" in msg and "90m" in msg


def test_time_without_zone_is_refused() -> None:
    with pytest.raises(UsageError, match="no time zone"):
        parse_time("2026-11-23T10:00:00", NOW, "--until")


def test_iso_and_age() -> None:
    assert iso(1_795_428_000_250) == "2026-11-23T10:00:00.250Z"
    assert iso(None) is None
    assert age(None, NOW) == "-"
    assert age(NOW - 5_000, NOW) == "5s"
    assert age(NOW - 12 * 60_000, NOW) == "12m"
    assert age(NOW - (3 * 3600 + 5 * 60) * 1000, NOW) == "3h05m"
    assert age(NOW - (2 * 86_400 + 4 * 3600) * 1000, NOW) == "2d04h"
    assert age(NOW + 1000, NOW) == "0s"


# -------------------------------------------------------------------------------------------- replay


def test_replay_headers_keep_the_original_strip_the_context_and_count() -> None:
    dl = letter(headers=[*ORIGINAL_HEADERS, (REPLAY_COUNT, b"1"), (REPLAY_FROM_OFFSET, b"2"), *context()])
    headers = replay_headers(dl, NOW)
    assert headers[: len(ORIGINAL_HEADERS)] == ORIGINAL_HEADERS  # untouched, in order, null value kept
    assert not any(k.startswith(DLQ_PREFIX) for k, _ in headers)
    replay = dict(headers[len(ORIGINAL_HEADERS):])
    assert replay == {
        REPLAY_FROM_TOPIC: b"t1.shop.orders.dlq", REPLAY_FROM_PARTITION: b"0", REPLAY_FROM_OFFSET: b"5",
        REPLAY_COUNT: b"2", REPLAY_AT: str(NOW).encode(),
    }
    assert len(headers) == len(ORIGINAL_HEADERS) + 5  # the older replay headers are replaced, not doubled


def test_first_replay_counts_one() -> None:
    assert dict(replay_headers(letter(), NOW))[REPLAY_COUNT] == b"1"


def test_replay_target() -> None:
    assert replay_target(letter(), None) == "t1.shop.orders"
    assert replay_target(letter(), "t1.payments") == "t1.payments"
    webhook = letter(headers=context(**{"original.topic": "webhook:shopify"}))
    assert replay_target(webhook, None) is None
    assert replay_target(webhook, "t1.shop.orders") == "t1.shop.orders"
    assert replay_target(letter(headers=[]), None) is None


@pytest.mark.parametrize(("name", "ok"), [("t1.shop.orders", True), ("webhook:shopify", False), ("", False),
                                          (None, False), ("..", False), ("a" * 250, False), ("a_b-c.d", True)])
def test_is_kafka_topic(name: str | None, ok: bool) -> None:
    assert is_kafka_topic(name) is ok


def replayed(count: int) -> DeadLetter:
    return letter(headers=[*ORIGINAL_HEADERS, (REPLAY_COUNT, str(count).encode()), *context()])


@pytest.mark.parametrize(("dl", "kw", "reason"), [
    (letter(), {}, None),
    (letter(), {"already_replayed": True}, SKIP_ALREADY_REPLAYED),
    (letter(), {"already_replayed": True, "force": True}, None),
    (replayed(2), {}, None),
    (replayed(3), {}, SKIP_MAX_REPLAYS),
    (replayed(5), {"max_replays": 5}, SKIP_MAX_REPLAYS),
    (replayed(5), {"max_replays": 6}, None),
    (replayed(3), {"force": True}, None),
    (letter(headers=context(**{"original.topic": "webhook:shopify"})), {}, SKIP_NOT_A_TOPIC),
    (letter(headers=context(**{"original.topic": "webhook:shopify"})), {"force": True}, SKIP_NOT_A_TOPIC),
    (letter(headers=context(**{"original.topic": "webhook:shopify"})), {"to_topic": "t1.shop.orders"}, None),
])
def test_skip_reason(dl: DeadLetter, kw: dict[str, Any], reason: str | None) -> None:
    args: dict[str, Any] = {"to_topic": None, "max_replays": 3, "force": False, "already_replayed": False}
    args.update(kw)
    assert skip_reason(dl, **args) == reason


def test_log_value() -> None:
    doc = json.loads(log_value("t1.shop.orders", 1_795_428_000_000, 2, "0123456789ab"))
    assert doc == {"sent_to": "t1.shop.orders", "at": "2026-11-23T10:00:00.000Z", "replay_count": 2,
                   "fingerprint": "0123456789ab"}


# ----------------------------------------------------------------------------------------- rendering


def test_render_bytes() -> None:
    assert render_bytes(None) == "null"
    assert render_bytes(b"order-42") == "order-42"
    assert render_bytes(b"\xff\x00") == "hex:ff00"
    assert render_bytes(b"a\x01b") == "hex:610162"
    assert render_bytes(b"line1\nline2") == "line1\nline2"


def test_plain_value() -> None:
    assert plain_value(b'{"a": [1, 2]}') == {"format": "json", "data": {"a": [1, 2]}}
    assert plain_value(b"not json {") == {"format": "text", "data": "not json {"}
    assert plain_value(b"\xde\xad\xbe\xef") == {"format": "hex", "data": "deadbeef"}
    assert plain_value(b"a\x00b") == {"format": "hex", "data": "610062"}


# ------------------------------------------------------------------------------------ the replay log


def test_replay_log_is_a_compacted_single_partition_json_topic() -> None:
    from shopstream.ops.dlq_common import REPLAY_LOG
    from shopstream.topology import check, load_topology, parse_topology

    topic = load_topology().topic(REPLAY_LOG)
    assert (topic.kind, topic.partitions, topic.compacted, topic.value_format) == ("internal", 1, True, "json")
    assert topic.records == () and topic.dlq is None

    def doc(**fields: Any) -> dict[str, Any]:
        return {"version": 1, "defaults": {"partitions": 1},
                "topics": [{"name": "log", "kind": "internal", "key": "k", **fields}]}

    assert check(parse_topology(doc(value_format="json"))) == []
    assert check(parse_topology(doc())) == ["topic 'log' declares no records"]
    assert check(parse_topology(doc(value_format="json", records=["OrderPlaced"]))) == [
        "topic 'log' carries JSON values but declares Avro records"]
