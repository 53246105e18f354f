"""The Redis order view on a real Redis: version guard, batch writes, document shape."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis

from shopstream.schemas.models import EventMeta, Money, OrderLine, OrderState
from shopstream.views.orders import AsyncOrderView, OrderView, order_document, order_key

T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def make_state(order_id: str, version: int, *, status: str = "ready_to_fulfill",
               currency: str = "EUR", total: str = "12.5") -> OrderState:
    """An OrderState with one line; `version` also shows in updated_at so tests can tell them apart."""
    return OrderState(
        meta=EventMeta(event_id=str(uuid.uuid4()), event_type="OrderState", occurred_at=T0,
                       recorded_at=T0, source="shopstream.orders"),
        order_id=order_id,
        status=status,
        payment_status="paid",
        fulfillment_status="unfulfilled",
        return_status="none",
        hold_reasons=[],
        currency=currency,
        total=Money(amount=Decimal(total), currency=currency),
        captured=Money(amount=Decimal(total), currency=currency),
        refunded=Money(amount=Decimal("0"), currency=currency),
        lines=[OrderLine(line_id="l1", sku="SKU-1", quantity=2,
                         unit_price=Money(amount=Decimal(total) / 2, currency=currency), title="Mug")],
        placed_at=T0,
        cancelled_at=None,
        version=version,
        updated_at=T0.replace(second=version % 60),
        last_event_id=str(uuid.uuid4()),
    )


def doc(order_id: str, version: int, **kw: Any) -> dict[str, Any]:
    return order_document(make_state(order_id, version, **kw))


@pytest.fixture
def view(redis_url: str, redis_prefix: str) -> Iterator[OrderView]:
    v = OrderView.from_url(redis_url, redis_prefix)
    yield v
    v.close()


def test_document_shape() -> None:
    d = doc("A-1", 3, currency="JPY", total="1200")
    assert d == {
        "order_id": "A-1", "status": "ready_to_fulfill", "payment_status": "paid",
        "fulfillment_status": "unfulfilled", "return_status": "none", "hold_reasons": [],
        "lines": [{"line_id": "l1", "sku": "SKU-1", "quantity": 2,
                   "unit_price": {"amount": "600", "currency": "JPY"}, "title": "Mug"}],
        "total": {"amount": "1200", "currency": "JPY"},
        "captured": {"amount": "1200", "currency": "JPY"},
        "refunded": {"amount": "0", "currency": "JPY"},
        "placed_at": "2024-05-01T12:00:00.123Z", "cancelled_at": None,
        "version": 3, "updated_at": "2024-05-01T12:00:03.123Z",
    }


def test_newer_wins_older_and_equal_are_ignored(view: OrderView, redis_url: str, redis_prefix: str) -> None:
    assert view.get_order("A-1") is None
    assert view.put(doc("A-1", 2, status="on_hold")) is True
    assert view.put(doc("A-1", 5, status="shipped")) is True
    assert view.put(doc("A-1", 4, status="cancelled")) is False  # older: ignored
    assert view.put(doc("A-1", 5, status="cancelled")) is False  # equal: no-op
    stored = view.get_order("A-1")
    assert stored is not None
    assert (stored["version"], stored["status"]) == (5, "shipped")
    assert stored["total"] == {"amount": "12.50", "currency": "EUR"}
    # The layout other tools rely on.
    raw = redis.Redis.from_url(redis_url).get(order_key(redis_prefix, "A-1"))
    assert raw is not None and b'"version":5' in raw


def test_batch_write_keeps_newest(view: OrderView) -> None:
    view.put(doc("B-2", 7, status="delivered"))
    batch = [doc("B-1", 1), doc("B-1", 3, status="shipped"), doc("B-1", 2),
             doc("B-2", 6, status="cancelled"), doc("B-3", 1)]
    assert view.put_many(batch) == [False, True, False, False, True]
    b1, b2, b3 = (view.get_order(o) for o in ("B-1", "B-2", "B-3"))
    assert b1 is not None and (b1["version"], b1["status"]) == (3, "shipped")
    assert b2 is not None and (b2["version"], b2["status"]) == (7, "delivered")
    assert b3 is not None and b3["version"] == 1
    # Replaying the same batch changes nothing.
    assert view.put_many(batch) == [False] * 5
    assert view.put_many([]) == []


def test_corrupt_stored_value_is_overwritten(view: OrderView, redis_url: str, redis_prefix: str) -> None:
    redis.Redis.from_url(redis_url).set(order_key(redis_prefix, "C-1"), b"not json")
    assert view.put(doc("C-1", 1)) is True
    stored = view.get_order("C-1")
    assert stored is not None and stored["version"] == 1


def test_large_versions_compare_exactly(view: OrderView) -> None:
    # Lua numbers are doubles: fine up to 2**53, far beyond any per-order change count.
    assert view.put(doc("D-1", 2**52)) is True
    assert view.put(doc("D-1", 2**52 - 1)) is False
    assert view.put(doc("D-1", 2**52 + 1)) is True


async def test_async_view(redis_url: str, redis_prefix: str) -> None:
    view = AsyncOrderView.from_url(redis_url, redis_prefix)
    try:
        assert await view.ping()
        assert await view.get_order("E-1") is None
        assert await view.put_many([doc("E-1", 2), doc("E-1", 1)]) == [True, False]
        assert await view.put(doc("E-1", 2)) is False
        assert await view.put(doc("E-1", 3)) is True
        stored = await view.get_order("E-1")
        assert stored is not None and stored["version"] == 3
    finally:
        await view.close()
