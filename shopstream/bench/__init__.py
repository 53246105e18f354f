"""`shopstream bench <scenario>`: measured, never asserted. Each scenario prints one line per run and the median.

| scenario | module | measures |
|---|---|---|
| `orders` | `orders.py` (+ `orders_*.py`) | open-loop orders → state visible, lag, process cost |
| `webhook-latency` | `webhook.py` | webhook accepted → order readable on the read API (`shopstream dev`) |
| `atp-snapshot` | `atp.py` | ERP snapshot file → ATP in Redis and shop commands (`shopstream dev`) |
| `reservations` | `reservations.py` | OrderPlaced → ReservationChanged through one orders worker |
| `shop-sync` | `shop_sync.py` | AtpLevel → coalesced SyncShopStock, the shop-sync loop in-process |
| `views-sink` | `views_sink.py` | AtpLevel → Redis, the view sink in-process |
| `shop-stock` | `shop_stock.py` | shop writer → local Shopify double: commands/s, 1M-SKU first load at the budget |
| `catalog-checks` | `catalog_checks.py` | catalog quality checks in-process, without and with the cross-product index |

Shared pieces (stack start-up, producing, percentiles and medians) are in `common.py`. The arguments
are declared in cli.py with every other command's, so that no production process imports this package:
cli.py imports it only in the `bench` handler. This module dispatches to the scenario named and imports
no scenario until one runs. A bad argument exits 2 naming it (argparse); a run that cannot be measured
(records lost, a timeout, a wrong result) exits 1.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from shopstream.config import Settings


def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run the scenario `args` name (parsed by cli.py); 0 measured, 1 a run could not be measured."""
    from shopstream.bench.common import BenchError

    if settings.log_level != "DEBUG":  # in-process components log at INFO; the figures are the output
        logging.getLogger().setLevel(logging.WARNING)
    try:
        return _run(args, settings)
    except BenchError as exc:
        print(f"shopstream bench {args.scenario}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.scenario == "webhook-latency":
        from shopstream.bench.webhook import run_webhook_bench

        return run_webhook_bench(args.orders, args.runs, args.pace)
    if args.scenario == "orders":
        from shopstream.bench.orders import run_orders_bench

        return run_orders_bench(settings, rate=args.rate, duration=args.duration, runs=args.runs,
                                stripe_share=args.stripe_share, connections=args.connections,
                                settle_s=args.settle, find_max=args.find_max, max_rate=args.max_rate,
                                spawn=args.spawn, as_json=args.json)
    if args.scenario == "atp-snapshot":
        from shopstream.bench.atp import run_atp_bench

        if args.changed_only and args.changed_pct >= 100:
            print("shopstream bench atp-snapshot: --changed-only needs --changed-pct below 100 (with every "
                  "line changed there is nothing to skip)", file=sys.stderr)
            return 2
        return run_atp_bench(args.skus, args.runs, args.timeout, args.single_record_batches, args.changed_pct,
                             args.changed_only)
    if args.scenario == "reservations":
        from shopstream.bench.reservations import run_reservations_bench

        return run_reservations_bench(settings, args.orders, args.runs, args.skus,
                                      without_reservations=args.without_reservations,
                                      with_baseline=args.with_baseline,
                                      single_record_batches=args.single_record_batches,
                                      workers=args.workers)
    if args.scenario == "shop-sync":
        from shopstream.bench.shop_sync import run_shop_sync_bench

        return run_shop_sync_bench(settings, args.records, args.runs, window_ms=args.window_ms,
                                   scenario=args.scenario_kind, single_record_batches=args.single_record_batches,
                                   preload_single=args.preload_single, breakdown=args.breakdown)
    if args.scenario == "shop-stock":
        from shopstream.bench.shop_stock import run_shop_stock_bench

        return run_shop_stock_bench(args.skus, args.first_load, args.mutation_cost, args.runs)
    if args.scenario == "catalog-checks":
        from shopstream.bench.catalog_checks import run_catalog_checks_bench

        return run_catalog_checks_bench(args.products, args.runs)
    from shopstream.bench.views_sink import run_views_sink_bench

    return run_views_sink_bench(settings, args.records, args.runs, args.batch_size, args.single_record_batches)
