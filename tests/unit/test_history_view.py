"""The pure parts of the order history view: entry document, Redis entry, ordering, limit, API body."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shopstream.schemas.models import EventMeta, OrderStatusChanged, OrderStatusSnapshot
from shopstream.views.guard import CHUNK
from shopstream.views.history import (
    DIMENSIONS,
    HISTORY_MAX_ENTRIES,
    _script_args,
    changed_dimensions,
    history_body,
    history_document,
    history_entry,
    history_key,
    history_limit,
    history_sort_key,
    history_text,
    in_history_order,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
_NS = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")


def snap(status: str = "pending_payment", payment: str = "pending", fulfillment: str = "unfulfilled",
         returns: str = "none", holds: tuple[str, ...] = ()) -> OrderStatusSnapshot:
    return OrderStatusSnapshot(status=status, payment_status=payment, fulfillment_status=fulfillment,
                               return_status=returns, hold_reasons=list(holds))


def make_change(order_id: str, version: int, *, previous: OrderStatusSnapshot | None = None,
                current: OrderStatusSnapshot | None = None, cause: str | None = None,
                occurred_at: datetime = T0, recorded_at: datetime | None = None, source: str = "shopify",
                rule: str = "shopify.paid", cause_type: str = "OrderUpdated",
                correlation_id: str | None = None) -> OrderStatusChanged:
    """An OrderStatusChanged whose ids derive from (order, version, cause) like the processor's do."""
    cause_id = str(uuid.uuid5(_NS, f"cause:{order_id}:{cause or version}"))
    return OrderStatusChanged(
        meta=EventMeta(event_id=str(uuid.uuid5(_NS, f"OrderStatusChanged:{cause_id}")),
                       event_type="OrderStatusChanged", occurred_at=occurred_at,
                       recorded_at=recorded_at or occurred_at + timedelta(milliseconds=250),
                       source="shopstream.orders", causation_id=cause_id, correlation_id=correlation_id),
        order_id=order_id, version=version, previous=previous, current=current or snap(),
        cause_event_id=cause_id, cause_event_type=cause_type, source=source, rule=rule,
    )


def test_document_shape() -> None:
    change = make_change("1001", 3, previous=snap(), current=snap("ready_to_fulfill", "paid"),
                         occurred_at=datetime(2024, 5, 1, 14, 0, 0, 5000, tzinfo=timezone(timedelta(hours=2))),
                         source="stripe", rule="payments.captured", cause_type="PaymentCaptured",
                         correlation_id="checkout-9")
    doc = history_document(change)
    assert doc == {
        "event_id": change.meta.event_id,
        "version": 3,
        "occurred_at": "2024-05-01T12:00:00.005Z",   # UTC, milliseconds, Z
        "recorded_at": "2024-05-01T12:00:00.255Z",
        "changed": ["status", "payment_status"],
        "previous": {"status": "pending_payment", "payment_status": "pending",
                     "fulfillment_status": "unfulfilled", "return_status": "none", "hold_reasons": []},
        "current": {"status": "ready_to_fulfill", "payment_status": "paid",
                    "fulfillment_status": "unfulfilled", "return_status": "none", "hold_reasons": []},
        "cause_event_id": change.cause_event_id,
        "cause_event_type": "PaymentCaptured",
        "source": "stripe",
        "rule": "payments.captured",
        "correlation_id": "checkout-9", "note": None, "work_item_id": None,
    }
    assert next(iter(doc)) == "event_id"  # the Redis layout relies on it
    assert json.loads(json.dumps(doc)) == doc  # JSON-ready as it stands


def test_first_state_has_no_previous_and_changes_every_dimension() -> None:
    doc = history_document(make_change("1001", 1, current=snap()))
    assert doc["previous"] is None
    assert doc["changed"] == list(DIMENSIONS)


def test_changed_dimensions_lists_each_that_differs_holds_included() -> None:
    before = snap("on_hold", "paid", holds=("fraud_review",))
    assert changed_dimensions(before, before) == []
    assert changed_dimensions(before, snap("ready_to_fulfill", "paid")) == ["status", "hold_reasons"]
    assert changed_dimensions(before, snap("on_hold", "paid", holds=("fraud_review", "address"))) == ["hold_reasons"]
    assert changed_dimensions(snap(), snap("cancelled", "voided", "unfulfilled", "none")) == [
        "status", "payment_status"]
    assert changed_dimensions(snap(fulfillment="shipped", returns="requested"),
                              snap(fulfillment="delivered", returns="received")) == [
        "fulfillment_status", "return_status"]


def test_entry_is_keyed_by_order_and_carries_version_and_event_id() -> None:
    change = make_change("A-7", 4)
    entry = history_entry("p:", change, b"A-7")
    assert entry.key == history_key("p:", "A-7") == "p:order-history:A-7"
    assert entry.version == 4 and entry.event_id == change.meta.event_id
    assert entry.document.startswith('{"event_id":"' + change.meta.event_id + '","version":4,')
    assert " " not in entry.document.split('"rule"')[0]  # compact JSON
    assert json.loads(entry.document) == history_document(change)


@pytest.mark.parametrize("key", [b"A-8", None, b"", "A-7".encode("utf-16")])
def test_entry_refuses_a_key_that_is_not_the_order_id(key: bytes | None) -> None:
    with pytest.raises(ValueError, match="keyed by order id"):
        history_entry("p:", make_change("A-7", 1), key)


def test_entry_keeps_non_ascii_as_utf8_text() -> None:
    change = make_change("Ü-1", 1, rule="règle")
    entry = history_entry("p:", change, "Ü-1".encode())
    assert '"rule":"règle"' in entry.document and entry.key.endswith("order-history:Ü-1")


def test_history_text_insists_on_event_id_first() -> None:
    with pytest.raises(ValueError, match="event_id"):
        history_text({"version": 1, "event_id": "x"})


def test_order_is_by_version_then_event_id_whatever_the_arrival_order_and_times() -> None:
    # Times run backwards on purpose: a later change may carry an earlier source time (a late
    # payment event); the version is the order's own sequence.
    changes = [make_change("1001", v, occurred_at=T0 - timedelta(minutes=v)) for v in range(1, 9)]
    docs = [history_document(c) for c in changes]
    shuffled = docs[:]
    random.Random(7).shuffle(shuffled)
    assert [d["version"] for d in in_history_order(shuffled)] == list(range(1, 9))

    # Two changes claiming one version (only a faulty producer does that) stand in event id order,
    # exactly as Redis orders equal scores (by the member's bytes, which start with the event id).
    a, b = (history_document(make_change("1001", 5, cause=c)) for c in ("x", "y"))
    first, second = sorted([a, b], key=lambda d: d["event_id"])
    assert in_history_order([second, first, *docs[:2]])[-2:] == [first, second]
    texts = sorted(history_text(d) for d in (second, first))
    assert [json.loads(t)["event_id"] for t in texts] == [first["event_id"], second["event_id"]]
    assert history_sort_key(first) == (5, first["event_id"])


def test_duplicates_count_once_and_the_first_one_wins() -> None:
    change = make_change("1001", 2)
    doc = history_document(change)
    rerendered = {**doc, "rule": "rendered later"}  # same (version, event id): the same entry
    ordered = in_history_order([history_document(make_change("1001", 1)), doc, rerendered, doc])
    assert [d["version"] for d in ordered] == [1, 2]
    assert ordered[1]["rule"] == "shopify.paid"


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("1", 1), ("25", 25),
                                               (str(HISTORY_MAX_ENTRIES), HISTORY_MAX_ENTRIES)])
def test_limit_accepts_nothing_or_a_count_up_to_the_bound(raw: str | None, expected: int | None) -> None:
    assert history_limit(raw) == expected


@pytest.mark.parametrize("raw", ["", "0", "-1", "+3", "1.5", "ten", " 3", "٣", str(HISTORY_MAX_ENTRIES + 1)])
def test_limit_refuses_anything_else_with_a_reason(raw: str) -> None:
    with pytest.raises(ValueError, match="limit must be"):
        history_limit(raw)


def test_body_wraps_the_stored_texts_without_decoding_them() -> None:
    stored = [history_text(history_document(make_change("Ö/1", v))) for v in (1, 2)]
    body = history_body("Ö/1", [t.encode() for t in stored])
    parsed: dict[str, Any] = json.loads(body)
    assert parsed == {"order_id": "Ö/1", "changes": [json.loads(t) for t in stored]}
    assert json.loads(history_body("1001", [])) == {"order_id": "1001", "changes": []}


def test_script_args_chunk_the_batch_in_input_order() -> None:
    entries = [history_entry("p:", make_change(f"O-{i % 3}", i + 1), f"O-{i % 3}".encode())
               for i in range(CHUNK + 5)]
    calls = _script_args(entries, 50)
    assert [len(keys) for keys, _ in calls] == [CHUNK, 5]
    keys, args = calls[1]
    assert keys == [e.key for e in entries[CHUNK:]]
    assert args[0] == 50
    assert args[1:4] == [entries[CHUNK].version, entries[CHUNK].event_id, entries[CHUNK].document]
    with pytest.raises(ValueError, match="version must be an int"):
        _script_args([entries[0]._replace(version=True)], 50)
