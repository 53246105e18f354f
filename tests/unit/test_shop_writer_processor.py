"""The shop writer's adapter without a broker: what a flush (the runner's tick) writes, settles and stores."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from shopstream.config import load_settings
from shopstream.processors.shop_writer import core
from shopstream.processors.shop_writer.clients import Answer
from shopstream.processors.shop_writer.config import ShopItem, ShopWriterConfig
from shopstream.processors.shop_writer.core import SkuEntry, StockCommand, Write, WriteOutcome
from shopstream.processors.shop_writer.worker import ShopWriterProcessor


class _NoOrders:
    """The price/order client: these tests flush stock only."""

    def update_price(self, item: ShopItem, price: Decimal) -> Answer:
        raise AssertionError("no price here")

    def cancel_order(self, order_id: str, staff_note: str | None = None) -> Answer:
        raise AssertionError("no order here")


def _processor(tmp_path: Path, calls: list[list[Write]]) -> ShopWriterProcessor:
    def write(writes: Sequence[Write]) -> list[WriteOutcome]:
        calls.append(list(writes))
        return [WriteOutcome(w, True) for w in writes]

    settings = load_settings(kafka_bootstrap_servers="127.0.0.1:9", schema_registry_url="http://127.0.0.1:9",
                             state_dir=str(tmp_path))
    config = ShopWriterConfig(flush_interval_s=1.0, items={f"S{i}": f"gid://shopify/InventoryItem/{i}"
                                                            for i in range(600)})
    processor = ShopWriterProcessor(settings, config=config, write=write, orders_and_prices=_NoOrders())
    processor._results = lambda effects, results: None  # type: ignore[method-assign]  # no registry here
    return processor


def _states(n: int, offered_at: float) -> dict[int, dict[bytes, SkuEntry]]:
    states: dict[int, dict[bytes, SkuEntry]] = {0: {}, 1: {}}
    for i in range(n):
        cmd = StockCommand(f"S{i}", i, 1, str(uuid.UUID(int=i + 1)), offset=i, offered_at=offered_at)
        states[i % 2][f"S{i}".encode()] = core.offer(None, cmd).entry
    return states


def test_a_young_partial_batch_waits_full_batches_go(tmp_path: Path) -> None:
    calls: list[list[Write]] = []
    processor = _processor(tmp_path, calls)
    assert list(processor.tick(100.2, _states(100, offered_at=100.0))) == []  # < 250 and younger than 1 s
    out = dict(processor.tick(100.2, _states(600, offered_at=100.0)))
    assert [len(c) for c in calls] == [500]  # two full batches; the other 100 wait for more or for age
    stored = {k: v for effects in out.values() for k, v in effects.writes.items()}
    assert len(stored) == 500 and all(e.applied is not None and e.pending is None for e in stored.values())
    assert set(out) == {0, 1}  # each SKU's entry goes back to its own partition


def test_an_old_partial_batch_goes(tmp_path: Path) -> None:
    calls: list[list[Write]] = []
    processor = _processor(tmp_path, calls)
    out = dict(processor.tick(102.0, _states(100, offered_at=100.0)))
    assert [len(c) for c in calls] == [100] and sum(len(e.writes) for e in out.values()) == 100
