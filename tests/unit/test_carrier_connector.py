"""The carrier connector and its status tables, pure: signature, delivery id, mapping data, translation."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
import yaml
from pydantic import BaseModel

from shopstream import schemas
from shopstream.connectors.base import PayloadError
from shopstream.connectors.carrier import SHIPMENTS_TOPIC, CarrierConnector
from shopstream.connectors.carrier_mapping import (
    CarrierMappingError,
    default_path,
    load_carrier_mapping,
    parse_carrier_mapping,
)
from shopstream.connectors.signing import shopstream_headers
from shopstream.connectors.signing import shopstream_sign as sign
from shopstream.schemas.models import ShipmentCreated, ShipmentDelivered, ShipmentDispatched, ShipmentException

SECRET = "carrier-shared-secret"
RECEIVED = datetime(2024, 5, 2, 12, 0, 0, tzinfo=UTC)
MAPPING = load_carrier_mapping()

#: The statuses the issue names per system (the tables may cover more, e.g. AfterShip's Pending).
REQUIRED_STATUSES = {
    "aftership": ["InfoReceived", "InTransit", "OutForDelivery", "AttemptFail", "Delivered", "AvailableForPickup",
                  "Exception", "Expired"],
    "dhl": ["pre-transit", "transit", "delivered", "failure", "unknown"],
    "easypost": ["pre_transit", "in_transit", "out_for_delivery", "delivered", "available_for_pickup",
                 "return_to_sender", "failure", "cancelled", "error", "unknown"],
}
EVENT_CLASSES: dict[str, type[BaseModel]] = {
    "ShipmentCreated": ShipmentCreated, "ShipmentDispatched": ShipmentDispatched,
    "ShipmentDelivered": ShipmentDelivered, "ShipmentException": ShipmentException,
}


def update(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tracking_number": "1Z999AA10123456784", "carrier": "UPS", "order_id": "1001", "status": "Delivered",
        "status_system": "aftership", "occurred_at": "2024-05-02T08:15:00+02:00", "location": "Hamburg, DE",
        "detail": "Left at front door", "signed_by": "J. DOE",
        "lines": [{"sku": "TSHIRT-BLK-M", "quantity": 2}],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def headers(body: bytes, secret: str = SECRET, delivery_id: str | None = None) -> dict[str, str]:
    return shopstream_headers(secret, body, delivery_id)


def translate(body: dict[str, Any] | bytes, connector: CarrierConnector | None = None,
              delivery_id: str | None = None) -> list[Any]:
    raw = body if isinstance(body, bytes) else encode(body)
    return (connector or CarrierConnector(SECRET)).translate(headers(raw, delivery_id=delivery_id), raw, RECEIVED)


def avro_round_trip(record: BaseModel) -> BaseModel:
    name = type(record).__name__
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.parsed_schema(name), schemas.to_avro(record))
    buf.seek(0)
    data = fastavro.schemaless_reader(buf, schemas.parsed_schema(name), schemas.parsed_schema(name))
    assert isinstance(data, dict)
    return schemas.from_avro(name, data)


# ------------------------------------------------------------------------------------------ signature


def test_signature_is_hex_hmac_sha256_of_the_raw_body() -> None:
    body = encode(update())
    assert sign(SECRET, body) == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    connector = CarrierConnector(SECRET)
    assert connector.verify(headers(body), body)
    upper = headers(body)["X-Shopstream-Signature"].replace("v1=", "").upper().replace("T=", "t=")
    t, v1 = upper.split(",")
    assert connector.verify({"x-shopstream-signature": f"{t},v1={v1}"}, body)  # hex, any case
    # The untimed legacy form only behind SHOPSTREAM_SIGNATURE_ACCEPT_LEGACY (a migration window).
    assert not connector.verify({"X-Shopstream-Signature": sign(SECRET, body)}, body)
    legacy = CarrierConnector(SECRET, accept_legacy=True)
    assert legacy.verify({"x-shopstream-signature": sign(SECRET, body).upper()}, body)
    assert legacy.verify({"X-Shopstream-Signature": "sha256=" + sign(SECRET, body)}, body)


@pytest.mark.parametrize("case", ["wrong_secret", "tampered", "missing", "empty", "garbage"])
def test_bad_signatures_are_refused(case: str) -> None:
    body = encode(update())
    connector = CarrierConnector(SECRET)
    h = {"wrong_secret": headers(body, "other-secret"), "tampered": headers(body), "missing": {},
         "empty": {"X-Shopstream-Signature": ""}, "garbage": {"X-Shopstream-Signature": "zz-not-hex"}}[case]
    sent = body.replace(b"1001", b"1002") if case == "tampered" else body
    assert not connector.verify(h, sent)


def test_an_empty_secret_refuses_everything() -> None:
    body = encode(update())
    assert not CarrierConnector("").verify(headers(body, ""), body)


def test_delivery_id_comes_from_the_header_only() -> None:
    connector = CarrierConnector(SECRET)
    assert connector.delivery_id({"X-Shopstream-Delivery-Id": "d-1"}) == "d-1"
    assert connector.delivery_id({"x-shopstream-delivery-id": " d-2 "}) == "d-2"
    assert connector.delivery_id({}) is None
    assert connector.delivery_id({"X-Shopstream-Delivery-Id": ""}) is None


# -------------------------------------------------------------------------------------- mapping data


@pytest.mark.parametrize(("system", "status"),
                         [(s, st) for s, statuses in REQUIRED_STATUSES.items() for st in statuses])
def test_every_named_carrier_status_is_covered(system: str, status: str) -> None:
    assert MAPPING.entry(system, status) is not None


@pytest.mark.parametrize(("system", "status"),
                         [(s, st) for s, table in MAPPING.systems.items() for st in table])
def test_every_table_entry_resolves_through_the_connector(system: str, status: str) -> None:
    entry = MAPPING.systems[system][status]
    out = translate(update(status_system=system, status=status))
    if entry.event == "ignore":
        assert out == []
        return
    (event,) = out
    assert event.topic == SHIPMENTS_TOPIC and event.key == "1001"
    assert type(event.record) is EVENT_CLASSES[entry.event]
    record: Any = event.record
    assert record.meta.event_type == entry.event and record.meta.source == "carrier"
    if not isinstance(record, ShipmentCreated):  # ShipmentCreated has no status_detail
        assert record.status_detail.startswith(f"{system} {status}")
    if isinstance(record, ShipmentException):
        assert record.exception_code == entry.exception_code
        assert record.returning_to_sender == entry.returning_to_sender
    assert avro_round_trip(record) == record


def test_chosen_mappings() -> None:
    def event(system: str, status: str) -> str:
        entry = MAPPING.entry(system, status)
        assert entry is not None
        return entry.event

    assert event("aftership", "OutForDelivery") == "ShipmentDispatched"
    assert event("aftership", "AvailableForPickup") == "ShipmentDispatched"
    assert event("easypost", "out_for_delivery") == "ShipmentDispatched"
    assert event("aftership", "InfoReceived") == "ShipmentCreated"
    assert event("dhl", "delivered") == "ShipmentDelivered"
    assert event("dhl", "unknown") == event("easypost", "unknown") == "ignore"
    rts = MAPPING.entry("easypost", "return_to_sender")
    assert rts is not None and rts.returning_to_sender and rts.exception_code == "return_to_sender"


def test_the_mapping_file_is_shipped_and_not_a_status_mapping() -> None:
    # topology/mappings/*.yaml are order status mappings (another loader, extra="forbid").
    assert default_path().name == "carrier.yaml" and default_path().parent.name == "topology"
    assert default_path().is_file()


@pytest.mark.parametrize(("entry", "message"), [
    ({"event": "ShipmentLost"}, "ShipmentLost"),
    ({"event": "OrderPlaced"}, "OrderPlaced"),
    ({"event": "ShipmentException"}, "exception_code"),
    ({"event": "ShipmentDelivered", "exception_code": "lost"}, "only belong to ShipmentException"),
    ({"event": "ShipmentDispatched", "returning_to_sender": True}, "only belong to ShipmentException"),
    ({"event": "ShipmentException", "exception_code": "Not Snake"}, "exception_code"),
    ({"event": "ignore", "colour": "red"}, "colour"),
])
def test_invalid_entries_are_rejected(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(CarrierMappingError, match=message):
        parse_carrier_mapping({"systems": {"acme": {"moving": entry}}}, origin="test.yaml")


@pytest.mark.parametrize("data", [None, {}, {"systems": {}}, {"systems": {"acme": {}}},
                                  {"systems": {"Acme Corp": {"x": {"event": "ignore"}}}}, {"tables": {}}])
def test_invalid_files_are_rejected(data: Any) -> None:
    with pytest.raises(CarrierMappingError, match=r"test\.yaml"):
        parse_carrier_mapping(data, origin="test.yaml")


def test_loading_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "carrier.yaml"
    bad.write_text("systems: [unclosed\n")
    with pytest.raises(CarrierMappingError, match="not valid YAML"):
        load_carrier_mapping(bad)
    with pytest.raises(CarrierMappingError, match="cannot read"):
        load_carrier_mapping(tmp_path / "missing.yaml")
    bad.write_text(yaml.safe_dump({"systems": {"acme": {"moving": {"event": "ShipmentTeleported"}}}}))
    with pytest.raises(CarrierMappingError, match=str(bad)):
        load_carrier_mapping(bad)


def test_a_custom_mapping_adds_a_status_system(tmp_path: Path) -> None:
    path = tmp_path / "carrier.yaml"
    path.write_text(yaml.safe_dump({"systems": {"acme": {"MOVING": {"event": "ShipmentDispatched"}}}}))
    connector = CarrierConnector(SECRET, load_carrier_mapping(path))
    (event,) = translate(update(status_system="acme", status="MOVING"), connector)
    assert type(event.record) is ShipmentDispatched
    with pytest.raises(PayloadError, match="unknown status_system 'aftership'"):
        translate(update(), connector)


# --------------------------------------------------------------------------------------- translation


def test_delivered_translates_with_every_field() -> None:
    (event,) = translate(update(shipment_id="ship-77"), delivery_id="d-42")
    assert event.topic == "fulfillment.shipments" and event.key == "1001"
    record = event.record
    assert isinstance(record, ShipmentDelivered)
    assert record.order_id == "1001" and record.shipment_id == "ship-77" and record.carrier == "UPS"
    assert record.tracking_number == "1Z999AA10123456784"
    assert record.delivered_at == datetime(2024, 5, 2, 6, 15, tzinfo=UTC)
    assert [(li.sku, li.quantity) for li in record.lines] == [("TSHIRT-BLK-M", 2)]
    assert record.signed_by == "J. DOE"
    assert record.status_detail == "aftership Delivered: Left at front door"
    assert record.meta.source_event_id == "d-42" and record.meta.recorded_at == RECEIVED
    assert record.meta.occurred_at == record.delivered_at
    assert record.meta.correlation_id == "carrier:tracking:1Z999AA10123456784"


def test_dispatched_created_and_exception_fields() -> None:
    (dispatched,) = translate(update(status="in_transit", status_system="easypost", lines=None,
                                     tracking_url="https://track.example/1Z"))
    d = dispatched.record
    assert isinstance(d, ShipmentDispatched)
    assert d.shipment_id == "1Z999AA10123456784"  # default: the tracking number
    assert d.location == "Hamburg, DE" and d.tracking_url == "https://track.example/1Z" and d.lines == []
    (created,) = translate(update(status="pre-transit", status_system="dhl", detail=None))
    c = created.record
    assert isinstance(c, ShipmentCreated) and c.location == "Hamburg, DE"
    assert c.created_at == datetime(2024, 5, 2, 6, 15, tzinfo=UTC)
    (exc,) = translate(update(status="return_to_sender", status_system="easypost"))
    e = exc.record
    assert isinstance(e, ShipmentException) and e.exception_code == "return_to_sender" and e.returning_to_sender
    assert e.reported_at == datetime(2024, 5, 2, 6, 15, tzinfo=UTC)


def test_unknown_status_is_a_payload_error_naming_status_and_system() -> None:
    with pytest.raises(PayloadError, match=r"'Teleported'.*'aftership'"):
        translate(update(status="Teleported"))
    # exact spelling per system: AfterShip tags are not EasyPost statuses
    with pytest.raises(PayloadError, match=r"'in_transit'.*'aftership'"):
        translate(update(status="in_transit"))
    with pytest.raises(PayloadError, match=r"unknown status_system 'fedex'.*aftership, dhl, easypost"):
        translate(update(status_system="fedex"))


def test_event_ids_are_deterministic_per_scan() -> None:
    first = translate(update(), delivery_id="d-1")[0].event_id
    # A redelivery, with another or without a delivery id, received later: the same event.
    assert translate(update(), delivery_id="d-2")[0].event_id == first
    raw = encode(update())
    later = CarrierConnector(SECRET).translate(headers(raw), raw, datetime(2024, 5, 3, tzinfo=UTC))
    assert later[0].event_id == first
    # The same instant written in another offset is the same scan.
    assert translate(update(occurred_at="2024-05-02T06:15:00Z"))[0].event_id == first
    # Another scan (status, time or parcel) is another event.
    assert translate(update(occurred_at="2024-05-02T08:16:00+02:00"))[0].event_id != first
    assert translate(update(status="InTransit"))[0].event_id != first
    assert translate(update(tracking_number="1Z999AA10123456785"))[0].event_id != first


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "body is not JSON"),
    (b"\xff\xfe", "body is not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (encode(update(tracking_number=None)), "tracking_number"),
    (encode(update(order_id=None)), "order_id"),
    (encode(update(order_id=1001)), "order_id"),
    (encode(update(order_id="   ")), "order_id"),
    (encode(update(status=None)), "status"),
    (encode(update(status_system=None)), "status_system"),
    (encode(update(carrier=None)), "carrier"),
    (encode(update(occurred_at=None)), "occurred_at"),
    (encode(update(occurred_at="yesterday")), "occurred_at: not an ISO-8601"),
    (encode(update(occurred_at="2024-05-02T08:15:00")), "without a UTC offset"),
    (encode(update(lines=[{"sku": "A", "quantity": 0}])), "lines.0.quantity"),
    (encode(update(lines=[{"quantity": 1}])), "lines.0.sku"),
    (encode(update(lines="A x1")), "lines"),
])
def test_malformed_bodies_are_payload_errors(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        translate(body)


def test_unknown_fields_are_ignored() -> None:
    (event,) = translate(update(extra={"anything": 1}, checkpoint_id="cp-1"))
    assert isinstance(event.record, ShipmentDelivered)
