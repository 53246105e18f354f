"""The pure parts of `dlq redrive`, the replay target restriction and the escaping of printed DLQ text."""

from __future__ import annotations

import io

import pytest

from shopstream.connectors.webhook import RECEIVED_HEADER, SOURCE_HEADER, TRUNCATED_HEADER
from shopstream.ops.dlq_common import safe_out
from shopstream.ops.dlq_filters import (
    SKIP_NOT_A_SOURCE,
    escape_controls,
    replay_target,
    skip_reason,
)
from shopstream.ops.dlq_redrive import REDRIVE_COUNT, RedriveOptions, stored_request, webhook_source
from shopstream.ops.dlq_redrive import skip_reason as redrive_skip
from tests.unit.test_dlq_filters import ORIGINAL_HEADERS, context, letter

KNOWN = {"shopify": object(), "carrier": object()}


def parked_webhook(*extra: tuple[str, bytes | None], source: str = "carrier") -> object:
    return letter(headers=[("http.x-shopstream-signature", b"t=1,v1=ab"), ("http.content-type", b"application/json"),
                           (SOURCE_HEADER, source.encode()), (RECEIVED_HEADER, b"1700000000000"), *extra,
                           *context(**{"original.topic": f"webhook:{source}"})])


def test_stored_request_gives_back_the_kept_headers_and_the_first_receipt() -> None:
    dl = parked_webhook()
    headers, received = stored_request(dl)  # type: ignore[arg-type]
    assert headers == {"x-shopstream-signature": "t=1,v1=ab", "content-type": "application/json"}
    assert received == 1_700_000_000
    assert webhook_source(dl) == "carrier"  # type: ignore[arg-type]


@pytest.mark.parametrize(("extra", "options", "done", "reason"), [
    ((), RedriveOptions(), False, None),
    ((), RedriveOptions(), True, "already redriven"),
    ((), RedriveOptions(force=True), True, None),
    (((REDRIVE_COUNT, b"3"),), RedriveOptions(), False, "max redrives reached"),
    (((REDRIVE_COUNT, b"3"),), RedriveOptions(max_redrives=4), False, None),
    (((TRUNCATED_HEADER, b"9000000"),), RedriveOptions(force=True), False,
     "body was truncated (413): re-deliver from the source"),
    ((), RedriveOptions(source="shopify"), False, "another source"),
])
def test_redrive_skip_reasons(extra: tuple[tuple[str, bytes], ...], options: RedriveOptions, done: bool,
                              reason: str | None) -> None:
    assert redrive_skip(parked_webhook(*extra), options, KNOWN, done) == reason  # type: ignore[arg-type]


def test_redrive_skips_what_is_no_webhook_body() -> None:
    assert redrive_skip(letter(), RedriveOptions(), KNOWN, False) == "not a webhook body"
    assert redrive_skip(parked_webhook(source="acme"), RedriveOptions(), KNOWN, False) == "no connector 'acme'"


def test_replay_goes_only_to_a_source_topic_of_the_dlq_unless_to_is_given() -> None:
    forged = letter(headers=[*ORIGINAL_HEADERS, *context(**{"original.topic": "t1.commands.payments"})])
    sources = frozenset({"t1.shop.orders"})
    assert replay_target(letter(), None, sources) == "t1.shop.orders"
    assert replay_target(forged, None, sources) is None
    assert replay_target(forged, "t1.shop.orders", sources) == "t1.shop.orders"
    args = {"to_topic": None, "max_replays": 3, "force": True, "already_replayed": False, "sources": sources}
    assert skip_reason(forged, **args) == SKIP_NOT_A_SOURCE  # type: ignore[arg-type]


def test_terminal_control_sequences_are_escaped() -> None:
    text = "bad \x1b]0;owned\x07 \x1b[2J\x9b31m\r\u202egnp.exe keep\nlines\tand tabs"
    escaped = escape_controls(text)
    assert "\x1b" not in escaped and "\x9b" not in escaped and "\r" not in escaped and "\u202e" not in escaped
    assert "\\u001b]0;owned\\u0007" in escaped and "\nlines\tand tabs" in escaped
    out = io.StringIO()
    print(text, file=safe_out(out))
    assert out.getvalue() == escaped + "\n"


def test_dlq_show_renders_hostile_bodies_as_text() -> None:
    from shopstream.ops.dlq_filters import plain_value

    deep = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert plain_value(deep)["format"] == "text"
    assert plain_value(b'{"a": ' + b"[" * 500 + b"]" * 500 + b"}")["format"] == "text"
    assert plain_value(b'{"id": ' + b"7" * 5000 + b"}")["format"] == "text"
    assert plain_value(b'{"id": 7}') == {"format": "json", "data": {"id": 7}}
