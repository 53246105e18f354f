"""Shop writer (`shopstream worker shop-writer`): the pure `core` on the runner, the shop's API through `clients`.

Consumes `commands.shop` (co-partition group `shop_command` with its changelog
`shop-writer-skus-changelog`). Per record (`handle`):
  - SyncShopStock: decoded and offered to its SKU's `core.SkuEntry` in the runner's state store; the
    commands it supersedes get their `superseded` result on `commands.shop.results` at once. A key
    that is not the command's SKU, or a SKU with no shop item in the configuration, is a permanent
    error: the runner parks the record on `commands.shop.dlq` with its context headers.
  - CancelOrder, UpdateShippingAddress, UpdatePrice: not this writer's (it only writes stock): acknowledged, nothing
    written.
  - anything else or undecodable: parked on the DLQ by the runner.
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
`SHOPSTREAM_SHOPIFY_ACCESS_TOKEN` / `SHOPSTREAM_WOOCOMMERCE_KEY` + `_SECRET` (Kubernetes Secrets).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shopstream.config import Settings
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.metrics import RECORDS_IN
from shopstream.processing import RetryPolicy, park
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.runner.producer import ConfirmingProducer
from shopstream.schemas.models import CancelOrder, SyncShopStock, UpdatePrice, UpdateShippingAddress
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import Topology, load_topology_for, names

from . import core
from .clients import ShopifyGraphQL, ShopifyRest, WooCommerceRest
from .config import ShopWriterConfig, load_shop_writer_config
from .core import SkuEntry, StockCommand, Write, WriteOutcome

log = logging.getLogger(__name__)

PROCESSOR = "shop-writer"
TABLE = "skus"
INPUTS = {names.COMMANDS_SHOP: (SyncShopStock, CancelOrder, UpdateShippingAddress, UpdatePrice)}
RESULTS = names.COMMANDS_SHOP_RESULTS
MAX_PER_FLUSH = 2500  # 10 Shopify mutations: a flush never blocks the loop long on the budget


class ShopRejected(Exception):
    """The shop refused a stock write for good (its status and message; the DLQ error class)."""


class ConfigurationError(RuntimeError):
    """A credential or setting the writer needs is missing (names the variable)."""


def make_client(cfg: ShopWriterConfig, env: Mapping[str, str] | None = None) -> Callable[[list[Write]],
                                                                                         list[WriteOutcome]]:
    """The configured platform's `write` (credentials from the environment)."""
    env = os.environ if env is None else env
    if cfg.platform == "woocommerce":
        key, secret = env.get("SHOPSTREAM_WOOCOMMERCE_KEY"), env.get("SHOPSTREAM_WOOCOMMERCE_SECRET")
        if not key or not secret:
            raise ConfigurationError("SHOPSTREAM_WOOCOMMERCE_KEY and SHOPSTREAM_WOOCOMMERCE_SECRET must be set")
        return WooCommerceRest(cfg.woocommerce, key, secret, cfg.retries).write
    token = env.get("SHOPSTREAM_SHOPIFY_ACCESS_TOKEN")
    if not token:
        raise ConfigurationError("SHOPSTREAM_SHOPIFY_ACCESS_TOKEN must be set")
    if cfg.shopify.api == "rest":
        return ShopifyRest(cfg.shopify, token, cfg.retries).write
    return ShopifyGraphQL(cfg.shopify, token, cfg.retries).write


class ShopWriterProcessor(ProcessorBase):
    """The shop writer on the runner: state = one `core.SkuEntry` per SKU."""

    name = PROCESSOR
    inputs: tuple[str, ...] = tuple(INPUTS)
    batch_size = 2000

    def __init__(self, settings: Settings, *, config: ShopWriterConfig | None = None,
                 write: Callable[[list[Write]], list[WriteOutcome]] | None = None,
                 topology: Topology | None = None) -> None:
        self.settings = settings
        self.config = config or load_shop_writer_config(os.environ.get("SHOPSTREAM_SHOP_WRITER_CONFIG") or None)
        self.write = write or make_client(self.config)
        topology = topology or load_topology_for(settings)
        self.changelog = topology.table_changelog(PROCESSOR, TABLE, INPUTS).name
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

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Offer a SyncShopStock to its SKU's entry (raises on what the runner must park)."""
        event = self.serde.decode(record.value)
        if isinstance(event, CancelOrder | UpdateShippingAddress | UpdatePrice):
            return Effects()  # for the shop's order and price adapters, not this stock writer
        if not isinstance(event, SyncShopStock):
            raise TypeError(f"{type(event).__name__} does not belong on {record.label}")
        key = event.sku.encode()
        if record.key != key:
            raise ValueError(f"record key {record.key!r} is not the command's SKU {event.sku!r}")
        if event.sku not in self.config.items:
            raise LookupError(f"unknown item: no shop item id for SKU {event.sku!r} (topology/shop_writer.yaml items)")
        offered = core.offer(state.get(key), StockCommand.of(event, record.offset, time.time(), record.value))
        effects = Effects()
        if offered.duplicate:
            RECORDS_IN.labels(PROCESSOR, record.label, "duplicate").inc()
            return effects
        self._results(effects, offered.results)
        effects.writes[key] = offered.entry
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
        flushed = core.flush(entries, now, self.write, self.config.items, max_attempts=retries.max_attempts,
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
