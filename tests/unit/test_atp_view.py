"""The pure parts of the ATP read view: document, entry, time format, batch query, guard bookkeeping."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from shopstream.schemas.models import AtpLevel, AtpLocation, EventMeta
from shopstream.views.atp import (
    SKU_MAX,
    atp_document,
    atp_entry,
    atp_key,
    batch_skus,
    iso_millis,
    level_datum,
    sku_problem,
)
from shopstream.views.batch import MAX_BATCH, BadQuery, batch_body
from shopstream.views.guard import CHUNK, Entry, _calls, newest_per_key

T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
AS_OF = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def make_level(sku: str, version: int, *, on_hand: int = 12, reserved: int = 3, safety_stock: int = 2,
               incoming: int = 40, locations: list[AtpLocation] | None = None,
               updated_at: datetime = T0) -> AtpLevel:
    """An AtpLevel whose `available` follows the figures (one location `main` unless given)."""
    if locations is None:
        locations = [AtpLocation(location="main", on_hand=on_hand, reserved=reserved, safety_stock=safety_stock,
                                 incoming=incoming, as_of=AS_OF)]
    return AtpLevel(
        meta=EventMeta(event_id=str(uuid.uuid4()), event_type="AtpLevel", occurred_at=updated_at,
                       recorded_at=updated_at, source="shopstream.inventory"),
        sku=sku, on_hand=on_hand, reserved=reserved, safety_stock=safety_stock, incoming=incoming,
        available=on_hand - reserved - safety_stock, version=version, updated_at=updated_at, locations=locations,
    )


def test_document_shape_and_key_order() -> None:
    text = atp_document(level_datum(make_level("A-1", 5)))
    assert text == (
        '{"sku":"A-1","on_hand":12,"reserved":3,"safety_stock":2,"incoming":40,"available":7,"version":5,'
        '"updated_at":"2024-05-01T12:00:00.123Z","locations":[{"location":"main","on_hand":12,"reserved":3,'
        '"safety_stock":2,"incoming":40,"as_of":"2024-05-01T06:00:00.000Z"}]}')


def test_document_is_json_for_awkward_skus_and_many_locations() -> None:
    locations = [AtpLocation(location=name, on_hand=i, reserved=0, safety_stock=0, incoming=0, as_of=AS_OF)
                 for i, name in enumerate(['store "Nord"', "Lager Süd", "back\\slash", "tab\there"])]
    level = make_level('Ä/"x"\\ 7\n', 2**40, on_hand=-5, reserved=0, safety_stock=1, locations=locations)
    doc = json.loads(atp_document(level_datum(level)))
    assert doc["sku"] == 'Ä/"x"\\ 7\n'
    assert doc["available"] == -6 and doc["version"] == 2**40
    assert [loc["location"] for loc in doc["locations"]] == [loc.location for loc in locations]
    assert [loc["on_hand"] for loc in doc["locations"]] == [0, 1, 2, 3]


def test_never_counted_location_has_null_as_of_and_no_locations_is_empty_list() -> None:
    never = AtpLocation(location="popup", on_hand=0, reserved=1, safety_stock=0, incoming=0, as_of=EPOCH)
    doc = json.loads(atp_document(level_datum(make_level("S", 1, locations=[never]))))
    assert doc["locations"][0]["as_of"] is None
    assert json.loads(atp_document(level_datum(make_level("S", 1, locations=[]))))["locations"] == []


def test_document_refuses_what_is_not_an_atp_level() -> None:
    datum = level_datum(make_level("S", 1))
    with pytest.raises(ValueError):
        atp_document({**datum, "sku": ""})
    with pytest.raises(TypeError):
        atp_document({**datum, "on_hand": "12"})
    with pytest.raises(KeyError):
        atp_document({k: v for k, v in datum.items() if k != "available"})
    with pytest.raises(ValueError):
        atp_document({**datum, "updated_at": 10**15})  # year > 9999


@pytest.mark.parametrize(("ms", "text"), [
    (0, "1970-01-01T00:00:00.000Z"),
    (1714564800123, "2024-05-01T12:00:00.123Z"),
    (-1, "1969-12-31T23:59:59.999Z"),
    (253402300799999, "9999-12-31T23:59:59.999Z"),
])
def test_iso_millis(ms: int, text: str) -> None:
    assert iso_millis(ms) == text
    assert iso_millis(ms) == text  # cached answer is the same


def test_entry_is_keyed_and_guarded_by_version() -> None:
    datum = level_datum(make_level("A-1", 7))
    entry = atp_entry("p:", datum, b"A-1")
    assert entry == Entry("p:atp:A-1", 7, atp_document(datum))
    assert atp_key("p:", "A-1") == "p:atp:A-1"


@pytest.mark.parametrize("key", [b"A-2", None, b"", "A-1".encode("utf-16")])
def test_entry_refuses_a_key_that_is_not_the_sku(key: bytes | None) -> None:
    with pytest.raises(ValueError, match="is not its sku"):
        atp_entry("p:", level_datum(make_level("A-1", 1)), key)


def test_level_datum_matches_the_decoded_shape() -> None:
    datum = level_datum(make_level("A-1", 3))
    assert datum["updated_at"] == 1714564800123
    assert datum["locations"][0]["as_of"] == 1714543200000
    assert datum["version"] == 3


@pytest.mark.parametrize(("sku", "ok"), [
    ("A-1", True), ("a b/c?d", True), ("Ä" * SKU_MAX, True), ("", False), ("x" * (SKU_MAX + 1), False),
    ("a\x00b", False), ("a\nb", False), ("a\x7fb", False),
])
def test_sku_problem(sku: str, ok: bool) -> None:
    assert (sku_problem(sku) is None) is ok


def test_batch_skus_keeps_order_and_answers_duplicates_once() -> None:
    assert batch_skus(["b", "a", "b", "c"]) == ["b", "a", "c"]
    assert batch_skus([f"s{i}" for i in range(MAX_BATCH)]) == [f"s{i}" for i in range(MAX_BATCH)]


@pytest.mark.parametrize(("values", "reason"), [
    ([], "give 1 to 100 sku parameters"),
    ([f"s{i}" for i in range(MAX_BATCH + 1)], "at most 100 sku parameters per request, got 101"),
    (["ok", ""], "sku parameter 2: sku is empty"),
    (["a\x01"], "sku parameter 1: sku contains control characters"),
])
def test_batch_skus_refusals(values: list[str], reason: str) -> None:
    with pytest.raises(BadQuery, match=reason.replace("?", r"\?")):
        batch_skus(values)


def test_batch_body_passes_stored_documents_through() -> None:
    a, c = (atp_document(level_datum(make_level(sku, 1))).encode() for sku in ("a", "c"))
    body = batch_body(["a", "b", "c", "ü"], [a, None, c, None])
    assert json.loads(body) == {"items": [json.loads(a), json.loads(c)], "unknown": ["b", "ü"]}
    assert json.loads(batch_body([], [])) == {"items": [], "unknown": []}


def test_newest_per_key_and_chunked_calls() -> None:
    entries = [Entry("k1", 1, "a"), Entry("k1", 3, "b"), Entry("k2", 5, "c"), Entry("k1", 2, "d"),
               Entry("k2", 5, "e")]
    assert newest_per_key(entries) == {"k1": 1, "k2": 2}
    many = [Entry(f"k{i}", i, "x") for i in range(CHUNK * 2 + 1)]
    calls = _calls(many, list(range(len(many))))
    assert [len(keys) for keys, _, _ in calls] == [CHUNK, CHUNK, 1]
    keys, args, indexes = calls[2]
    assert keys == [f"k{2 * CHUNK}"] and args == [2 * CHUNK, "x"] and indexes == [2 * CHUNK]
