"""PII masking for DLQ context headers and logs."""

from __future__ import annotations

import pytest

from shopstream.dlq import FailedRecord, Failure, context_headers
from shopstream.redact import mask


@pytest.mark.parametrize(("text", "gone", "kept"), [
    ("no customer jane.doe@example.com", "jane.doe", "j***@example.com"),
    ('{"name": "Jane Doe", "sku": "A-1"}', "Jane Doe", '"sku": "A-1"'),
    ("Address(line1='Hauptstr. 1', city='Berlin', country_code='DE')", "Hauptstr", "country_code='DE'"),
    ("call +49 30 1234567 now", "1234567", "call *** now"),
    ("{'first_name': 'Jane', 'last_name': 'O\\'Neil'}", "Neil", "'first_name': '***'"),
])
def test_pii_is_masked(text: str, gone: str, kept: str) -> None:
    masked = mask(text)
    assert gone not in masked
    assert kept in masked


def test_ids_dates_and_amounts_survive() -> None:
    text = "order 1234567890123 line 12345678901 total 54.20 EUR at 2026-11-23T10:00:00Z sku TSHIRT-BLK-M"
    assert mask(text) == text


def test_dlq_context_headers_carry_no_pii_but_the_record_is_untouched() -> None:
    body = b'{"email": "jane.doe@example.com"}'
    try:
        raise ValueError("customer jane.doe@example.com has no order; shipping {'name': 'Jane Doe'}")
    except ValueError as exc:
        headers = dict(context_headers(FailedRecord(topic="t", key=b"k", value=body), Failure(exc, "process"), "p"))
    assert b"jane.doe" not in headers["shopstream.dlq.error.message"]
    assert b"Jane Doe" not in headers["shopstream.dlq.error.stacktrace"]
    assert b"j***@example.com" in headers["shopstream.dlq.error.message"]
