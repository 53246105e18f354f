"""The ERP delta-feed connector, pure: signature, dedupe key, both event types, batches, validation."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from pydantic import BaseModel

from shopstream import schemas
from shopstream.config import Settings
from shopstream.connectors.base import PayloadError
from shopstream.connectors.erp_webhook import MAX_EVENTS, ErpWebhookConnector, parse_delivery
from shopstream.connectors.service import source_connectors
from shopstream.connectors.signing import shopstream_headers
from shopstream.connectors.signing import shopstream_sign as sign
from shopstream.schemas.models import GoodsReceived, StockAdjusted

SECRET = "erp-shared-secret"
RECEIVED = datetime(2024, 5, 10, 12, 0, 0, tzinfo=UTC)


def adjustment(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "stock_adjusted", "id": "ADJ-1", "sku": "TSHIRT-BLK-M", "location": "WH-BER",
                             "delta": -3, "reason": "damage", "reference": "INV-77",
                             "adjusted_at": "2024-05-10T09:00:00+02:00"}
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not None}


def receipt(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "goods_received", "id": "GR-881", "sku": "TSHIRT-BLK-M", "location": "WH-BER",
                             "quantity": 120, "purchase_order": "PO-3301", "supplier": "ACME Textiles",
                             "received_at": "2024-05-10T07:30:00Z"}
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not None}


def encode(body: object) -> bytes:
    return json.dumps(body).encode()


def translate(body: object, received_at: datetime = RECEIVED) -> list[Any]:
    raw = body if isinstance(body, bytes) else encode(body)
    return ErpWebhookConnector(SECRET).translate(shopstream_headers(SECRET, raw), raw, received_at)


def avro_round_trip(record: BaseModel) -> BaseModel:
    name = type(record).__name__
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.parsed_schema(name), schemas.to_avro(record))
    buf.seek(0)
    data = fastavro.schemaless_reader(buf, schemas.parsed_schema(name), schemas.parsed_schema(name))
    assert isinstance(data, dict)
    return schemas.from_avro(name, data)


def test_signature_is_the_carrier_scheme_and_an_empty_secret_refuses_everything() -> None:
    body = encode(adjustment())
    connector = ErpWebhookConnector(SECRET)
    assert connector.verify(shopstream_headers(SECRET, body), body)
    assert not connector.verify({"X-Shopstream-Signature": sign(SECRET, body)}, body)  # legacy form: off
    assert ErpWebhookConnector(SECRET, accept_legacy=True).verify(
        {"x-shopstream-signature": "sha256=" + sign(SECRET, body).upper()}, body)
    assert not connector.verify(shopstream_headers("wrong", body), body)
    assert not connector.verify(shopstream_headers(SECRET, body), body.replace(b"-3", b"-4"))
    assert not connector.verify({}, body)
    assert not connector.verify({"X-Shopstream-Signature": ""}, body)
    assert not ErpWebhookConnector("").verify(shopstream_headers("", body), body)


def test_the_service_routes_erp_with_its_own_secret() -> None:
    connectors = source_connectors(Settings(erp_secret=SECRET, carrier_secret="other"))
    erp = connectors["erp"]
    assert isinstance(erp, ErpWebhookConnector) and erp.name == "erp"
    body = encode(adjustment())
    assert erp.verify(shopstream_headers(SECRET, body), body)
    assert not erp.verify(shopstream_headers("other", body), body)


def test_secret_is_read_from_its_variable_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPSTREAM_ERP_SECRET", "erp-s3cr3t-value")
    s = Settings()
    assert s.erp_secret.get_secret_value() == "erp-s3cr3t-value"
    assert "erp-s3cr3t-value" not in repr(s) + str(s) + s.model_dump_json()


def test_stock_adjusted() -> None:
    (out,) = translate(adjustment())
    assert out.topic == "inventory.stock" and out.key == "TSHIRT-BLK-M"
    r = out.record
    assert isinstance(r, StockAdjusted)
    assert (r.sku, r.location, r.delta, r.reason, r.reference) == ("TSHIRT-BLK-M", "WH-BER", -3, "damage", "INV-77")
    assert r.adjusted_at == datetime(2024, 5, 10, 7, 0, tzinfo=UTC) == r.meta.occurred_at
    m = r.meta
    assert (m.event_type, m.source, m.source_event_id) == ("StockAdjusted", "erp", "ADJ-1")
    assert m.correlation_id == "erp:reference:INV-77" and m.recorded_at == RECEIVED
    assert avro_round_trip(r) == r


def test_goods_received() -> None:
    (out,) = translate(receipt())
    assert out.topic == "inventory.stock" and out.key == "TSHIRT-BLK-M"
    r = out.record
    assert isinstance(r, GoodsReceived)
    assert (r.sku, r.location, r.quantity, r.purchase_order, r.supplier) == (
        "TSHIRT-BLK-M", "WH-BER", 120, "PO-3301", "ACME Textiles")
    assert r.received_at == datetime(2024, 5, 10, 7, 30, tzinfo=UTC)
    assert (r.meta.event_type, r.meta.source_event_id) == ("GoodsReceived", "GR-881")
    assert r.meta.correlation_id == "erp:purchase_order:PO-3301"
    assert avro_round_trip(r) == r


def test_optional_fields_and_default_location() -> None:
    for location in (None, "", "   "):
        (out,) = translate(adjustment(location=location, reference=None, delta=5, reason="found"))
        assert isinstance(out.record, StockAdjusted)
        assert out.record.location == "default" and out.record.reference is None
        assert out.record.meta.correlation_id is None
    (out,) = translate(receipt(location=None, purchase_order=None, supplier=None, quantity=1))
    assert isinstance(out.record, GoodsReceived)
    assert out.record.location == "default" and out.record.purchase_order is None and out.record.supplier is None


def test_integer_ids_are_their_decimal_text_and_strings_are_trimmed() -> None:
    (out,) = translate(adjustment(id=4711, sku="  SKU-1 ", reason=" damage "))
    assert out.record.meta.source_event_id == "4711" and out.key == "SKU-1" and out.record.reason == "damage"
    assert translate(adjustment(id="4711"))[0].event_id == out.event_id


def test_extreme_quantities_fit_an_avro_int() -> None:
    for delta in (-(2**31), 2**31 - 1, 1, -1):
        (out,) = translate(adjustment(delta=delta))
        assert avro_round_trip(out.record) == out.record
    (out,) = translate(receipt(quantity=2**31 - 1))
    assert avro_round_trip(out.record) == out.record


def test_batch_keeps_the_order_and_keys_each_event_by_its_sku() -> None:
    events = [adjustment(id="A1", sku="S1"), receipt(id="G1", sku="S2"), adjustment(id="A2", sku="S1", delta=2),
              receipt(id="A1", sku="S3")]  # an id may repeat across types: the ERP's number ranges are per type
    out = translate({"events": events})
    assert [(o.key, type(o.record).__name__, o.record.meta.source_event_id) for o in out] == [
        ("S1", "StockAdjusted", "A1"), ("S2", "GoodsReceived", "G1"), ("S1", "StockAdjusted", "A2"),
        ("S3", "GoodsReceived", "A1")]
    assert len({o.event_id for o in out}) == 4


def test_empty_batch_is_acknowledged_with_nothing_to_publish() -> None:
    assert translate({"events": []}) == []
    assert ErpWebhookConnector(SECRET).delivery_id_from_body({}, encode({"events": []})) is None


def test_event_ids_depend_on_type_and_erp_id_only() -> None:
    first = translate(adjustment())[0].event_id
    assert translate(adjustment(), received_at=datetime(2024, 6, 1, tzinfo=UTC))[0].event_id == first
    assert translate({"events": [receipt(), adjustment()]})[1].event_id == first  # same event in a batch
    assert translate(adjustment(id="ADJ-2"))[0].event_id != first
    assert translate(receipt(id="ADJ-1"))[0].event_id != first


def test_dedupe_key_comes_from_the_valid_body_only() -> None:
    c = ErpWebhookConnector(SECRET)
    assert c.delivery_id({"X-Shopstream-Delivery-Id": "d-1"}) is None
    assert c.delivery_id_from_body({}, encode(adjustment())) == "stock_adjusted:ADJ-1"
    assert c.delivery_id_from_body({}, encode({"events": [adjustment()]})) == "stock_adjusted:ADJ-1"
    batch = c.delivery_id_from_body({}, encode({"events": [adjustment(), receipt()]}))
    assert batch is not None and batch.startswith("batch:")
    assert c.delivery_id_from_body({}, encode({"events": [receipt(), adjustment()]})) == batch
    assert c.delivery_id_from_body({}, encode({"events": [adjustment(), receipt(id="GR-2")]})) != batch
    # An invalid body gets no claim, so a corrected resend with the same ids is not a "duplicate".
    assert c.delivery_id_from_body({}, encode(adjustment(delta=0))) is None
    assert c.delivery_id_from_body({}, b"{") is None


def test_a_full_batch_is_accepted_and_one_more_is_refused() -> None:
    events = [adjustment(id=f"A{i}") for i in range(MAX_EVENTS)]
    assert len(parse_delivery(encode({"events": events}))) == MAX_EVENTS
    with pytest.raises(PayloadError, match=f"{MAX_EVENTS + 1} events in one request, at most {MAX_EVENTS}"):
        parse_delivery(encode({"events": [*events, adjustment(id="one-more")]}))


@pytest.mark.parametrize(("body", "reason"), [
    (b"{", "body is not JSON"),
    (b"\xff\xfe", "body is not JSON"),
    (b"[]", "not a JSON object"),
    (encode({"sku": "A"}), 'expected an event object with "type"'),
    (encode({"events": {"a": 1}}), "events: expected a list of event objects, got dict"),
    (encode(adjustment(type="stock_moved")), "type: 'stock_moved', expected stock_adjusted | goods_received"),
    (encode(adjustment(type=["x"])), r"type: \['x'\], expected"),
    (encode(adjustment(id=None)), "id: Field required"),
    (encode(adjustment(id="")), "id: String should have at least 1 character"),
    (encode(adjustment(id=True)), "id: Input should be a valid string"),
    (encode(adjustment(sku=None)), "sku: Field required"),
    (encode(adjustment(sku=" ")), "sku: String should have at least 1 character"),
    (encode(adjustment(sku=123)), "sku: Input should be a valid string"),
    (encode(adjustment(location=7)), "location: Input should be a valid string"),
    (encode(adjustment(delta=None)), "delta: Field required"),
    (encode(adjustment(delta=0)), "delta: must not be 0"),
    (b'{"type": "stock_adjusted", "id": "A", "sku": "S", "delta": 3.0, "reason": "r", '
     b'"adjusted_at": "2024-05-10T09:00:00Z"}', "delta: Input should be a valid integer"),
    (encode(adjustment(delta="3")), "delta: Input should be a valid integer"),
    (encode(adjustment(delta=True)), "delta: Input should be a valid integer"),
    (encode(adjustment(delta=2**31)), "delta: Input should be less than or equal to 2147483647"),
    (encode(adjustment(delta=-(2**31) - 1)), "delta: Input should be greater than or equal to -2147483648"),
    (encode(adjustment(reason=None)), "reason: Field required"),
    (encode(adjustment(reason="")), "reason: String should have at least 1 character"),
    (encode(adjustment(adjusted_at=None)), "adjusted_at: Field required"),
    (encode(adjustment(adjusted_at="10.05.2024")), "adjusted_at: not an ISO-8601 timestamp"),
    (encode(adjustment(adjusted_at="2024-05-10T09:00:00")), "adjusted_at: timestamp without a UTC offset"),
    (encode(receipt(quantity=0)), "quantity: Input should be greater than or equal to 1"),
    (encode(receipt(quantity=-5)), "quantity: Input should be greater than or equal to 1"),
    (encode(receipt(quantity=None)), "quantity: Field required"),
    (encode(receipt(quantity="12")), "quantity: Input should be a valid integer"),
    (encode(receipt(received_at=None)), "received_at: Field required"),
    (encode(receipt(received_at="2024-05-10")), "received_at: timestamp without a UTC offset"),
    (encode(receipt(supplier=5)), "supplier: Input should be a valid string"),
])
def test_malformed_bodies_are_payload_errors(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        translate(body)


def test_one_bad_event_rejects_the_batch_and_every_bad_event_is_named() -> None:
    events = [adjustment(id="A1"), adjustment(id="A2", delta=0), receipt(id="G1"), "not an event",
              receipt(id="G2", quantity=0, received_at=None), adjustment(id="A1", delta=7), {"type": "recount"}]
    with pytest.raises(PayloadError) as info:
        translate({"events": events})
    message = str(info.value)
    assert message.startswith("not a valid ERP stock delivery (5 of 7 events invalid, nothing published): ")
    assert "events.1 (id 'A2'): delta: must not be 0" in message
    assert "events.3: expected an event object, got str" in message
    assert "events.4 (id 'G2'): quantity: Input should be greater than or equal to 1" in message
    assert "events.4 (id 'G2'): received_at: Field required" in message
    assert "events.5 (id 'A1'): stock_adjusted id 'A1' repeats events.0" in message
    assert "events.6: type: 'recount', expected stock_adjusted | goods_received" in message
    assert "events.0" not in message.replace("repeats events.0", "") and "events.2" not in message


def test_many_problems_are_capped_in_the_reason() -> None:
    events = [adjustment(id=f"A{i}", delta=0) for i in range(30)]
    with pytest.raises(PayloadError) as info:
        translate({"events": events})
    message = str(info.value)
    assert "30 of 30 events invalid" in message and "events.19 (id 'A19')" in message
    assert "events.20 (id" not in message and "… and 10 more" in message
