"""HTTP clients of the shop writer: Shopify Admin GraphQL / REST and WooCommerce REST, each within its limits.

Every client has one verb, `write(writes) -> outcomes`: set the shop's available quantity of each
`Write` (a command and the shop's item id) and say per write whether it was applied, failed for good
(`permanent`: the DLQ) or may be retried (transient). Limits come from `limits` and the config:

  ShopifyGraphQL  `inventorySetQuantities` (name `available`, up to `batch_size` quantities per
                  mutation, `referenceDocumentUri` naming the command). Before each mutation it waits
                  until the modelled cost bucket has room for the mutation's cost; every response's
                  `throttleStatus` corrects the model; a THROTTLED answer is waited out
                  ((cost - currentlyAvailable) / restoreRate) and retried. `ignoreCompareQuantity`:
                  the shop's figure also moves with its own sales, so a compare against the figure we
                  wrote last would fail after every sale; staleness is decided before the write by the
                  writer's per-SKU versions (`core`), in the one partition that owns the SKU.
                  userErrors naming `input.quantities.<i>` fail those writes for good and the rest of
                  the batch is sent again without them; other errors fail the whole batch.
  ShopifyRest     `POST inventory_levels/set.json` per write, paced by the 40-request bucket leaking
                  2/s, corrected by `X-Shopify-Shop-Api-Call-Limit`; 429 waits `Retry-After`.
  WooCommerce     `POST /wp-json/wc/v3/products/batch` (`update: [{id, stock_quantity}]`, up to 100),
                  variations (item id `<parent>/<variation>`) through their parent's variations batch,
                  paced at `requests_per_s`; per-item `error` fails that item.
HTTP 5xx, timeouts and connection errors are transient for the writes of that request; other 4xx
(401, 403, 404, 422) are permanent. Error texts carry the shop's status and message only (no PII).
`now` and `sleep` are injectable, so tests run against a fake shop without real waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .config import Retries, Shopify, WooCommerce
from .core import Write, WriteOutcome
from .limits import LeakyBucket, call_limit, graphql_costs, graphql_throttle_status, is_throttled, retry_after_s

MUTATION = """mutation SetAvailable($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id }
    userErrors { code field message }
  }
}"""


@dataclass
class ClientStats:
    """Counters for metrics and the benchmark."""

    requests: int = 0
    throttled: int = 0
    waited_s: float = 0.0
    log: list[dict[str, Any]] = field(default_factory=list)


class _Client:
    platform = "shop"

    def __init__(self, http: httpx.Client | None, retries: Retries, now: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        self.http = http or httpx.Client(timeout=30.0)
        self.retries = retries
        self.now = now
        self._sleep = sleep
        self.stats = ClientStats()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.waited_s += seconds
            self._sleep(seconds)

    def _post(self, url: str, **kwargs: Any) -> httpx.Response | str:
        """POST; a transport failure comes back as its text (transient)."""
        self.stats.requests += 1
        try:
            return self.http.post(url, **kwargs)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"


def _all(writes: Sequence[Write], ok: bool, permanent: bool = False, error: str | None = None) -> list[WriteOutcome]:
    return [WriteOutcome(w, ok, permanent, error) for w in writes]


def _http_error(resp: httpx.Response) -> str:
    return f"HTTP {resp.status_code}: {resp.text[:300]}"


class ShopifyGraphQL(_Client):
    """Shopify Admin GraphQL `inventorySetQuantities` in batches, within the cost bucket."""

    platform = "shopify"

    def __init__(self, cfg: Shopify, token: str, retries: Retries, http: httpx.Client | None = None,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(http, retries, now, sleep)
        self.cfg = cfg
        self.url = f"{cfg.shop_url.rstrip('/')}/admin/api/{cfg.api_version}/graphql.json"
        self.headers = {"X-Shopify-Access-Token": token, "Content-Type": "application/json"}
        self.bucket = LeakyBucket.full(cfg.graphql.bucket, cfg.graphql.restore_per_s, now())
        self.cost = cfg.graphql.mutation_cost  # corrected by each response's requestedQueryCost

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
        for _ in range(self.retries.max_throttle_retries):
            self.sleep(self.bucket.wait_s(self.cost, self.now()))
            self.bucket.spend(self.cost, self.now())
            resp = self._post(self.url, json={"query": MUTATION, "variables": self._variables(writes)},
                              headers=self.headers)
            if isinstance(resp, str):
                return _all(writes, False, error=resp)
            if resp.status_code == 429:
                self.stats.throttled += 1
                self.sleep(retry_after_s(resp.headers.get("Retry-After")))
                continue
            if resp.status_code >= 500:
                return _all(writes, False, error=_http_error(resp))
            if resp.status_code >= 400:
                return _all(writes, False, permanent=True, error=_http_error(resp))
            body = resp.json()
            status = graphql_throttle_status(body)
            if status is not None:
                self.bucket.observe(status[0], self.now(), capacity=status[1], rate=status[2])
            requested, actual = graphql_costs(body)
            if requested is not None and requested > 0:
                self.cost = requested  # the shop's price of this mutation, not our configured guess
            self.stats.log.append({"batch": len(writes), "requested": requested, "actual": actual,
                                   "available": status[0] if status else None})
            if is_throttled(body):
                self.stats.throttled += 1
                # the observed bucket says how long; at least one point's worth, so rounding cannot spin
                self.sleep(max(self.bucket.wait_s(self.cost, self.now()), 1.0 / self.bucket.rate))
                continue
            if body.get("errors"):
                return _all(writes, False, permanent=True, error=f"GraphQL errors: {str(body['errors'])[:300]}")
            return self._user_errors(writes, body)
        return _all(writes, False, error=f"still throttled after {self.retries.max_throttle_retries} attempts")

    def _user_errors(self, writes: list[Write], body: dict[str, Any]) -> list[WriteOutcome]:
        payload = (body.get("data") or {}).get("inventorySetQuantities") or {}
        errors = payload.get("userErrors") or []
        if not errors:
            return _all(writes, True)
        bad: dict[int, str] = {}
        for error in errors:
            path = error.get("field") or []
            text = f"{error.get('code')}: {error.get('message')}"
            if len(path) >= 3 and path[:2] == ["input", "quantities"] and str(path[2]).isdigit():
                bad[int(path[2])] = text
            else:
                return _all(writes, False, permanent=True, error=text)
        failed = [WriteOutcome(writes[i], False, True, msg) for i, msg in sorted(bad.items()) if i < len(writes)]
        rest = [w for i, w in enumerate(writes) if i not in bad]
        return failed + (self._mutation(rest) if rest else [])


def _numeric_id(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1])


class ShopifyRest(_Client):
    """Shopify Admin REST `inventory_levels/set.json`, one call per SKU, within the request bucket."""

    platform = "shopify"

    def __init__(self, cfg: Shopify, token: str, retries: Retries, http: httpx.Client | None = None,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(http, retries, now, sleep)
        self.cfg = cfg
        self.url = f"{cfg.shop_url.rstrip('/')}/admin/api/{cfg.api_version}/inventory_levels/set.json"
        self.headers = {"X-Shopify-Access-Token": token, "Content-Type": "application/json"}
        self.bucket = LeakyBucket.full(cfg.rest.bucket, cfg.rest.leak_per_s, now())

    def write(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        """Set `available` of every write, one request each."""
        return [self._one(w) for w in writes]

    def _one(self, write: Write) -> WriteOutcome:
        body = {"location_id": _numeric_id(self.cfg.location_id), "inventory_item_id": _numeric_id(write.item_id),
                "available": write.command.available}
        for _ in range(self.retries.max_throttle_retries):
            self.sleep(self.bucket.wait_s(1, self.now()))
            self.bucket.spend(1, self.now())
            resp = self._post(self.url, json=body, headers=self.headers)
            if isinstance(resp, str):
                return WriteOutcome(write, False, error=resp)
            used = call_limit(resp.headers.get("X-Shopify-Shop-Api-Call-Limit"))
            if used is not None:
                self.bucket.observe(used[1] - used[0], self.now(), capacity=used[1])
            self.stats.log.append({"status": resp.status_code, "call_limit": resp.headers.get(
                "X-Shopify-Shop-Api-Call-Limit")})
            if resp.status_code == 429:
                self.stats.throttled += 1
                self.sleep(retry_after_s(resp.headers.get("Retry-After")))
                continue
            if resp.status_code >= 500:
                return WriteOutcome(write, False, error=_http_error(resp))
            if resp.status_code >= 400:
                return WriteOutcome(write, False, permanent=True, error=_http_error(resp))
            return WriteOutcome(write, True)
        return WriteOutcome(write, False, error=f"still throttled after {self.retries.max_throttle_retries} attempts")


class WooCommerceRest(_Client):
    """WooCommerce REST batch updates of `stock_quantity`, paced at the configured rate."""

    platform = "woocommerce"

    def __init__(self, cfg: WooCommerce, key: str, secret: str, retries: Retries, http: httpx.Client | None = None,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(http, retries, now, sleep)
        self.cfg = cfg
        self.base = f"{cfg.shop_url.rstrip('/')}/wp-json/wc/v3/products"
        self.auth = (key, secret)
        self.bucket = LeakyBucket.full(max(1.0, cfg.requests_per_s), cfg.requests_per_s, now())

    def write(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        """Set `stock_quantity` of every write: products in one batch, variations per parent."""
        groups: dict[str, list[Write]] = {}
        for w in writes:
            parent, _, _ = w.item_id.rpartition("/")
            groups.setdefault(f"/{parent}/variations/batch" if parent else "/batch", []).append(w)
        out: list[WriteOutcome] = []
        for path, group in groups.items():
            for i in range(0, len(group), self.cfg.batch_size):
                out += self._batch(self.base + path, group[i:i + self.cfg.batch_size])
        return out

    def _batch(self, url: str, writes: list[Write]) -> list[WriteOutcome]:
        update = [{"id": int(w.item_id.rpartition("/")[2]), "manage_stock": True,
                   "stock_quantity": w.command.available} for w in writes]
        for _ in range(self.retries.max_throttle_retries):
            self.sleep(self.bucket.wait_s(1, self.now()))
            self.bucket.spend(1, self.now())
            resp = self._post(url, json={"update": update}, auth=self.auth)
            if isinstance(resp, str):
                return _all(writes, False, error=resp)
            if resp.status_code == 429:
                self.stats.throttled += 1
                self.sleep(retry_after_s(resp.headers.get("Retry-After")))
                continue
            if resp.status_code >= 500:
                return _all(writes, False, error=_http_error(resp))
            if resp.status_code >= 400:
                return _all(writes, False, permanent=True, error=_http_error(resp))
            items = (resp.json() or {}).get("update") or []
            out = []
            for w, item in zip(writes, items + [None] * (len(writes) - len(items)), strict=True):
                error = item.get("error") if isinstance(item, dict) else {"message": "missing in the response"}
                out.append(WriteOutcome(w, True) if not error else WriteOutcome(
                    w, False, permanent=True, error=f"{error.get('code')}: {error.get('message')}"))
            return out
        return _all(writes, False, error=f"still throttled after {self.retries.max_throttle_retries} attempts")
