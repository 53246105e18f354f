"""The Avro contract in schemas/: files, loader, generated models and an Avro round trip per record.

Decision tested here: naive datetimes are REJECTED (ambiguous), tz-aware ones are normalised to UTC
and truncated to milliseconds (what timestamp-millis keeps), so a model equals its decoded self.
"""

from __future__ import annotations

import io
import json
import re
import types
import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import count
from typing import Any

import fastavro
import pytest
from pydantic import BaseModel, ValidationError

from shopstream import schemas
from shopstream.schemas import codegen
from shopstream.schemas.models import RECORDS, EventMeta, Money, OrderCancelled, OrderLine

NAMED = schemas.load_named_types()
RECORD_NAMES = sorted(k for k, v in NAMED.items() if v["type"] == "record")
TOP_LEVEL = schemas.top_level_records()

# Every record DESIGN.md names for a topic must exist and carry meta first.
PUBLISHED = {
    "OrderPlaced", "OrderUpdated", "OrderCancelled", "PaymentAuthorized", "PaymentCaptured", "PaymentFailed",
    "RefundIssued", "ChargebackOpened", "StockSnapshot", "StockAdjusted", "GoodsReceived", "ShipmentCreated",
    "ShipmentDispatched", "ShipmentDelivered", "ShipmentException", "ReturnRequested", "ReturnReceived",
    "ReturnInspected", "ProductUpserted", "TicketCreated", "OrderState", "OrderStatusChanged",
    "ReservationChanged", "AtpLevel", "SyncShopStock", "ReorderRequest", "CreateInvoice", "ReleaseOrder",
    "HoldOrder", "CancelFulfillment", "CreateReturnLabel", "IssueRefund", "RouteTicket", "AnomalyAlert",
    "ReviewItem",
}


# ------------------------------------------------------------------ a generic example builder


def walk(node: Any) -> typing.Iterator[Any]:
    """Every type node of an Avro schema, depth first, the root first (defaults are not walked)."""
    yield node
    if isinstance(node, list):
        for branch in node:
            yield from walk(branch)
    elif isinstance(node, dict):
        for f in node.get("fields", []):
            yield from walk(f["type"])
        for key in ("items", "values"):
            if key in node:
                yield from walk(node[key])


def example(name: str, *, full: bool = True, folder: Any = None) -> dict[str, Any]:
    """A valid value of record `name`, driven only by its Avro schema.

    full=True fills every optional field and array; full=False leaves out every field that has a
    default (so the model's defaults are exercised).
    """
    seq = count(1)
    schema = schemas.schema_for(name, folder=folder)
    # schema_for inlines each named type once; later uses are by name
    defined = {f"{n['namespace']}.{n['name']}": n for n in walk(schema)
               if isinstance(n, dict) and n["type"] in ("record", "enum")}

    def build(node: Any, fld: dict[str, Any]) -> Any:
        n = next(seq)
        if isinstance(node, list):
            branches = [b for b in node if b != "null"]
            return build(branches[0], fld) if branches else None
        if isinstance(node, str):
            return build(defined[node], fld) if node in defined else primitive(node, fld, n)
        kind, logical = node["type"], node.get("logicalType")
        if logical == "timestamp-millis":
            return datetime(2024, 5, 17, 12, 30, 45, 123000, tzinfo=UTC) + timedelta(seconds=n)
        if logical == "uuid":
            return str(uuid.UUID(int=n))
        if logical == "decimal":
            scale = int(node.get("scale", 0))
            return Decimal(f"{n}.{'5' * scale}") if scale else Decimal(n)
        if kind == "record":
            return {
                f["name"]: build(f["type"], f) for f in node["fields"] if full or "default" not in f
            }
        if kind == "enum":
            return node["symbols"][n % len(node["symbols"])]
        if kind == "array":
            return [build(node["items"], fld) for _ in range(2)]
        if kind == "map":
            return {f"k{n}": build(node["values"], fld)}
        return primitive(kind, fld, n)

    def primitive(kind: str, fld: dict[str, Any], n: int) -> Any:
        if kind == "string":
            if "pattern" in fld:
                return next(c for c in ("EUR", "DE", "x1") if re.fullmatch(fld["pattern"], c))
            return f"{fld.get('name', 'value')}-{n}"
        values: dict[str, Any] = {"int": n, "long": 2**40 + n, "boolean": n % 2 == 0, "float": 0.5,
                                  "double": 1.25, "bytes": b"\x00\x01", "null": None}
        return values[kind]

    return build(schema, {})


def round_trip(name: str, model: BaseModel) -> BaseModel:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.parsed_schema(name), schemas.to_avro(model))
    buf.seek(0)
    decoded = fastavro.schemaless_reader(buf, schemas.parsed_schema(name), schemas.parsed_schema(name))
    return schemas.from_avro(name, decoded)


def _meta(**kw: Any) -> dict[str, Any]:
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    return {"event_id": str(uuid.uuid4()), "event_type": "X", "occurred_at": now, "recorded_at": now,
            "source": "test", **kw}


# ------------------------------------------------------------------ files and loader


@pytest.mark.parametrize("name", sorted(NAMED))
def test_every_type_parses_standalone(name: str) -> None:
    schema = schemas.schema_for(name)
    reparsed = json.loads(json.dumps(schema))  # what a registry stores
    fastavro.parse_schema(reparsed, named_schemas={})
    assert reparsed["namespace"] == schemas.NAMESPACE


def test_files_one_named_type_each_in_one_namespace() -> None:
    paths = sorted(schemas.avsc_dir().glob("*.avsc"))
    assert len(paths) == len(NAMED) > 0
    for path in paths:
        raw = json.loads(path.read_text())
        assert raw["name"] == path.stem and raw["namespace"] == schemas.NAMESPACE

        for node in list(walk(raw))[1:]:
            assert not (isinstance(node, dict) and node["type"] in ("record", "enum", "fixed")), (
                f"{path.name}: define named types in their own file"
            )


def test_enums_have_a_default_symbol() -> None:
    enums = [raw for raw in NAMED.values() if raw["type"] == "enum"]
    assert {e["name"] for e in enums} >= {"OrderStatus", "PaymentStatus", "FulfillmentStatus", "ReturnStatus"}
    for raw in enums:
        assert raw.get("default") in raw["symbols"], raw["name"]


def test_schema_for_inlines_each_named_type_once() -> None:
    text = json.dumps(schemas.schema_for("OrderState"))
    assert text.count('"name": "Money"') == 1  # total, captured, refunded, lines[].unit_price
    assert text.count('"name": "EventMeta"') == 1
    assert schemas.schema_for("io.shopstream.events.OrderState") == schemas.schema_for("OrderState")
    with pytest.raises(KeyError):
        schemas.schema_for("NoSuchRecord")


def test_published_records_have_meta_first() -> None:
    assert {schemas.fullname(n) for n in PUBLISHED} <= set(TOP_LEVEL)
    for name in TOP_LEVEL:
        first = NAMED[name]["fields"][0]
        assert first == {"name": "meta", "type": schemas.META_TYPE}


def test_money_and_timestamp_conventions() -> None:
    money = NAMED["io.shopstream.events.Money"]["fields"]
    assert money[0]["type"] == {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 4}

    for raw in NAMED.values():
        for node in walk(raw):
            assert node not in ("float", "double"), f"{raw['name']}: no floats in the contract"
            if isinstance(node, dict) and node.get("logicalType", "").startswith("timestamp"):
                assert node == {"type": "long", "logicalType": "timestamp-millis"}


# ------------------------------------------------------------------ generated models


def test_models_py_is_up_to_date() -> None:
    assert codegen.models_path().read_text(encoding="utf-8") == codegen.render(), (
        "schemas/models.py is stale: run python -m shopstream.schemas.codegen"
    )
    assert codegen.main(["--check"]) == 0


def test_codegen_check_fails_on_a_stale_file(tmp_path: Any) -> None:
    assert codegen.main(["--check", "--output", str(tmp_path / "missing.py")]) == 1
    assert not (tmp_path / "missing.py").exists()


def test_records_registry_covers_every_record() -> None:
    assert set(RECORDS) == set(RECORD_NAMES)
    for name, model in RECORDS.items():
        assert name == model.AVRO_NAME
        assert model.__name__ == name.rsplit(".", 1)[1]


def _nullable(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation) and typing.get_origin(annotation) in (
        typing.Union, types.UnionType)


@pytest.mark.parametrize("name", RECORD_NAMES)
def test_model_matches_avsc(name: str) -> None:
    """Drift: field names, order, optionality and defaults of the model equal the .avsc's."""
    model = RECORDS[name]
    avro_fields = NAMED[name]["fields"]
    assert list(model.model_fields) == [f["name"] for f in avro_fields]
    for f in avro_fields:
        info = model.model_fields[f["name"]]
        avro_nullable = isinstance(f["type"], list) and "null" in f["type"]
        assert _nullable(info.annotation) == avro_nullable, f["name"]
        assert info.is_required() == ("default" not in f), f["name"]
        if "default" in f:
            assert info.get_default(call_default_factory=True) == f["default"], f["name"]


@pytest.mark.parametrize("full", [True, False], ids=["full", "minimal"])
@pytest.mark.parametrize("name", RECORD_NAMES)
def test_avro_round_trip(name: str, full: bool) -> None:
    model = RECORDS[name].model_validate(example(name, full=full))
    back = round_trip(name, model)
    assert type(back) is type(model)
    assert back == model
    assert schemas.to_avro(back) == schemas.to_avro(model)


def test_top_level_examples_round_trip_through_json_too() -> None:
    for name in TOP_LEVEL:
        model = RECORDS[name].model_validate(example(name))
        assert RECORDS[name].model_validate_json(model.model_dump_json()) == model


# ------------------------------------------------------------------ value rules


def test_money_rejects_more_than_four_decimals() -> None:
    assert Money(amount=Decimal("1.2345"), currency="EUR").amount == Decimal("1.2345")
    assert Money(amount=Decimal("1.23450"), currency="EUR").amount == Decimal("1.2345")
    with pytest.raises(ValidationError, match="decimal places"):
        Money(amount=Decimal("1.23456"), currency="EUR")


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), 0.1, 1.5,
                                 Decimal("123456789012345.1234")])
def test_money_rejects_non_finite_floats_and_too_many_digits(bad: Any) -> None:
    with pytest.raises(ValidationError):
        Money(amount=bad, currency="EUR")


@pytest.mark.parametrize("currency", ["eur", "EURO", "E1R", ""])
def test_money_currency_is_an_upper_case_iso_code(currency: str) -> None:
    with pytest.raises(ValidationError):
        Money(amount=Decimal(1), currency=currency)


def test_money_accepts_str_and_int() -> None:
    assert Money(amount="12.50", currency="EUR").amount == Decimal("12.5")
    assert Money(amount=3, currency="JPY").amount == Decimal(3)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        EventMeta.model_validate(_meta(occurred_at=datetime(2024, 1, 2, 3, 4, 5)))
    with pytest.raises(ValidationError, match="timezone-aware"):
        EventMeta.model_validate(_meta(recorded_at="2024-01-02T03:04:05"))


def test_aware_datetimes_are_normalised_to_utc_millis() -> None:
    cet = timezone(timedelta(hours=1))
    meta = EventMeta.model_validate(_meta(occurred_at=datetime(2024, 1, 2, 4, 4, 5, 123456, tzinfo=cet)))
    assert meta.occurred_at == datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert meta.occurred_at.utcoffset() == timedelta(0)
    assert EventMeta.model_validate(_meta(occurred_at="2024-01-02T04:04:05+01:00")).occurred_at == datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    # UTC already, sub-millisecond digits still dropped; a normalised UTC value is kept as is.
    utc = EventMeta.model_validate(_meta(occurred_at=datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC))).occurred_at
    assert utc == datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    kept = datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert EventMeta.model_validate(_meta(occurred_at=kept)).occurred_at is kept


def test_event_id_must_be_a_uuid_and_is_canonical() -> None:
    raw = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"
    assert EventMeta.model_validate(_meta(event_id=raw)).event_id == raw.lower()
    assert EventMeta.model_validate(_meta(event_id=uuid.UUID(raw))).event_id == raw.lower()
    with pytest.raises(ValidationError):
        EventMeta.model_validate(_meta(event_id="not-a-uuid"))
    # Other spellings uuid.UUID takes are made canonical too (the canonical form skips the parse).
    for spelling in ("{" + raw + "}", "urn:uuid:" + raw.lower(), raw.replace("-", "").lower()):
        assert EventMeta.model_validate(_meta(event_id=spelling)).event_id == raw.lower()
    with pytest.raises(ValidationError):  # canonical shape, not hex
        EventMeta.model_validate(_meta(event_id="g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))


def test_models_are_frozen_and_forbid_extra_fields() -> None:
    money = Money(amount=Decimal(1), currency="EUR")
    with pytest.raises(ValidationError):
        money.currency = "USD"
    with pytest.raises(ValidationError):
        Money.model_validate({"amount": 1, "currency": "EUR", "cents": 100})


def test_int_fields_stay_in_avro_range() -> None:
    price = Money(amount=Decimal(1), currency="EUR")
    OrderLine(line_id="1", sku="A", quantity=2**31 - 1, unit_price=price)
    with pytest.raises(ValidationError):
        OrderLine(line_id="1", sku="A", quantity=2**31, unit_price=price)


def test_array_default_is_empty_and_fresh() -> None:
    meta = EventMeta.model_validate(_meta())
    a = OrderCancelled(meta=meta, order_id="1", cancelled_at=meta.occurred_at)
    b = OrderCancelled(meta=meta, order_id="2", cancelled_at=meta.occurred_at)
    assert a.lines == [] and a.lines is not b.lines


def test_from_avro_accepts_short_names_and_rejects_unknown() -> None:
    data = {"amount": Decimal("2.5"), "currency": "EUR"}
    assert schemas.from_avro("Money", data) == schemas.from_avro("io.shopstream.events.Money", data)
    with pytest.raises(KeyError):
        schemas.from_avro("NoSuchRecord", data)
