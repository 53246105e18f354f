"""Shop writer (`shopstream worker shop-writer`): the pure `core` on the runner, the shop's API through `clients`.

Consumes `commands.shop` (co-partition group `shop_command` with its changelog
`shop-writer-skus-changelog`) and `catalog.products` (keyed by SKU like the SKU commands, with the same
partition count — checked at start — so a SKU's product records and commands meet on one partition and
its state entry). Per record (`handle`):
  - SyncShopStock: decoded and offered to its SKU's `core.SkuEntry` in the runner's state store; the
    commands it supersedes get their `superseded` result on `commands.shop.results` at once.
  - UpdatePrice: written at once (`update_price`: Shopify `productVariantsBulkUpdate`, WooCommerce
    `regular_price`), the SKU's ids as for stock.
  - CancelOrder: written at once (`cancel_order`: Shopify `orderCancel`, WooCommerce status `cancelled`).
  - UpdateShippingAddress: parked on `commands.shop.dlq` (`AddressNotStructured`): the command carries the
    address as the approving person typed it (`address_text`), and both shops take only a structured
    address (Shopify `orderUpdate` MailingAddressInput, WooCommerce `shipping{address_1, city, ...}`);
    guessing the parts would ship to a wrong address. A person enters it in the shop's admin; the DLQ
    is the work list. (Once the command carries an `Address`, write it here.)
  - ProductUpserted from the shop itself: its ids are learned into the SKU's entry (`items`); other
    catalog records are the catalog worker's and teach the writer nothing.
  - anything else or undecodable: parked on the DLQ by the runner.
A key that is not the record's SKU, or a SKU with no shop ids (learned or in the configuration's
`items`), is a permanent error: the runner parks the record on its DLQ with its context headers (re-drive
it once the ids are known). For price and cancel, the shop's 4xx / userErrors are permanent (parked with
the shop's status and message); 5xx, timeouts and throttling past the client's patience are transient
(`ShopUnavailable`, a ConnectionError: the runner retries in place, the partition waiting).
The entry is stored only after the broker confirmed the results and the changelog record, so an
acknowledged command is always either pending in the store or settled.

Every `flush_interval_s` (`tick`), the pending figures of all owned partitions (at most
`max_per_flush`, oldest first) are written in one client call, which batches them (Shopify GraphQL:
250 per mutation) and waits for the shop's budget; each SKU is settled (`applied` / `failed` result,
or a retry time for a transient failure) and its entry stored. The wait for budget happens in the
runner's thread between polls, so `max_per_flush` bounds it well below the consumer's poll interval.

Crash safety: a SIGKILL between the shop's answer and the stored entry writes the figure again after
the restart (an absolute figure: harmless); a pending figure is in the changelog, so nothing is lost;
the uncommitted tail of commands is read again and its duplicates are recognised by event id. A stale
command never overwrites a newer figure: the entry keeps the applied ATP version per SKU.

A command the shop refused for good at a flush (401, 403, 404, 422, a userError) gets its `failed`
result with the shop's error and is parked on `commands.shop.dlq` with the context headers (original
partition and offset, error class and message: the shop's status and message, no PII) by the writer's
own DLQ writer (Effects carry no headers), confirmed before the flush's effects are stored.
Configuration: `topology/shop_writer.yaml` (or `SHOPSTREAM_SHOP_WRITER_CONFIG`); credentials from
`SHOPSTREAM_SHOPIFY_ACCESS_TOKEN` / `SHOPSTREAM_WOOCOMMERCE_CONSUMER_KEY` + `_CONSUMER_SECRET` (Settings;
Kubernetes Secrets in the chart).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from shopstream.config import Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.metrics import RECORDS_IN
from shopstream.processing import RetryPolicy, park
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.runner.producer import ConfirmingProducer
from shopstream.schemas.models import (
    CancelOrder,
    ProductDeleted,
    ProductUpserted,
    PromotionScheduled,
    SyncShopStock,
    UpdatePrice,
    UpdateShippingAddress,
)
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import Topology, TopologyError, load_topology_for, names

from . import core
from .clients import Answer, ShopifyGraphQL, ShopifyRest, WooCommerceRest
from .config import ShopItem, ShopWriterConfig, load_shop_writer_config
from .core import SkuEntry, StockCommand, Write, WriteOutcome
from .items import learned_item, resolve

log = logging.getLogger(__name__)

PROCESSOR = "shop-writer"
TABLE = "skus"
COMMANDS = {names.COMMANDS_SHOP: (SyncShopStock, CancelOrder, UpdateShippingAddress, UpdatePrice)}
INPUTS = {**COMMANDS, names.CATALOG_PRODUCTS: (ProductUpserted, ProductDeleted, PromotionScheduled)}
RESULTS = names.COMMANDS_SHOP_RESULTS
MAX_PER_FLUSH = 2500  # 10 Shopify mutations: a flush never blocks the loop long on the budget


class ShopRejected(Exception):
    """The shop refused a write for good (its status and message; the DLQ error class)."""


class ShopUnavailable(ConnectionError):
    """The shop answered 5xx, timed out or kept throttling: transient (the runner retries in place)."""


class AddressNotStructured(Exception):
    """UpdateShippingAddress carries free text; the shops take only structured addresses (see the docstring)."""


class OrdersAndPrices(Protocol):
    """The client verbs for the commands written at once (`clients`)."""

    def update_price(self, item: ShopItem, price: Decimal) -> Answer: ...

    def cancel_order(self, order_id: str, staff_note: str | None = None) -> Answer: ...


class ConfigurationError(RuntimeError):
    """A credential or setting the writer needs is missing (names the variable)."""


def make_clients(cfg: ShopWriterConfig, settings: Settings) -> tuple[
        Callable[[list[Write]], list[WriteOutcome]], OrdersAndPrices]:
    """The configured platform's stock `write` and its price/order client (credentials from the settings).

    Shopify prices and cancellations always go through GraphQL (its REST Admin API is legacy), also
    when stock is written through REST; the two keep separate buckets, as Shopify meters them.
    """
    if cfg.platform == "woocommerce":
        key = settings.woocommerce_consumer_key.get_secret_value()
        secret = settings.woocommerce_consumer_secret.get_secret_value()
        if not key or not secret:
            raise ConfigurationError("SHOPSTREAM_WOOCOMMERCE_CONSUMER_KEY and SHOPSTREAM_WOOCOMMERCE_CONSUMER_SECRET "
                                     "must be set")
        woo = WooCommerceRest(cfg.woocommerce, key, secret, cfg.retries)
        return woo.write, woo
    token = settings.shopify_access_token.get_secret_value()
    if not token:
        raise ConfigurationError("SHOPSTREAM_SHOPIFY_ACCESS_TOKEN must be set")
    graphql = ShopifyGraphQL(cfg.shopify, token, cfg.retries)
    if cfg.shopify.api == "rest":
        return ShopifyRest(cfg.shopify, token, cfg.retries).write, graphql
    return graphql.write, graphql


class ShopWriterProcessor(ProcessorBase):
    """The shop writer on the runner: state = one `core.SkuEntry` per SKU."""

    name = PROCESSOR
    inputs: tuple[str, ...] = tuple(INPUTS)
    batch_size = 2000

    def __init__(self, settings: Settings, *, config: ShopWriterConfig | None = None,
                 write: Callable[[list[Write]], list[WriteOutcome]] | None = None,
                 orders_and_prices: OrdersAndPrices | None = None, topology: Topology | None = None) -> None:
        self.settings = settings
        self.config = config or load_shop_writer_config(settings.shop_writer_config or None)
        if write is None or orders_and_prices is None:
            made_write, made_other = make_clients(self.config, settings)
            write, orders_and_prices = write or made_write, orders_and_prices or made_other
        self.write, self.shop = write, orders_and_prices
        topology = topology or load_topology_for(settings)
        changelog = topology.table_changelog(PROCESSOR, TABLE, COMMANDS)
        products = topology.topic(names.CATALOG_PRODUCTS)
        if products.partitions != changelog.partitions:
            raise TopologyError(f"{names.CATALOG_PRODUCTS} has {products.partitions} partitions, "
                                f"{names.COMMANDS_SHOP} {changelog.partitions}: the shop writer learns a SKU's ids "
                                "on the partition of its commands, so they must be equal")
        self.changelog = changelog.name
        self.products_topic = settings.topic(names.CATALOG_PRODUCTS)
        self.tick_interval_s = self.config.flush_interval_s
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        self.results_topic = settings.topic(RESULTS)
        self.input_topic = settings.topic(names.COMMANDS_SHOP)
        self._dlq: DeadLetterWriter | None = None
        self._routes = topology.dlq_routes(settings.topic_prefix)
        self.platform = self.config.platform
        shopify = self.config.shopify
        self.batch = (self.config.woocommerce.batch_size if self.platform == "woocommerce"
                      else shopify.graphql.batch_size if shopify.api == "graphql" else 1)

    def item(self, sku: str, state: Mapping[bytes, Any]) -> ShopItem | None:
        """The SKU's shop ids: the configuration's `items` over what its entry learned."""
        entry = state.get(sku.encode())
        return resolve(self.config.items, sku, entry.item if entry is not None else None)

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Apply one record (see the module docstring; raises on what the runner must park or retry)."""
        event = self.serde.decode(record.value)
        if record.topic == self.products_topic:
            return self._learn(record, event, state)
        if isinstance(event, UpdateShippingAddress):
            raise AddressNotStructured(
                "UpdateShippingAddress carries the address as free text (address_text) and the shop's API takes "
                "only a structured address: enter it in the shop's admin, then discard this record")
        if isinstance(event, CancelOrder):
            note = " ".join(p for p in (f"shopstream: {event.reason}" if event.reason else "shopstream",
                                        f"by {event.requested_by}" if event.requested_by else "") if p)
            self._answered(self.shop.cancel_order(event.order_id, note))
            return Effects()
        if not isinstance(event, SyncShopStock | UpdatePrice):
            raise TypeError(f"{type(event).__name__} does not belong on {record.label}")
        key = event.sku.encode()
        if record.key != key:
            raise ValueError(f"record key {record.key!r} is not the command's SKU {event.sku!r}")
        item = self.item(event.sku, state)
        if isinstance(event, UpdatePrice):
            if item is None:
                raise LookupError(f"unknown item: no shop ids for SKU {event.sku!r} (neither learned from the "
                                  "shop's product webhooks nor in topology/shop_writer.yaml items)")
            self._answered(self.shop.update_price(item, event.price.amount))
            return Effects()
        if item is None or not item.item_id:
            raise LookupError(f"unknown item: no shop item id for SKU {event.sku!r} (neither learned from the "
                              "shop's product webhooks nor in topology/shop_writer.yaml items)")
        offered = core.offer(state.get(key), StockCommand.of(event, record.offset, time.time(), record.value))
        effects = Effects()
        if offered.duplicate:
            RECORDS_IN.labels(PROCESSOR, record.label, "duplicate").inc()
            return effects
        self._results(effects, offered.results)
        effects.writes[key] = offered.entry
        return effects

    @staticmethod
    def _answered(answer: Answer) -> None:
        """Raise what the runner must retry (transient) or park (permanent); nothing when the shop took it."""
        if answer.ok:
            return
        if answer.permanent:
            raise ShopRejected(answer.error or "refused")
        raise ShopUnavailable(answer.error or "shop unavailable")

    def _learn(self, record: Record, event: Any, state: Mapping[bytes, Any]) -> Effects:
        """Keep the shop's ids of a SKU from the shop's own ProductUpserted (other catalog records: nothing)."""
        if not isinstance(event, ProductUpserted | ProductDeleted | PromotionScheduled):
            raise TypeError(f"{type(event).__name__} does not belong on {record.label}")
        learned = learned_item(event, self.platform) if isinstance(event, ProductUpserted) else None
        if learned is None or record.key != event.sku.encode():
            return Effects()  # the catalog worker's business; the writer only learns ids from the shop
        entry = state.get(record.key) or SkuEntry()
        effects = Effects()
        if entry.item != learned:
            effects.writes[record.key] = replace(entry, item=learned)
        return effects

    def _results(self, effects: Effects, results: Sequence[core.Result]) -> None:
        now = datetime.now(UTC)
        for result in results:
            record = core.result_record(result, self.platform, now)
            effects.outputs.append((RESULTS, result.command.sku.encode(), self.serde.encode(self.results_topic,
                                                                                             record)))

    def tick(self, now: float, states: Mapping[int, Mapping[bytes, Any]]) -> Iterator[tuple[int, Effects]]:
        """Write the due figures of every owned partition in one client call; settle each per partition."""
        entries: dict[str, SkuEntry] = {}
        home: dict[str, int] = {}
        for partition, state in states.items():
            for key, entry in state.items():
                if entry is not None and entry.pending is not None and entry.not_before <= now:
                    sku = key.decode()
                    entries[sku], home[sku] = entry, partition
        if not entries:
            return
        # Coalescing window: a partial batch waits for more figures while its oldest is younger than one
        # flush interval, so a burst read over several polls still goes out in full batches.
        oldest = min(e.pending.offered_at for e in entries.values() if e.pending is not None)
        limit = MAX_PER_FLUSH
        if now - oldest < self.config.flush_interval_s:
            limit = min(limit, len(entries) // self.batch * self.batch)  # full batches only
            if not limit:
                return
        retries = self.config.retries
        items = {sku: item.item_id for sku, entry in entries.items()
                 if (item := resolve(self.config.items, sku, entry.item)) is not None and item.item_id}
        flushed = core.flush(entries, now, self.write, items, max_attempts=retries.max_attempts,
                             backoff_base_s=retries.backoff_base_s, limit=limit)
        per: dict[int, Effects] = {}
        for sku, entry in flushed.entries.items():
            per.setdefault(home[sku], Effects()).writes[sku.encode()] = entry
        for result in flushed.results:
            self._results(per.setdefault(home[result.command.sku], Effects()), [result])
        for result in flushed.failed:
            log.warning("shop writer: SKU %s failed: %s", result.command.sku, result.error)
            self._park(result, home[result.command.sku])
        yield from per.items()

    def _park(self, result: core.Result, partition: int) -> None:
        """Park a command the shop refused for good on commands.shop.dlq (returns once confirmed)."""
        cmd = result.command
        if cmd.raw is None:
            return
        if self._dlq is None:
            producer = ConfirmingProducer(self.settings, **{"client.id": f"shopstream-{PROCESSOR}-dlq"})
            self._dlq = DeadLetterWriter(producer, PROCESSOR, self._routes)
        record = FailedRecord(topic=self.input_topic, key=cmd.sku.encode(), value=cmd.raw, partition=partition,
                              offset=cmd.offset)
        failure = Failure(error=ShopRejected(result.error or "refused"), stage="shop-write", attempts=result.attempts)
        park(record, failure, self._dlq, RetryPolicy(max_elapsed_s=self.settings.retry_max_elapsed_s))

    def encode_state(self, value: Any) -> bytes:
        """`SkuEntry.to_dict()` as JSON."""
        return json.dumps(value.to_dict(), separators=(",", ":")).encode()

    def decode_state(self, data: bytes) -> SkuEntry:
        """A changelog value back into the `SkuEntry`."""
        return SkuEntry.from_dict(json.loads(data))


def run(settings: Settings, web_port: int | None = None) -> None:
    """Run the shop writer in the foreground until interrupted."""
    run_processor(settings, ShopWriterProcessor(settings), web_port=web_port)
