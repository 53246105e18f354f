"""The product quality view document (catalog.quality → Redis), without Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shopstream.schemas.models import EventMeta, ProductQuality
from shopstream.views.products import quality_entry

AT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def record(document: str, sku: str = "A-1", version: int = 3) -> ProductQuality:
    meta = EventMeta(event_id="5f0c3d3e-1111-4a4a-9a9a-000000000001", event_type="ProductQuality",
                     occurred_at=AT, recorded_at=AT, source="shopstream.catalog")
    return ProductQuality(meta=meta, sku=sku, version=version, score=80, complete=False, document=document)


def test_the_document_carries_the_version_the_guard_reads() -> None:
    entry = quality_entry("p:", record(json.dumps({"score": 80, "rules_version": "r1", "version": 99})), b"A-1")
    doc = json.loads(entry.document)
    assert entry.key == "p:product-quality:A-1" and entry.version == 3
    assert doc["version"] == 3 and doc["rules_version"] == "r1" and doc["updated_at"] == "2026-12-06T10:00:00.000Z"
    assert entry.document.count('"version":') == 1


def test_a_record_under_another_key_or_with_bad_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not the record's sku"):
        quality_entry("p:", record("{}"), b"B-2")
    with pytest.raises(ValueError):
        quality_entry("p:", record("[1]"), b"A-1")
