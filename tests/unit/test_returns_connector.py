"""The returns connector, pure: signature, delivery id, the three event types, validation."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from pydantic import BaseModel

from shopstream import schemas
from shopstream.connectors.base import PayloadError
from shopstream.connectors.returns import RETURNS_TOPIC, ReturnsConnector
from shopstream.connectors.signing import shopstream_headers
from shopstream.schemas.models import ReturnInspected, ReturnReceived, ReturnRequested

SECRET = "returns-shared-secret"
RECEIVED = datetime(2024, 5, 10, 12, 0, 0, tzinfo=UTC)


def delivery(kind: str = "inspected", **overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"sku": "TSHIRT-BLK-M", "quantity": 2, "line_id": "li-1", "reason": "too_small"}
    if kind == "inspected":
        line |= {"condition_grade": "as_new", "restockable": True}
    body: dict[str, Any] = {"type": kind, "return_id": "RMA-1001-1", "order_id": "1001",
                            "occurred_at": "2024-05-10T09:00:00Z", "lines": [line]}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def headers(body: bytes, secret: str = SECRET, delivery_id: str | None = None) -> dict[str, str]:
    return shopstream_headers(secret, body, delivery_id)


def translate(body: dict[str, Any] | bytes, delivery_id: str | None = None,
              received_at: datetime = RECEIVED) -> list[Any]:
    raw = body if isinstance(body, bytes) else encode(body)
    return ReturnsConnector(SECRET).translate(headers(raw, delivery_id=delivery_id), raw, received_at)


def avro_round_trip(record: BaseModel) -> BaseModel:
    name = type(record).__name__
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.parsed_schema(name), schemas.to_avro(record))
    buf.seek(0)
    data = fastavro.schemaless_reader(buf, schemas.parsed_schema(name), schemas.parsed_schema(name))
    assert isinstance(data, dict)
    return schemas.from_avro(name, data)


def test_signature_scheme_is_the_carriers() -> None:
    body = encode(delivery())
    connector = ReturnsConnector(SECRET)
    assert connector.verify(headers(body), body)
    assert not connector.verify(headers(body, "wrong"), body)
    assert not connector.verify(headers(body), body.replace(b"1001", b"1002"))
    assert not connector.verify({}, body)
    assert not ReturnsConnector("").verify(headers(body, ""), body)


def test_delivery_id_comes_from_the_header() -> None:
    connector = ReturnsConnector(SECRET)
    assert connector.delivery_id({"X-Shopstream-Delivery-Id": "r-1"}) == "r-1"
    assert connector.delivery_id({}) is None


def test_requested() -> None:
    (event,) = translate(delivery("requested", customer_note="too small, sorry"), delivery_id="r-1")
    assert event.topic == RETURNS_TOPIC == "returns" and event.key == "1001"
    r = event.record
    assert isinstance(r, ReturnRequested)
    assert r.return_id == "RMA-1001-1" and r.order_id == "1001" and r.customer_note == "too small, sorry"
    assert r.requested_at == datetime(2024, 5, 10, 9, 0, tzinfo=UTC) == r.meta.occurred_at
    (line,) = r.lines
    assert (line.sku, line.quantity, line.line_id, line.reason) == ("TSHIRT-BLK-M", 2, "li-1", "too_small")
    assert line.condition_grade is None and line.restockable is None
    assert r.meta.event_type == "ReturnRequested" and r.meta.source == "returns"
    assert r.meta.source_event_id == "r-1" and r.meta.correlation_id == "returns:return:RMA-1001-1"
    assert avro_round_trip(r) == r


def test_received() -> None:
    (event,) = translate(delivery("received", location="WH-BER", tracking_number="RET123"))
    r = event.record
    assert isinstance(r, ReturnReceived)
    assert r.location == "WH-BER" and r.tracking_number == "RET123"
    assert r.received_at == datetime(2024, 5, 10, 9, 0, tzinfo=UTC)
    assert avro_round_trip(r) == r


def test_inspected_carries_grade_and_restockable_per_line() -> None:
    lines = [{"sku": "A", "quantity": 1, "condition_grade": "as_new", "restockable": True},
             {"sku": "B", "quantity": 3, "condition_grade": "damaged", "restockable": False, "reason": "defective"}]
    (event,) = translate(delivery(lines=lines, location="WH-BER", inspector="kim"))
    r = event.record
    assert isinstance(r, ReturnInspected)
    assert [(li.sku, li.quantity, li.condition_grade, li.restockable) for li in r.lines] == [
        ("A", 1, "as_new", True), ("B", 3, "damaged", False)]
    assert r.inspector == "kim" and r.location == "WH-BER"
    assert r.inspected_at == datetime(2024, 5, 10, 9, 0, tzinfo=UTC)
    assert avro_round_trip(r) == r


def test_event_ids_are_deterministic() -> None:
    first = translate(delivery(), delivery_id="a")[0].event_id
    assert translate(delivery(), delivery_id="b")[0].event_id == first
    assert translate(delivery(), received_at=datetime(2024, 6, 1, tzinfo=UTC))[0].event_id == first
    assert translate(delivery(occurred_at="2024-05-10T11:00:00+02:00"))[0].event_id == first  # same instant
    assert translate(delivery(occurred_at="2024-05-10T09:00:01Z"))[0].event_id != first
    assert translate(delivery(return_id="RMA-1001-2"))[0].event_id != first
    assert translate(delivery("received", return_id="RMA-1001-1"))[0].event_id != first


@pytest.mark.parametrize(("body", "reason"), [
    (b"{", "body is not JSON"),
    (b"\"a string\"", "not a JSON object"),
    (encode(delivery(type="lost")), "type"),
    (encode(delivery(type=None)), "type"),
    (encode(delivery(return_id=None)), "return_id"),
    (encode(delivery(order_id=None)), "order_id"),
    (encode(delivery(order_id="")), "order_id"),
    (encode(delivery(occurred_at=None)), "occurred_at"),
    (encode(delivery(occurred_at="10.05.2024")), "occurred_at: not an ISO-8601"),
    (encode(delivery(occurred_at="2024-05-10T09:00:00")), "without a UTC offset"),
    (encode(delivery(lines=[])), "lines"),
    (encode(delivery(lines=None)), "lines"),
    (encode(delivery(lines=[{"sku": "A", "quantity": -1, "condition_grade": "good", "restockable": True}])),
     "lines.0.quantity"),
    (encode(delivery(lines=[{"sku": "A", "quantity": 1, "condition_grade": "mint", "restockable": True}])),
     "lines.0.condition_grade"),
    (encode(delivery(lines=[{"sku": "A", "quantity": 1, "condition_grade": "good"}])),
     "inspected line needs condition_grade and restockable"),
    (encode(delivery(lines=[{"sku": "A", "quantity": 1, "restockable": False}])),
     "inspected line needs condition_grade and restockable"),
    (encode(delivery("requested", lines=[{"sku": "A", "quantity": 1, "condition_grade": "good"}])),
     "results of inspection, not part of a requested return"),
    (encode(delivery("received", lines=[{"sku": "A", "quantity": 1, "restockable": True}])),
     "results of inspection, not part of a received return"),
])
def test_malformed_bodies_are_payload_errors(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        translate(body)


def test_errors_list_several_reasons() -> None:
    with pytest.raises(PayloadError) as info:
        translate(delivery(return_id=None, order_id=None))
    assert "return_id" in str(info.value) and "order_id" in str(info.value)
