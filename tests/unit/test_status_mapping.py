"""Status mappings (topology/mappings/*.yaml) load, validate and map source statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shopstream.processors.orders.mapping import (
    MappingError,
    StatusMapping,
    available_sources,
    load_mapping,
    load_mapping_file,
    parse_mapping,
)


def test_shipped_shopify_mapping_loads() -> None:
    mapping = load_mapping("shopify")
    assert isinstance(mapping, StatusMapping)
    assert mapping.source == "shopify"
    assert "shopify" in available_sources()


def test_every_shipped_mapping_loads() -> None:
    for source in available_sources():
        assert load_mapping(source).source == source


@pytest.mark.parametrize(
    ("raw", "canonical", "rule"),
    [
        ("pending", "pending", "shopify.financial_status.pending"),
        ("authorized", "authorized", "shopify.financial_status.authorized"),
        ("partially_paid", "partially_paid", "shopify.financial_status.partially_paid"),
        ("paid", "paid", "shopify.financial_status.paid"),
        ("partially_refunded", "partially_refunded", "shopify.financial_status.partially_refunded"),
        ("refunded", "refunded", "shopify.financial_status.refunded"),
        ("voided", "voided", "shopify.financial_status.voided"),
    ],
)
def test_shopify_financial_status(raw: str, canonical: str, rule: str) -> None:
    entry = load_mapping("shopify").payment_entry(raw)
    assert entry is not None
    assert (entry.canonical, entry.id) == (canonical, rule)


@pytest.mark.parametrize(
    ("raw", "canonical", "rule"),
    [
        (None, "unfulfilled", "shopify.fulfillment_status.unfulfilled"),
        ("unfulfilled", "unfulfilled", "shopify.fulfillment_status.unfulfilled"),
        ("partial", "partially_shipped", "shopify.fulfillment_status.partial"),
        ("fulfilled", "shipped", "shopify.fulfillment_status.fulfilled"),
        ("restocked", "unfulfilled", "shopify.fulfillment_status.restocked"),
    ],
)
def test_shopify_fulfillment_status(raw: str | None, canonical: str, rule: str) -> None:
    entry = load_mapping("shopify").fulfillment_entry(raw)
    assert entry is not None
    assert (entry.canonical, entry.id) == (canonical, rule)


def test_unknown_and_absent_values() -> None:
    mapping = load_mapping("shopify")
    assert mapping.payment_entry("settled") is None
    assert mapping.payment_entry(None) is None  # no information, not an error
    assert mapping.fulfillment_entry("shipped") is None


def _valid() -> dict[str, Any]:
    return {
        "source": "acme",
        "financial_status": [{"id": "acme.pay.ok", "values": ["ok"], "canonical": "paid"}],
        "fulfillment_status": [{"id": "acme.ship.none", "values": [None], "canonical": "unfulfilled"}],
    }


def test_mapping_naming_an_unknown_canonical_state_is_rejected(tmp_path: Path) -> None:
    data = _valid()
    data["financial_status"][0]["canonical"] = "settled"
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(MappingError) as info:
        load_mapping_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "financial_status.0.canonical" in message
    assert "'settled'" in message
    assert "'paid'" in message  # lists what would have been valid


def test_unknown_state_in_allow_from_is_rejected() -> None:
    data = _valid()
    data["fulfillment_status"][0]["allow_from"] = ["lost"]
    with pytest.raises(MappingError, match=r"fulfillment_status\.0\.allow_from\.0.*'lost'"):
        parse_mapping(data)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["fulfillment_status"][0].update(id="acme.pay.ok"), "used twice"),
        (lambda d: d["financial_status"].append({"id": "acme.pay.ok2", "values": ["ok"], "canonical": "paid"}),
         "covered by both"),
        (lambda d: d["financial_status"][0].update(values=[]), r"financial_status\.0\.values"),
        (lambda d: d["financial_status"][0].update(colour="red"), "Extra inputs"),
        (lambda d: d.update(source="../etc"), "source"),
        (lambda d: d["financial_status"][0].update(id="no dots"), r"financial_status\.0\.id"),
    ],
)
def test_inconsistent_mappings_are_rejected(mutate: Any, message: str) -> None:
    data = _valid()
    mutate(data)
    with pytest.raises(MappingError, match=message):
        parse_mapping(data)


def test_allow_from_that_reopens_cancellation_is_rejected() -> None:
    data = _valid()
    data["fulfillment_status"].append(
        {"id": "acme.ship.back", "values": ["back"], "canonical": "unfulfilled", "allow_from": ["shipped"]})
    with pytest.raises(MappingError, match="one-way"):
        parse_mapping(data)


def test_allow_from_extends_the_core_graph() -> None:
    data = _valid()
    data["financial_status"].append(
        {"id": "acme.pay.reopened", "values": ["reopened"], "canonical": "pending", "allow_from": ["paid"]})
    mapping = parse_mapping(data)
    assert mapping.payment_graph.allows("paid", "pending")
    assert not load_mapping("shopify").payment_graph.allows("paid", "pending")


def test_missing_source_and_bad_names() -> None:
    with pytest.raises(MappingError, match="no status mapping for source 'nosuch'"):
        load_mapping("nosuch")
    with pytest.raises(MappingError, match="not a source system name"):
        load_mapping("../shopify")


def test_file_must_declare_its_own_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(_valid()))
    monkeypatch.setattr("shopstream.processors.orders.mapping.mappings_dir", lambda: tmp_path)
    with pytest.raises(MappingError, match="declares source 'acme', expected 'other'"):
        load_mapping("other")
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump(_valid()))
    assert load_mapping("acme").source == "acme"


def test_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(": : not yaml [")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping_file(path)
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping_file(tmp_path / "missing.yaml")
