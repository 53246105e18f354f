"""`shopstream bench shop-stock`: the shop writer's core and Shopify GraphQL client against the local API double.

Two figures per run, measured, never asserted:

- **commands/s into the shop**: `--skus` SyncShopStock figures offered to the writer's core and flushed
  through the real HTTP client into the double with an unlimited budget, i.e. what shopstream's side
  costs (offer, batching, JSON, HTTP, settling), one process, one connection.
- **first load at Shopify's default budget**: `--first-load` SKUs written through the same client into
  the double with the documented default bucket (1,000 points, 50/s restore, `--mutation-cost` per
  mutation) on a *virtual* clock shared by the client and the double: the client's waits advance it
  instead of sleeping, so the run reports the time the shop's budget imposes (shop time) in seconds of
  wall time. The same load as one call per SKU costs `first_load x mutation_cost / 50` seconds of
  budget (computed: sending a million requests adds nothing but waiting); the ratio is the batch
  size.
"""

from __future__ import annotations

import math
import threading
import time
import uuid

from shopstream.bench.common import BenchError, median, repeat
from shopstream.bench.fake_shop import TOKEN, FakeShop, running
from shopstream.processors.shop_writer import core
from shopstream.processors.shop_writer.clients import ShopifyGraphQL
from shopstream.processors.shop_writer.config import Retries, Shopify, ShopifyGraphQLLimits

LOCATION = "gid://shopify/Location/1"


class VirtualClock:
    """A clock that only moves when someone sleeps on it (shared by the client and the double)."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """The virtual time."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance instead of waiting."""
        with self._lock:
            self._now += max(0.0, seconds)


def _entries(skus: int) -> tuple[dict[str, core.SkuEntry], dict[str, str]]:
    entries: dict[str, core.SkuEntry] = {}
    items: dict[str, str] = {}
    for i in range(skus):
        sku = f"BENCH-{i}"
        command = core.StockCommand(sku=sku, available=i % 50, atp_version=1, event_id=str(uuid.UUID(int=i + 1)),
                                    offset=i)
        entries[sku] = core.offer(None, command).entry
        items[sku] = f"gid://shopify/InventoryItem/{i + 1}"
    return entries, items


def _throughput(skus: int) -> float:
    """Commands per second offered and written with an unlimited budget."""
    shop = FakeShop(gql_bucket=1e12, gql_restore=1e12)
    with running(shop) as url:
        client = ShopifyGraphQL(Shopify(shop_url=url, location_id=LOCATION,
                                        graphql=ShopifyGraphQLLimits(bucket=1e12, restore_per_s=1e12)),
                                TOKEN, Retries())
        started = time.perf_counter()
        entries, items = _entries(skus)
        flushed = core.flush(entries, 0.0, client.write, items, max_attempts=3)
        elapsed = time.perf_counter() - started
    applied = sum(1 for r in flushed.results if r.outcome == "applied")
    if applied != skus:
        raise BenchError(f"{skus - applied} of {skus} figures were not applied")
    return skus / elapsed


def _first_load(skus: int, cost: float) -> tuple[float, int, int, float]:
    """(shop seconds, mutations, throttled answers, wall seconds) of a first load at the default budget."""
    clock = VirtualClock()
    shop = FakeShop(gql_bucket=1000, gql_restore=50, gql_cost=cost, clock=clock.now)
    with running(shop) as url:
        client = ShopifyGraphQL(Shopify(shop_url=url, location_id=LOCATION,
                                        graphql=ShopifyGraphQLLimits(mutation_cost=cost)),
                                TOKEN, Retries(), now=clock.now, sleep=clock.sleep)
        started = time.perf_counter()
        entries, items = _entries(skus)
        flushed = core.flush(entries, 0.0, client.write, items, max_attempts=3)
        wall = time.perf_counter() - started
    if sum(1 for r in flushed.results if r.outcome == "applied") != skus:
        raise BenchError("the first load did not apply every figure")
    if any(r["after"] < 0 for r in shop.log):
        raise BenchError("the shop's budget went negative")
    mutations = sum(1 for r in shop.log if not r["throttled"])
    return clock.now(), mutations, client.stats.throttled, wall


def run_shop_stock_bench(skus: int, first_load: int, mutation_cost: float, runs: int) -> int:
    """Measure both figures `runs` times; print each run and the medians."""
    results = repeat(runs, lambda _: (_throughput(skus), *_first_load(first_load, mutation_cost)),
                     lambda n, r: (f"run {n}: {r[0]:,.0f} commands/s into the shop (unlimited budget, {skus:,} SKUs); "
                                   f"first load of {first_load:,} SKUs at the default budget: {r[1]:,.0f} s of shop "
                                   f"time ({r[2]:,} mutations, {r[3]} throttled, {r[4]:.1f} s wall)"))
    shop_s = median(results, lambda r: r[1])
    per_sku_s = first_load * mutation_cost / 50.0
    print(f"median: {median(results, lambda r: r[0]):,.0f} commands/s; first load {shop_s:,.0f} s "
          f"({shop_s / 60:,.1f} min) bounded by the budget (1,000 points, 50/s, {mutation_cost:g} per mutation of "
          f"250); one call per SKU would need {per_sku_s:,.0f} s ({per_sku_s / 3600:,.1f} h): batching is "
          f"{per_sku_s / shop_s if shop_s else math.inf:,.0f}x faster")
    return 0
