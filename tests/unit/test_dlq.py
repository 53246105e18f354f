"""DLQ context headers and error fingerprints (pure: no broker)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from shopstream.dlq import (
    MAX_MESSAGE,
    MAX_STACK,
    PREFIX,
    SHOPSTREAM_VERSION,
    DeadLetterWriter,
    FailedRecord,
    Failure,
    NoDeadLetterTopic,
    context_headers,
    fingerprint,
    header_map,
)
from shopstream.serde import NotAvroFramed
from shopstream.topology import load_topology

CONTEXT_KEYS = {
    "original.topic", "original.partition", "original.offset", "original.timestamp", "original.key",
    "processor", "processor.version", "stage", "error.class", "error.message", "error.stacktrace",
    "error.fingerprint", "attempts", "first.failure", "last.failure",
}


class Boom(Exception):
    pass


class OtherBoom(Exception):
    pass


def raise_here(exc: BaseException) -> None:
    raise exc


def raise_elsewhere(exc: BaseException) -> None:
    raise exc


def caught(raiser: Callable[[BaseException], None], exc: BaseException) -> BaseException:
    try:
        raiser(exc)
    except BaseException as err:
        return err
    raise AssertionError("did not raise")


def record(**kw: Any) -> FailedRecord:
    base: dict[str, Any] = dict(topic="t1.shop.orders", key=b"order-42", value=b"\x00\x00\x00\x00\x07payload",
                                headers=[("trace", b"abc"), ("shopstream.source", b"shopify")],
                                partition=3, offset=1234, timestamp_ms=1_714_560_000_000)
    base.update(kw)
    return FailedRecord(**base)


class _Collect:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def publish(self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None) -> None:
        self.sent.append(topic)


def test_dlq_names_come_from_the_topology() -> None:
    writer = DeadLetterWriter(_Collect(), "p", load_topology().dlq_routes("t1."))
    assert writer.dlq_for("t1.shop.orders") == "t1.shop.orders.dlq"
    assert writer.dlq_for("t1.inventory.atp") == "t1.inventory.atp.dlq"
    with pytest.raises(NoDeadLetterTopic, match="has no dlq in the topology"):
        writer.dlq_for("t1.commands.erp")  # no `dlq` in the topology: nothing invents a name


def test_an_explicit_dlq_in_the_topology_is_where_records_go() -> None:
    """A topology naming another DLQ (e.g. a shared one) redirects parking: one place decides."""
    from shopstream.topology.topics import DEFAULT_TOPOLOGY_PATH, _read_yaml, parse_topology

    data = _read_yaml(DEFAULT_TOPOLOGY_PATH)
    for spec in data["topics"]:
        if spec["name"] == "payments":
            spec["dlq"] = "connectors.dlq"
    writer = DeadLetterWriter(_Collect(), "p", parse_topology(data).dlq_routes(""))
    assert writer.dlq_for("payments") == "connectors.dlq"


def test_context_headers_carry_every_field_with_the_right_value() -> None:
    err = caught(raise_here, Boom("order 42 has no lines"))
    before = int(time.time() * 1000)
    failure = Failure(error=err, stage="process", attempts=4, first_failure_ms=before - 5000)
    headers = context_headers(record(), failure, processor="t1.orders-processor")
    after = int(time.time() * 1000)

    ctx = {k[len(PREFIX):]: v for k, v in headers if k.startswith(PREFIX)}
    assert set(ctx) == CONTEXT_KEYS
    # Each context header appears exactly once.
    assert len([k for k, _ in headers if k.startswith(PREFIX)]) == len(CONTEXT_KEYS)
    assert ctx["original.topic"] == b"t1.shop.orders"
    assert ctx["original.partition"] == b"3"
    assert ctx["original.offset"] == b"1234"
    assert ctx["original.timestamp"] == b"1714560000000"
    assert ctx["original.key"] == b"order-42"
    assert ctx["processor"] == b"t1.orders-processor"
    assert ctx["processor.version"] == SHOPSTREAM_VERSION.encode()
    assert ctx["stage"] == b"process"
    assert ctx["error.class"] == f"{__name__}.Boom".encode()
    assert ctx["error.message"] == b"order 42 has no lines"
    stack = ctx["error.stacktrace"].decode()
    assert stack.startswith("Traceback (most recent call last)")
    assert "raise_here" in stack and "Boom: order 42 has no lines" in stack
    assert ctx["error.fingerprint"] == fingerprint(err).encode()
    assert ctx["attempts"] == b"4"
    assert ctx["first.failure"] == str(before - 5000).encode()
    assert before <= int(ctx["last.failure"]) <= after


def test_original_headers_are_kept_first_and_in_order() -> None:
    headers = context_headers(record(), Failure(error=caught(raise_here, Boom("x")), stage="process"), "p")
    assert headers[:2] == [("trace", b"abc"), ("shopstream.source", b"shopify")]


def test_connector_record_defaults() -> None:
    """A webhook body: no partition/offset (-1), no key, timestamp = now when not given."""
    rec = FailedRecord(topic="webhook:shopify", key=None, value=b"{bad json")
    before = int(time.time() * 1000)
    h = header_map(context_headers(rec, Failure(error=caught(raise_here, Boom("bad")), stage="connector"),
                                   "connectors"))
    assert h[PREFIX + "original.partition"] == b"-1" and h[PREFIX + "original.offset"] == b"-1"
    assert h[PREFIX + "original.key"] == b""
    assert int(h[PREFIX + "original.timestamp"]) >= before
    assert h[PREFIX + "stage"] == b"connector" and h[PREFIX + "attempts"] == b"1"


def test_an_older_dlq_context_is_replaced_not_duplicated() -> None:
    """A replayed record that fails again carries only the new context (plus its own headers)."""
    first = context_headers(record(), Failure(error=caught(raise_here, Boom("first")), stage="deserialize",
                                              attempts=1), "proc-a")
    replayed = record(topic="t1.shop.orders", partition=0, offset=99, headers=first)
    second = context_headers(replayed, Failure(error=caught(raise_elsewhere, OtherBoom("second")),
                                               stage="process", attempts=2), "proc-b")
    keys = [k for k, _ in second]
    assert len(keys) == len(set(keys)), "a DLQ header appears twice"
    h = header_map(second)
    assert h[PREFIX + "error.message"] == b"second"
    assert h[PREFIX + "stage"] == b"process"
    assert h[PREFIX + "processor"] == b"proc-b"
    assert h[PREFIX + "original.offset"] == b"99"
    assert h[PREFIX + "attempts"] == b"2"
    assert h[PREFIX + "error.class"].endswith(b".OtherBoom")
    assert h["trace"] == b"abc"  # the record's own headers survive both rounds
    assert [k for k in keys if not k.startswith(PREFIX)] == ["trace", "shopstream.source"]


def test_message_and_stack_are_bounded() -> None:
    huge = "x" * 50_000

    def deep(n: int) -> None:
        if n == 0:
            raise Boom(huge)
        deep(n - 1)

    try:
        deep(200)
    except Boom as exc:
        err: BaseException = exc
    h = header_map(context_headers(record(), Failure(error=err, stage="process"), "p"))
    message, stack = h[PREFIX + "error.message"], h[PREFIX + "error.stacktrace"]
    assert len(message) <= MAX_MESSAGE and message.endswith(b"...") and message.startswith(b"xxxx")
    assert len(stack) <= MAX_STACK and stack.endswith(b"...")
    assert stack.startswith(b"Traceback (most recent call last)")


def test_a_short_message_is_not_truncated() -> None:
    text = "y" * MAX_MESSAGE  # exactly at the limit
    h = header_map(context_headers(record(), Failure(error=caught(raise_here, Boom(text)), stage="process"), "p"))
    assert h[PREFIX + "error.message"] == text.encode()


@pytest.mark.parametrize("char", ["€", "ü", "😀"])
def test_bounded_headers_stay_valid_utf8(char: str) -> None:
    """Customer text (Müller, 10 €) in a long message must not be cut inside a character."""
    err = caught(raise_here, Boom(char * 10_000))
    h = header_map(context_headers(record(), Failure(error=err, stage="process"), "p"))
    message, stack = h[PREFIX + "error.message"], h[PREFIX + "error.stacktrace"]
    assert len(message) <= MAX_MESSAGE and len(stack) <= MAX_STACK
    assert message.decode("utf-8").endswith("...")
    assert stack.decode("utf-8").endswith("...")
    assert message.decode("utf-8").startswith(char * 10)


def test_fingerprint_is_stable_for_the_same_place_and_class() -> None:
    a = caught(raise_here, Boom("order 1"))
    b = caught(raise_here, Boom("order 2: a different message"))
    assert fingerprint(a) == fingerprint(b)
    assert len(fingerprint(a)) == 12 and int(fingerprint(a), 16) >= 0


def test_fingerprint_differs_for_another_place_or_class() -> None:
    here = fingerprint(caught(raise_here, Boom("x")))
    assert fingerprint(caught(raise_elsewhere, Boom("x"))) != here
    assert fingerprint(caught(raise_here, OtherBoom("x"))) != here
    assert fingerprint(caught(raise_here, NotAvroFramed("x"))) != here


def test_fingerprint_of_an_exception_never_raised() -> None:
    assert fingerprint(Boom("x")) == fingerprint(Boom("y"))
    assert fingerprint(Boom("x")) != fingerprint(OtherBoom("x"))


def test_header_map_last_value_wins() -> None:
    assert header_map([("a", b"1"), ("b", b"2"), ("a", b"3")]) == {"a": b"3", "b": b"2"}
    assert header_map(None) == {}
