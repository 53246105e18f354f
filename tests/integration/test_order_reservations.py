"""Orders -> reservations -> ATP on the real broker, with the real `shopstream worker orders|inventory`.

An OrderPlaced with two lines on `shop.orders` makes the orders worker emit one ReservationChanged
(reserve) per SKU on `inventory.reservations`, keyed by the SKU and on the same partition as that
SKU's StockSnapshot on `inventory.stock` (produced by confluent-kafka: one partitioner). The
inventory worker, fed a StockSnapshot per SKU, then shows the units in `reserved` and `available`
of the latest AtpLevel on `inventory.atp`. A redelivered OrderPlaced emits nothing, an OrderUpdated
lowering one line adjusts that SKU only, and a whole OrderCancelled releases both SKUs, which
gives their units back to `available`. Nothing lands on a DLQ.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import KafkaError, Message

from shopstream.config import Settings
from shopstream.processors.orders.reservations import reservation_event_id
from shopstream.schemas.models import (
    AtpLevel,
    EventMeta,
    Money,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderUpdated,
    ReservationChanged,
    StockSnapshot,
)
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.workers import start_worker, stop, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.timeout(420)]

T0 = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
ORDER = "res-order-1"
SKU_1, SKU_2 = "RES-SKU-1", "RES-SKU-2"
T = TypeVar("T")


def t(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def meta(event_type: str, minute: int, source: str = "shopify") -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid4()), event_type=event_type, occurred_at=t(minute),
                     recorded_at=t(minute) + timedelta(seconds=2), source=source,
                     correlation_id=f"{source}:order:{ORDER}")


def eur(amount: int) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def order_lines(q1: int, q2: int) -> list[OrderLine]:
    return [OrderLine(line_id="l1", sku=SKU_1, quantity=q1, unit_price=eur(10)),
            OrderLine(line_id="l2", sku=SKU_2, quantity=q2, unit_price=eur(4))]


def test_order_reserves_adjusts_and_releases_stock(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    bootstrap = settings.kafka_bootstrap_servers
    orders, stock = settings.topic("shop.orders"), settings.topic("inventory.stock")
    reservations_topic, atp = settings.topic("inventory.reservations"), settings.topic("inventory.atp")
    producer = make_producer(settings)
    stock_partition: dict[bytes, int] = {}

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        key, partition = msg.key(), msg.partition()
        if msg.topic() == stock and isinstance(key, bytes) and partition is not None:
            stock_partition[key] = partition

    def produce(topic: str, key: str, record: Any) -> None:
        producer.produce(topic, key=key.encode(), value=serde.encode(topic, record), on_delivery=on_delivery)
        assert producer.flush(10) == 0

    def reservations() -> list[tuple[Message, ReservationChanged]]:
        out = []
        for msg in read_all(bootstrap, reservations_topic, idle_s=0.3):
            record = serde.decode(msg.value())
            assert isinstance(record, ReservationChanged)
            out.append((msg, record))
        return out

    def reservations_count(n: int) -> Callable[[], list[tuple[Message, ReservationChanged]] | None]:
        return lambda: (lambda got: got if len(got) >= n else None)(reservations())

    def atp_shows(expected: dict[str, tuple[int, int]]) -> Callable[[], dict[str, AtpLevel] | None]:
        """Latest AtpLevel per SKU once every SKU shows (reserved, available) as expected."""
        def check() -> dict[str, AtpLevel] | None:
            latest: dict[str, AtpLevel] = {}
            for msg in read_all(bootstrap, atp, idle_s=0.3):
                level = serde.decode(msg.value())
                assert isinstance(level, AtpLevel)
                if level.sku not in latest or level.version > latest[level.sku].version:
                    latest[level.sku] = level
            ok = all(sku in latest and (latest[sku].reserved, latest[sku].available) == figures
                     for sku, figures in expected.items())
            return latest if ok else None
        return check

    logs = [tmp_path / "orders.log", tmp_path / "inventory.log"]
    orders_worker = start_worker("orders", settings, logs[0])
    inventory_worker = start_worker("inventory", settings, logs[1])
    try:
        # ERP stock first: 10 (safety 1) and 5 units.
        for sku, on_hand, safety in ((SKU_1, 10, 1), (SKU_2, 5, 0)):
            produce(stock, sku, StockSnapshot(meta=meta("StockSnapshot", 0, "erp"), sku=sku, location="default",
                                              on_hand=on_hand, safety_stock=safety, as_of=t(0)))
        wait_for(atp_shows({SKU_1: (0, 9), SKU_2: (0, 5)}), 120, logs)

        # OrderPlaced with two lines (and the same delivery again): one reserve per SKU.
        placed = OrderPlaced(meta=meta("OrderPlaced", 1), order_id=ORDER, order_number="#1", placed_at=t(1),
                             currency="EUR", total=eur(32), lines=order_lines(2, 3))
        produce(orders, ORDER, placed)
        produce(orders, ORDER, placed)
        got = wait_for(reservations_count(2), 120, logs)
        by_sku = {r.sku: (msg, r) for msg, r in got}
        assert sorted(by_sku) == [SKU_1, SKU_2] and len(got) == 2
        partitioner = DefaultPartitioner()
        for sku, qty in ((SKU_1, 2), (SKU_2, 3)):
            msg, r = by_sku[sku]
            assert msg.key() == sku.encode()
            # murmur2 like every producer: the SKU's partition on inventory.stock (co-partitioned).
            assert msg.partition() == partitioner(sku.encode(), [0, 1, 2, 3], [0, 1, 2, 3])
            assert msg.partition() == stock_partition[sku.encode()]
            assert (r.order_id, r.action, r.quantity, r.delta, r.meta.occurred_at) == (ORDER, "reserve", qty, qty,
                                                                                       t(1))
            assert r.meta.event_id == reservation_event_id(placed.meta.event_id, sku)
            assert r.meta.causation_id == placed.meta.event_id
        wait_for(atp_shows({SKU_1: (2, 7), SKU_2: (3, 2)}), 120, logs)

        # The shop lowers line 2 to one unit: only SKU_2 is adjusted.
        produce(orders, ORDER, OrderUpdated(meta=meta("OrderUpdated", 2), order_id=ORDER, updated_at=t(2),
                                            currency="EUR", total=eur(24), lines=order_lines(2, 1)))
        got = wait_for(reservations_count(3), 120, logs)
        adjust = [r for _, r in got if r.action == "adjust"]
        assert [(r.sku, r.quantity, r.delta, r.meta.occurred_at) for r in adjust] == [(SKU_2, 1, -2, t(2))]
        wait_for(atp_shows({SKU_1: (2, 7), SKU_2: (1, 4)}), 120, logs)

        # Whole cancellation: both SKUs released, units back in available.
        cancel = OrderCancelled(meta=meta("OrderCancelled", 3), order_id=ORDER, cancelled_at=t(3), reason="customer")
        produce(orders, ORDER, cancel)
        got = wait_for(reservations_count(5), 120, logs)
        released = sorted((r.sku, r.quantity, r.meta.occurred_at) for _, r in got if r.action == "release")
        assert released == [(SKU_1, 0, t(3)), (SKU_2, 0, t(3))]
        wait_for(atp_shows({SKU_1: (0, 9), SKU_2: (0, 5)}), 120, logs)

        # Nothing more than those five records (the duplicate OrderPlaced emitted nothing); no DLQ.
        assert len(reservations()) == 5
        for dlq in ("shop.orders.dlq", "inventory.reservations.dlq"):
            assert read_all(bootstrap, settings.topic(dlq), partitions=1, idle_s=0.2) == []
    finally:
        stop(orders_worker)
        stop(inventory_worker)
