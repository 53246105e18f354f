"""The compiled model writer (`shopstream.codecs.model_writer`) writes exactly fastavro's bytes, or refuses."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from shopstream import schemas
from shopstream.codecs.model_writer import compile_writer
from shopstream.schemas.models import RECORDS, EventMeta, Money, OrderLine, OrderState
from tests.unit.test_schemas import TOP_LEVEL, example


def fastavro_bytes(name: str, model: BaseModel) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.parsed_schema(name), schemas.to_avro(model))
    return buf.getvalue()


@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("name", TOP_LEVEL)
def test_every_published_record_is_written_as_fastavro_writes_it(name: str, full: bool) -> None:
    model = RECORDS[name].model_validate(example(name, full=full))
    writer = compile_writer(schemas.schema_for(name))
    assert writer is not None, f"{name} does not compile"
    assert writer(model) == fastavro_bytes(name, model)


def _state(amount: Decimal, at: datetime, lines: int, text: str) -> OrderState:
    money = Money(amount=amount, currency="EUR")
    meta = EventMeta(event_id="a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", event_type="OrderState", occurred_at=at,
                     recorded_at=at, source=text)
    return OrderState(meta=meta, order_id=text, status="on_hold", payment_status="paid",
                      fulfillment_status="unfulfilled", return_status="none", hold_reasons=[text] * (lines % 3),
                      currency="EUR", total=money, captured=money, refunded=money,
                      lines=[OrderLine(line_id=str(i), sku=text, quantity=i, unit_price=money) for i in range(lines)],
                      placed_at=None, cancelled_at=at, source_updated_at=at, version=lines, updated_at=at,
                      last_event_id="a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")


@settings(max_examples=200, deadline=None)
@given(amount=st.decimals(min_value=Decimal("-99999999999999.9999"), max_value=Decimal("99999999999999.9999"),
                          places=4, allow_nan=False, allow_infinity=False),
       at=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
       lines=st.integers(0, 70), text=st.text(max_size=80))
def test_order_state_edges_match_fastavro(amount: Decimal, at: datetime, lines: int, text: str) -> None:
    """Negative, zero and large amounts, instants before 1970, arrays past one varint byte, any text."""
    state = _state(amount, at, lines, text)
    writer = compile_writer(schemas.schema_for("OrderState"))
    assert writer is not None
    assert writer(state) == fastavro_bytes("OrderState", state)


def test_values_the_schema_does_not_take_raise() -> None:
    writer = compile_writer(schemas.schema_for("Money"))
    assert writer is not None
    with pytest.raises(ValueError, match="Scale"):
        writer(Money.model_construct(amount=Decimal("1.23456"), currency="EUR"))
    with pytest.raises(ValueError, match="precision"):
        writer(Money.model_construct(amount=Decimal("1234567890123456789"), currency="EUR"))
    with pytest.raises(TypeError):
        writer(Money.model_construct(amount=1.5, currency="EUR"))
    meta = compile_writer(schemas.schema_for("OrderStatusSnapshot"))
    assert meta is not None
    with pytest.raises(ValueError, match="symbol"):
        meta(type("Snap", (), {"status": "lost", "payment_status": "paid", "fulfillment_status": "shipped",
                               "return_status": "none", "hold_reasons": []})())


def test_unsupported_schemas_compile_to_none() -> None:
    union: dict[str, Any] = {"type": "record", "name": "U", "namespace": "x",
                             "fields": [{"name": "a", "type": ["null", "string", "int"]}]}
    fixed: dict[str, Any] = {"type": "record", "name": "F", "namespace": "x",
                             "fields": [{"name": "a", "type": {"type": "fixed", "name": "H", "size": 4}}]}
    assert compile_writer(union) is None
    assert compile_writer(fixed) is None


@pytest.fixture
def serde(tmp_path: Any) -> Any:
    """AvroSerde on the embedded schema registry (the dev one, in a thread)."""
    from shopstream.dev.registry.service import start_in_thread
    from shopstream.dev.registry.store import SchemaStore
    from shopstream.serde import AvroSerde, make_registry_client

    registry = start_in_thread(SchemaStore(tmp_path / "registry.json"))
    try:
        yield AvroSerde(make_registry_client(registry.url))
    finally:
        registry.stop()


def test_serde_encodes_models_with_the_compiled_writer_and_reads_them_back(serde: Any) -> None:
    state = OrderState.model_validate(example("OrderState"))
    framed = serde.encode("t.orders.state", state)
    assert framed[5:] == fastavro_bytes("OrderState", state)
    assert serde.decode(framed) == state
    again = state.model_copy(update={"version": 7})
    assert serde.decode(serde.encode("t.orders.state", again)) == again


def test_serde_refuses_a_compiled_writer_that_differs_from_fastavro(serde: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from shopstream import serde as serde_module
    from shopstream.codecs.selfcheck import CodecMismatch

    real = serde_module.compile_writer

    def off_by_one(schema: dict[str, Any]) -> Any:
        writer = real(schema)
        return None if writer is None else (lambda model: writer(model) + b"\x00")

    monkeypatch.setattr(serde_module, "compile_writer", off_by_one)
    with pytest.raises(CodecMismatch):
        serde.encode("t.orders.state", OrderState.model_validate(example("OrderState")))
