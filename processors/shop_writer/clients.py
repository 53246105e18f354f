"""HTTP clients of the shop writer: Shopify Admin GraphQL / REST and WooCommerce REST, each within its limits.

Every request of every client goes through ONE path, `_Client._send`: wait until the modelled bucket
(`limits.LeakyBucket`) has room for the request's cost, send, let the client correct the model from
the answer (`_observe`: Shopify REST's `X-Shopify-Shop-Api-Call-Limit`, GraphQL's `throttleStatus`),
wait out a 429 (`Retry-After`) or a GraphQL THROTTLED answer and send again (at most
`max_throttle_retries` times), and classify the rest: HTTP 5xx, timeouts and connection errors are
transient (`Refused(permanent=False)`), other 4xx (401, 403, 404, 422) permanent. Error texts carry the
shop's status and message only (no PII). `now` and `sleep` are injectable, so tests run against a fake
shop without real waiting.

Verbs (each answers per command: applied, failed for good, or transient):
  write(writes)         the available quantity of each `Write` (stock; batched, see below)
  update_price(item, p) a variant's selling price (UpdatePrice)
  cancel_order(id, ...) cancel an order in the shop (CancelOrder)

  ShopifyGraphQL  stock: `inventorySetQuantities` (name `available`, up to `batch_size` quantities per
                  mutation, `referenceDocumentUri` naming the command, `ignoreCompareQuantity`: the
                  shop's figure also moves with its own sales, so a compare against the figure we
                  wrote last would fail after every sale; staleness is decided before the write by the
                  writer's per-SKU versions (`core`), in the one partition that owns the SKU). userErrors
                  naming `input.quantities.<i>` fail those writes for good and the rest of the batch is
                  sent again without them. Price: `productVariantsBulkUpdate(productId, variants: [{id,
                  price}])`. Cancel: `orderCancel(orderId, reason: OTHER, refund: false, restock: true,
                  notifyCustomer: false, staffNote)` — refunds are the backbone's own IssueRefund
                  commands, so the shop does not refund a second time. Each mutation's cost is learned
                  from its answers' `requestedQueryCost`.
  ShopifyRest     stock only: `POST inventory_levels/set.json` per write, paced by the 40-request bucket
                  leaking 2/s. Price and cancel go through GraphQL even then (REST Admin is legacy at
                  Shopify; the worker builds both clients).
  WooCommerce     stock and price: `POST /wp-json/wc/v3/products/batch` (`update: [{id, stock_quantity}]`
                  / `[{id, regular_price}]`, up to 100), variations (item id `<parent>/<variation>`)
                  through their parent's variations batch; per-item `error` fails that item. Cancel:
                  `PUT /wp-json/wc/v3/orders/<id>` `{"status": "cancelled"}`. Paced at `requests_per_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from .config import Retries, Shopify, ShopItem, WooCommerce
from .core import Write, WriteOutcome
from .limits import LeakyBucket, call_limit, graphql_costs, graphql_throttle_status, is_throttled, retry_after_s

MUTATION = """mutation SetAvailable($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id }
    userErrors { code field message }
  }
}"""
PRICE_MUTATION = """mutation SetPrice($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id price }
    userErrors { code field message }
  }
}"""
CANCEL_MUTATION = """mutation Cancel($orderId: ID!, $staffNote: String) {
  orderCancel(orderId: $orderId, reason: OTHER, refund: false, restock: true, notifyCustomer: false,
              staffNote: $staffNote) {
    job { id done }
    orderCancelUserErrors { code field message }
  }
}"""


@dataclass
class ClientStats:
    """Counters for metrics and the benchmark."""

    requests: int = 0
    throttled: int = 0
    waited_s: float = 0.0
    log: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Refused:
    """A request the shop did not take: for good (`permanent`) or for now; the shop's status and message."""

    error: str
    permanent: bool = False


@dataclass(frozen=True)
class Answer:
    """What became of one price or order command: done, or refused (see `Refused`)."""

    ok: bool
    permanent: bool = False
    error: str | None = None

    @classmethod
    def of(cls, refused: Refused) -> Answer:
        """The answer of a refused request."""
        return cls(False, refused.permanent, refused.error)


def _http_error(resp: httpx.Response) -> str:
    return f"HTTP {resp.status_code}: {resp.text[:300]}"


def price_text(amount: Decimal) -> str:
    """A price as the shops' APIs take it: a decimal string with two places (cents)."""
    return str(amount.quantize(Decimal("0.01")))


class _Client:
    """The one request path (`_send`): pace on `bucket`, send, observe, wait out throttling, classify."""

    platform = "shop"

    def __init__(self, http: httpx.Client | None, retries: Retries, bucket: LeakyBucket, now: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        self.http = http or httpx.Client(timeout=30.0)
        self.retries = retries
        self.bucket = bucket
        self.now = now
        self._sleep = sleep
        self.stats = ClientStats()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.waited_s += seconds
            self._sleep(seconds)

    def _observe(self, resp: httpx.Response) -> float | None:
        """Correct the bucket from an answer; seconds to wait when the answer says throttled (else None)."""
        used = call_limit(resp.headers.get("X-Shopify-Shop-Api-Call-Limit"))
        if used is not None:
            self.bucket.observe(used[1] - used[0], self.now(), capacity=used[1])
        if resp.status_code == 429:
            return retry_after_s(resp.headers.get("Retry-After"))
        return None

    def _send(self, method: str, url: str, cost: float = 1.0, **kwargs: Any) -> httpx.Response | Refused:
        """Send one request within the bucket; the 2xx answer, or why not (see the module docstring)."""
        for _ in range(self.retries.max_throttle_retries):
            self.sleep(self.bucket.wait_s(cost, self.now()))
            self.bucket.spend(cost, self.now())
            self.stats.requests += 1
            try:
                resp = self.http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                return Refused(f"{type(exc).__name__}: {exc}")
            wait = self._observe(resp)
            if wait is not None:
                self.stats.throttled += 1
                self.sleep(wait)
                continue
            if resp.status_code >= 500:
                return Refused(_http_error(resp))
            if resp.status_code >= 400:
                return Refused(_http_error(resp), permanent=True)
            return resp
        return Refused(f"still throttled after {self.retries.max_throttle_retries} attempts")


def _all(writes: Sequence[Write], ok: bool, permanent: bool = False, error: str | None = None) -> list[WriteOutcome]:
    return [WriteOutcome(w, ok, permanent, error) for w in writes]


def _user_error_text(error: dict[str, Any]) -> str:
    return f"{error.get('code')}: {error.get('message')}"


class ShopifyGraphQL(_Client):
    """Shopify Admin GraphQL: stock (`inventorySetQuantities` batches), prices, cancellations; within the bucket."""

    platform = "shopify"

    def __init__(self, cfg: Shopify, token: str, retries: Retries, http: httpx.Client | None = None,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(http, retries, LeakyBucket.full(cfg.graphql.bucket, cfg.graphql.restore_per_s, now()),
                         now, sleep)
        self.cfg = cfg
        self.url = f"{cfg.shop_url.rstrip('/')}/admin/api/{cfg.api_version}/graphql.json"
        self.headers = {"X-Shopify-Access-Token": token, "Content-Type": "application/json"}
        self.costs: dict[str, float] = {}  # per mutation: the shop's requestedQueryCost, learned from answers
        self._requested: float | None = None

    @property
    def cost(self) -> float:
        """The stock mutation's cost (configured until the shop names it)."""
        return self.costs.get("inventorySetQuantities", self.cfg.graphql.mutation_cost)

    def _observe(self, resp: httpx.Response) -> float | None:
        if resp.status_code == 429:
            self.stats.log.append({"status": 429})
            return retry_after_s(resp.headers.get("Retry-After"))
        if resp.status_code >= 400:
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        status = graphql_throttle_status(body)
        if status is not None:
            self.bucket.observe(status[0], self.now(), capacity=status[1], rate=status[2])
        requested, actual = graphql_costs(body)
        self._requested = requested
        self.stats.log.append({"requested": requested, "actual": actual, "available": status[0] if status else None,
                               "throttled": is_throttled(body)})
        if is_throttled(body):
            # the observed bucket says how long; at least one point's worth, so rounding cannot spin
            return max(self.bucket.wait_s(requested or self.cfg.graphql.mutation_cost, self.now()),
                       1.0 / self.bucket.rate)
        return None

    def _graphql(self, operation: str, query: str, variables: dict[str, Any]) -> dict[str, Any] | Refused:
        """Run one mutation; its `data.<operation>` payload, or why not (GraphQL `errors` are permanent)."""
        self._requested = None
        resp = self._send("POST", self.url, self.costs.get(operation, self.cfg.graphql.mutation_cost),
                          json={"query": query, "variables": variables}, headers=self.headers)
        if self._requested is not None and self._requested > 0:
            self.costs[operation] = self._requested  # the shop's price of this mutation, not our configured guess
        if isinstance(resp, Refused):
            return resp
        body = resp.json()
        if body.get("errors"):
            return Refused(f"GraphQL errors: {str(body['errors'])[:300]}", permanent=True)
        payload = (body.get("data") or {}).get(operation)
        return payload if isinstance(payload, dict) else Refused(f"no {operation} in the answer", permanent=True)

    def write(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        """Set `available` of every write, `batch_size` per mutation."""
        size = self.cfg.graphql.batch_size
        out: list[WriteOutcome] = []
        for i in range(0, len(writes), size):
            out += self._mutation(list(writes[i:i + size]))
        return out

    def _variables(self, writes: Sequence[Write]) -> dict[str, Any]:
        return {"input": {
            "name": "available", "reason": self.cfg.reason, "ignoreCompareQuantity": True,
            "referenceDocumentUri": f"gid://shopstream/SyncShopStock/{writes[0].command.event_id}",
            "quantities": [{"inventoryItemId": w.item_id, "locationId": self.cfg.location_id,
                            "quantity": w.command.available} for w in writes]}}

    def _mutation(self, writes: list[Write]) -> list[WriteOutcome]:
        payload = self._graphql("inventorySetQuantities", MUTATION, self._variables(writes))
        if isinstance(payload, Refused):
            return _all(writes, False, payload.permanent, payload.error)
        errors = payload.get("userErrors") or []
        if not errors:
            return _all(writes, True)
        bad: dict[int, str] = {}
        for error in errors:
            path = error.get("field") or []
            if len(path) >= 3 and path[:2] == ["input", "quantities"] and str(path[2]).isdigit():
                bad[int(path[2])] = _user_error_text(error)
            else:
                return _all(writes, False, permanent=True, error=_user_error_text(error))
        failed = [WriteOutcome(writes[i], False, True, msg) for i, msg in sorted(bad.items()) if i < len(writes)]
        rest = [w for i, w in enumerate(writes) if i not in bad]
        return failed + (self._mutation(rest) if rest else [])

    def update_price(self, item: ShopItem, price: Decimal) -> Answer:
        """Set a variant's price (`productVariantsBulkUpdate`); the item needs its product and variant ids."""
        if not item.product_id or not item.variant_id:
            return Answer(False, True, "unknown variant: no Shopify product_id / variant_id for this SKU")
        payload = self._graphql("productVariantsBulkUpdate", PRICE_MUTATION, {
            "productId": item.product_id, "variants": [{"id": item.variant_id, "price": price_text(price)}]})
        if isinstance(payload, Refused):
            return Answer.of(payload)
        errors = payload.get("userErrors") or []
        return Answer(False, True, "; ".join(_user_error_text(e) for e in errors)) if errors else Answer(True)

    def cancel_order(self, order_id: str, staff_note: str | None = None) -> Answer:
        """Cancel the order (`orderCancel`, see the module docstring); `order_id` is Shopify's numeric id or gid."""
        gid = order_id if order_id.startswith("gid://shopify/Order/") else f"gid://shopify/Order/{order_id}"
        if not gid.rsplit("/", 1)[-1].isdigit():
            return Answer(False, True, f"not a Shopify order id: {order_id!r}")
        payload = self._graphql("orderCancel", CANCEL_MUTATION, {"orderId": gid, "staffNote": staff_note})
        if isinstance(payload, Refused):
            return Answer.of(payload)
        errors = payload.get("orderCancelUserErrors") or []
        if not errors:
            return Answer(True)
        # INTERNAL_ERROR is the shop's own failure (try again); INVALID, NOT_FOUND, NO_REFUND_PERMISSION are not
        transient = all(e.get("code") == "INTERNAL_ERROR" for e in errors)
        return Answer(False, not transient, "; ".join(_user_error_text(e) for e in errors))


def _numeric_id(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1])


class ShopifyRest(_Client):
    """Shopify Admin REST `inventory_levels/set.json`, one call per SKU, within the request bucket (stock only)."""

    platform = "shopify"

    def __init__(self, cfg: Shopify, token: str, retries: Retries, http: httpx.Client | None = None,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(http, retries, LeakyBucket.full(cfg.rest.bucket, cfg.rest.leak_per_s, now()), now, sleep)
        self.cfg = cfg
        self.url = f"{cfg.shop_url.rstrip('/')}/admin/api/{cfg.api_version}/inventory_levels/set.json"
        self.headers = {"X-Shopify-Access-Token": token, "Content-Type": "application/json"}

    def _observe(self, resp: httpx.Response) -> float | None:
        self.stats.log.append({"status": resp.status_code,
                               "call_limit": resp.headers.get("X-Shopify-Shop-Api-Call-Limit")})
        return super()._observe(resp)

    def write(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        """Set `available` of every write, one request each."""
        return [self._one(w) for w in writes]

    def _one(self, write: Write) -> WriteOutcome:
        body = {"location_id": _numeric_id(self.cfg.location_id), "inventory_item_id": _numeric_id(write.item_id),
                "available": write.command.available}
        resp = self._send("POST", self.url, json=body, headers=self.headers)
        if isinstance(resp, Refused):
            return WriteOutcome(write, False, resp.permanent, resp.error)
        return WriteOutcome(write, True)


class WooCommerceRest(_Client):
    """WooCommerce REST: batch updates of `stock_quantity` / `regular_price`, order status; paced at the rate."""

    platform = "woocommerce"

    def __init__(self, cfg: WooCommerce, key: str, secret: str, retries: Retries, http: httpx.Client | None = None,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(http, retries, LeakyBucket.full(max(1.0, cfg.requests_per_s), cfg.requests_per_s, now()),
                         now, sleep)
        self.cfg = cfg
        self.root = f"{cfg.shop_url.rstrip('/')}/wp-json/wc/v3"
        self.base = f"{self.root}/products"
        self.auth = (key, secret)

    def write(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        """Set `stock_quantity` of every write: products in one batch, variations per parent."""
        groups: dict[str, list[Write]] = {}
        for w in writes:
            groups.setdefault(self._batch_url(w.item_id), []).append(w)
        out: list[WriteOutcome] = []
        for url, group in groups.items():
            for i in range(0, len(group), self.cfg.batch_size):
                chunk = group[i:i + self.cfg.batch_size]
                update = [{"id": int(w.item_id.rpartition("/")[2]), "manage_stock": True,
                           "stock_quantity": w.command.available} for w in chunk]
                out += [WriteOutcome(w, ok, permanent, error)
                        for w, (ok, permanent, error) in zip(chunk, self._batch(url, update), strict=True)]
        return out

    def _batch_url(self, item_id: str) -> str:
        parent, _, _ = item_id.rpartition("/")
        return self.base + (f"/{parent}/variations/batch" if parent else "/batch")

    def _batch(self, url: str, update: list[dict[str, Any]]) -> list[tuple[bool, bool, str | None]]:
        """POST one batch `update`; (ok, permanent, error) per item, in order."""
        resp = self._send("POST", url, json={"update": update}, auth=self.auth)
        if isinstance(resp, Refused):
            return [(False, resp.permanent, resp.error)] * len(update)
        items = (resp.json() or {}).get("update") or []
        out: list[tuple[bool, bool, str | None]] = []
        for item in items[:len(update)] + [None] * (len(update) - len(items)):
            error = item.get("error") if isinstance(item, dict) else {"message": "missing in the response"}
            out.append((True, False, None) if not error else (False, True, _user_error_text(error)))
        return out

    def update_price(self, item: ShopItem, price: Decimal) -> Answer:
        """Set the product's or variation's `regular_price` (a one-item batch, the same endpoint as stock)."""
        if not item.item_id:
            return Answer(False, True, "unknown item: no WooCommerce product id for this SKU")
        ok, permanent, error = self._batch(self._batch_url(item.item_id), [
            {"id": int(item.item_id.rpartition("/")[2]), "regular_price": price_text(price)}])[0]
        return Answer(ok, permanent, error)

    def cancel_order(self, order_id: str, staff_note: str | None = None) -> Answer:
        """Set the order's status to `cancelled` (`PUT /orders/<id>`); WooCommerce has no staff note field here."""
        if not order_id.isdigit():
            return Answer(False, True, f"not a WooCommerce order id: {order_id!r}")
        resp = self._send("PUT", f"{self.root}/orders/{order_id}", json={"status": "cancelled"}, auth=self.auth)
        return Answer.of(resp) if isinstance(resp, Refused) else Answer(True)
