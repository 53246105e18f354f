"""A local double of the shops' Admin APIs (Shopify GraphQL + REST, WooCommerce REST), limits included.

Used by the contract tests (tests/integration/test_shop_writer_*.py) and `shopstream bench shop-stock`;
never by a production process (only the bench handler of cli.py imports this package).

It implements the documented request and response shapes the shop writer uses, and nothing else:

- `POST /admin/api/<version>/graphql.json` with `X-Shopify-Access-Token`: the `inventorySetQuantities`
  mutation (input `name` available|on_hand, `reason`, `quantities` [{inventoryItemId, locationId,
  quantity, compareQuantity?}] at most 250, `ignoreCompareQuantity`, `referenceDocumentUri`). The
  cost bucket is a leaky bucket (`gql_bucket` points, `gql_restore` per second, `gql_cost` per
  mutation): without room the answer is HTTP 200 `{"errors": [{"message": "Throttled", "extensions":
  {"code": "THROTTLED"}}]}`; every answer carries `extensions.cost` with `throttleStatus`. An unknown
  inventory item is a userError with `field: ["input", "quantities", "<i>", "inventoryItemId"]` and
  nothing of that mutation is applied.
- the same endpoint, `productVariantsBulkUpdate(productId, variants: [{id, price}])` (ids
  gid://shopify/Product|ProductVariant/<n>, price a decimal string): `prices[variant gid]`; an unknown
  product is a userError on `productId`, a variant not of that product one on `variants.<i>.id`.
- the same endpoint, `orderCancel(orderId, reason, refund, restock, notifyCustomer?, staffNote?)` (the
  arguments 2025-01 requires): `cancelled[order gid] = staffNote`, answer `job {id done}`; an unknown
  order (NOT_FOUND) or one already cancelled (INVALID) is an `orderCancelUserErrors` entry;
  `cancel_internal_errors` answers the next ones with INTERNAL_ERROR.
- `POST /admin/api/<version>/inventory_levels/set.json` ({location_id, inventory_item_id, available}):
  a bucket of `rest_bucket` requests leaking `rest_leak` per second, `X-Shopify-Shop-Api-Call-Limit:
  used/size` on every answer, 429 with `Retry-After` when full, 404 for an unknown item.
- `POST /wp-json/wc/v3/products/batch` and `/products/<id>/variations/batch` (basic auth): `update`
  items {id, stock_quantity, manage_stock} or {id, regular_price} (a decimal string); an unknown id
  gets an item `error`.
- `PUT /wp-json/wc/v3/orders/<id>` `{"status": ...}`: `order_status[id]`; an unknown order is a 404.

Everything is recorded (`requests`: every body; `log`: per GraphQL request the bucket before and after),
levels are kept per (item, location). `fail_next(n, status)` answers the next n requests with that
status (a 5xx storm, or a 401/403).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ITEM_GID = re.compile(r"^gid://shopify/InventoryItem/\d+$")
LOCATION_GID = re.compile(r"^gid://shopify/Location/\d+$")
PRODUCT_GID = re.compile(r"^gid://shopify/Product/\d+$")
VARIANT_GID = re.compile(r"^gid://shopify/ProductVariant/\d+$")
ORDER_GID = re.compile(r"^gid://shopify/Order/\d+$")
PRICE = re.compile(r"^\d+(\.\d{1,2})?$")
TOKEN = "shpat_test_token"
WOO_AUTH = ("ck_test", "cs_test")


@dataclass
class FakeShop:
    """State and knobs of the fake shop (thread-safe through `lock`)."""

    gql_bucket: float = 1000.0
    gql_restore: float = 50.0
    gql_cost: float = 10.0
    rest_bucket: float = 40.0
    rest_leak: float = 2.0
    known_items: set[str] | None = None  # None: every well-formed id exists
    known_variants: dict[str, str] | None = None  # variant gid -> product gid; None: every well-formed pair
    known_orders: set[str] | None = None  # order gid (Shopify) or id (WooCommerce); None: every one exists
    prices: dict[str, str] = field(default_factory=dict)
    cancelled: dict[str, str | None] = field(default_factory=dict)
    cancel_internal_errors: int = 0  # answer the next n orderCancel with the userError INTERNAL_ERROR
    order_status: dict[str, str] = field(default_factory=dict)
    levels: dict[tuple[str, str], int] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], float] = time.monotonic  # the bench passes a virtual clock shared with the client
    _gql_level: float | None = None
    _gql_at: float = 0.0
    _rest_used: float = 0.0
    _rest_at: float = 0.0

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next `n` requests with HTTP `status`."""
        with self.lock:
            self.failures.extend([status] * n)

    def gql_available(self, now: float) -> float:
        if self._gql_level is None:
            self._gql_level, self._gql_at = self.gql_bucket, now
        return min(self.gql_bucket, self._gql_level + (now - self._gql_at) * self.gql_restore)

    def rest_used(self, now: float) -> float:
        return max(0.0, self._rest_used - (now - self._rest_at) * self.rest_leak)


def _cost(shop: FakeShop, available: float, actual: float | None) -> dict[str, Any]:
    return {"cost": {"requestedQueryCost": shop.gql_cost, "actualQueryCost": actual,
                     "throttleStatus": {"maximumAvailable": shop.gql_bucket, "currentlyAvailable": available,
                                        "restoreRate": shop.gql_restore}}}


def _validate_input(data: Any) -> str | None:
    """Why a mutation input breaks the documented InventorySetQuantitiesInput shape, or None."""
    if not isinstance(data, dict):
        return "input must be an object"
    unknown = set(data) - {"name", "reason", "quantities", "ignoreCompareQuantity", "referenceDocumentUri"}
    if unknown:
        return f"unknown input fields {sorted(unknown)}"
    if data.get("name") not in ("available", "on_hand") or not isinstance(data.get("reason"), str):
        return "name must be available|on_hand and reason a string"
    quantities = data.get("quantities")
    if not isinstance(quantities, list) or not 1 <= len(quantities) <= 250:
        return "quantities must list 1..250 entries"
    for q in quantities:
        if set(q) - {"inventoryItemId", "locationId", "quantity", "compareQuantity"}:
            return f"unknown quantity fields in {q}"
        if not (ITEM_GID.match(str(q.get("inventoryItemId"))) and LOCATION_GID.match(str(q.get("locationId")))
                and isinstance(q.get("quantity"), int)):
            return f"bad quantity entry {q}"
        if "compareQuantity" not in q and data.get("ignoreCompareQuantity") is not True:
            return "compareQuantity required unless ignoreCompareQuantity is true"
    return None


class _Handler(BaseHTTPRequestHandler):
    shop: FakeShop

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        """Route a PUT (WooCommerce orders)."""
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        shop = self.shop
        with shop.lock:
            shop.requests.append({"method": "PUT", "path": self.path, "body": body})
            if shop.failures:
                status = shop.failures.pop(0)
                self._send(status, {"errors": f"injected {status}"})
                return
            match = re.fullmatch(r"/wp-json/wc/v3/orders/(\d+)", self.path)
            if match is None:
                self._send(404, {"code": "rest_no_route", "message": "No route was found.", "data": {"status": 404}})
                return
            if not self._woo_auth():
                return
            order = match.group(1)
            if shop.known_orders is not None and order not in shop.known_orders:
                self._send(404, {"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID.",
                                 "data": {"status": 404}})
                return
            if not (isinstance(body, dict) and isinstance(body.get("status"), str)):
                self._send(400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): status",
                                 "data": {"status": 400}})
                return
            shop.order_status[order] = body["status"]
            self._send(200, {"id": int(order), "status": body["status"]})

    def _woo_auth(self) -> bool:
        expected = "Basic " + base64.b64encode(":".join(WOO_AUTH).encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._send(401, {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.",
                             "data": {"status": 401}})
            return False
        return True

    def do_POST(self) -> None:
        """Route a POST."""
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        shop = self.shop
        with shop.lock:
            shop.requests.append({"method": "POST", "path": self.path, "body": body})
            if shop.failures:
                status = shop.failures.pop(0)
                self._send(status, {"errors": f"injected {status}"})
                return
            if self.path.startswith("/admin/api/") and self.path.endswith("/graphql.json"):
                self._graphql(body)
            elif self.path.startswith("/admin/api/") and self.path.endswith("/inventory_levels/set.json"):
                self._rest_set(body)
            elif self.path.startswith("/wp-json/wc/v3/products/") and self.path.endswith("/batch"):
                self._woo_batch(body)
            else:
                self._send(404, {"errors": "Not Found"})

    def _graphql(self, body: Any) -> None:
        shop = self.shop
        if self.headers.get("X-Shopify-Access-Token") != TOKEN:
            self._send(401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
            return
        now = shop.clock()
        before = shop.gql_available(now)
        if before < shop.gql_cost:
            shop.log.append({"at": now, "before": before, "after": before, "throttled": True, "batch": 0})
            self._send(200, {"errors": [{"message": "Throttled", "extensions": {
                "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                "extensions": _cost(shop, before, None)})
            return
        after = before - shop.gql_cost
        shop._gql_level, shop._gql_at = after, now
        query = str((body or {}).get("query", ""))
        variables = (body or {}).get("variables") or {}
        if "productVariantsBulkUpdate" in query:
            self._price(variables, after)
            return
        if "orderCancel" in query:
            self._cancel(query, variables, after)
            return
        data = variables.get("input")
        problem = None if "inventorySetQuantities" in query else "unknown operation"
        problem = problem or _validate_input(data)
        if problem:
            self._send(200, {"errors": [{"message": problem}], "extensions": _cost(shop, after, shop.gql_cost)})
            return
        assert isinstance(data, dict)  # _validate_input checked it
        errors = []
        for i, q in enumerate(data["quantities"]):
            if shop.known_items is not None and q["inventoryItemId"] not in shop.known_items:
                errors.append({"code": "INVALID_INVENTORY_ITEM", "field": ["input", "quantities", str(i),
                                                                            "inventoryItemId"],
                               "message": "The specified inventory item could not be found."})
        if not errors:
            for q in data["quantities"]:
                shop.levels[(q["inventoryItemId"], q["locationId"])] = q["quantity"]
        shop.log.append({"at": now, "before": before, "after": after, "throttled": False,
                         "batch": len(data["quantities"])})
        self._send(200, {"data": {"inventorySetQuantities": {
            "inventoryAdjustmentGroup": None if errors else {"id": f"gid://shopify/InventoryAdjustmentGroup/{len(shop.log)}"},
            "userErrors": errors}}, "extensions": _cost(shop, after, shop.gql_cost)})

    def _answer(self, operation: str, payload: dict[str, Any], after: float) -> None:
        self._send(200, {"data": {operation: payload}, "extensions": _cost(self.shop, after, self.shop.gql_cost)})

    def _price(self, variables: dict[str, Any], after: float) -> None:
        shop = self.shop
        product, variants = variables.get("productId"), variables.get("variants")
        if not (PRODUCT_GID.match(str(product)) and isinstance(variants, list) and variants
                and all(isinstance(v, dict) and set(v) == {"id", "price"} and VARIANT_GID.match(str(v["id"]))
                        and isinstance(v["price"], str) and PRICE.match(v["price"]) for v in variants)):
            self._send(200, {"errors": [{"message": f"invalid variables {variables}"}],
                             "extensions": _cost(shop, after, shop.gql_cost)})
            return
        errors = []
        if shop.known_variants is not None and product not in shop.known_variants.values():
            errors.append({"code": "PRODUCT_DOES_NOT_EXIST", "field": ["productId"],
                           "message": "Product does not exist"})
        else:
            for i, v in enumerate(variants):
                if shop.known_variants is not None and shop.known_variants.get(v["id"]) != product:
                    errors.append({"code": "PRODUCT_VARIANT_DOES_NOT_EXIST", "field": ["variants", str(i), "id"],
                                   "message": "Product variant does not exist"})
        if not errors:
            shop.prices.update({v["id"]: v["price"] for v in variants})
        self._answer("productVariantsBulkUpdate", {
            "productVariants": None if errors else [{"id": v["id"], "price": v["price"]} for v in variants],
            "userErrors": errors}, after)

    def _cancel(self, query: str, variables: dict[str, Any], after: float) -> None:
        shop = self.shop
        order = variables.get("orderId")
        required = all(f"{arg}:" in query for arg in ("orderId", "reason", "refund", "restock"))
        if not (required and ORDER_GID.match(str(order))):
            self._send(200, {"errors": [{"message": "orderCancel needs orderId (an Order gid), reason, refund, "
                                                    "restock"}], "extensions": _cost(shop, after, shop.gql_cost)})
            return
        assert isinstance(order, str)
        errors: list[dict[str, Any]]
        if shop.cancel_internal_errors > 0:
            shop.cancel_internal_errors -= 1
            errors = [{"code": "INTERNAL_ERROR", "field": None, "message": "Unexpected internal error happened."}]
        elif shop.known_orders is not None and order not in shop.known_orders:
            errors = [{"code": "NOT_FOUND", "field": ["orderId"], "message": "Order does not exist"}]
        elif order in shop.cancelled:
            errors = [{"code": "INVALID", "field": ["orderId"], "message": "Order has already been cancelled"}]
        else:
            errors = []
            shop.cancelled[order] = variables.get("staffNote")
        self._answer("orderCancel", {"job": None if errors else {"id": f"gid://shopify/Job/{len(shop.cancelled)}",
                                                                  "done": False},
                                     "orderCancelUserErrors": errors}, after)

    def _rest_set(self, body: Any) -> None:
        shop = self.shop
        if self.headers.get("X-Shopify-Access-Token") != TOKEN:
            self._send(401, {"errors": "[API] Invalid API key or access token"})
            return
        now = shop.clock()
        used = shop.rest_used(now)
        size = int(shop.rest_bucket)
        if used + 1 > shop.rest_bucket:
            self._send(429, {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                                       "uninterrupted service."},
                       {"Retry-After": "1.0", "X-Shopify-Shop-Api-Call-Limit": f"{size}/{size}"})
            return
        shop._rest_used, shop._rest_at = used + 1, now
        limit = {"X-Shopify-Shop-Api-Call-Limit": f"{round(used + 1)}/{size}"}
        if not (isinstance(body, dict) and set(body) == {"location_id", "inventory_item_id", "available"}
                and all(isinstance(v, int) for v in body.values())):
            self._send(422, {"errors": {"base": ["invalid body"]}}, limit)
            return
        item = f"gid://shopify/InventoryItem/{body['inventory_item_id']}"
        if shop.known_items is not None and item not in shop.known_items:
            self._send(404, {"errors": "Not Found"}, limit)
            return
        shop.levels[(item, f"gid://shopify/Location/{body['location_id']}")] = body["available"]
        self._send(200, {"inventory_level": {**body, "updated_at": "2026-12-06T00:00:00Z"}}, limit)

    def _woo_batch(self, body: Any) -> None:
        shop = self.shop
        if not self._woo_auth():
            return
        parent = self.path.split("/")[5] if "/variations/" in self.path else ""
        out = []
        for item in (body or {}).get("update", []):
            key = f"{parent}/{item['id']}" if parent else str(item["id"])
            if shop.known_items is not None and key not in shop.known_items:
                out.append({"id": item["id"], "error": {"code": "woocommerce_rest_product_invalid_id",
                                                        "message": "Invalid ID.", "data": {"status": 400}}})
                continue
            if "regular_price" in item:
                if not (isinstance(item["regular_price"], str) and PRICE.match(item["regular_price"])):
                    out.append({"id": item["id"], "error": {"code": "rest_invalid_param",
                                                            "message": "Invalid parameter(s): regular_price",
                                                            "data": {"status": 400}}})
                    continue
                shop.prices[key] = item["regular_price"]
                out.append({"id": item["id"], "regular_price": item["regular_price"]})
                continue
            shop.levels[(key, "woo")] = int(item["stock_quantity"])
            out.append({"id": item["id"], "stock_quantity": item["stock_quantity"], "manage_stock": True})
        self._send(200, {"update": out})


@contextmanager
def running(shop: FakeShop) -> Iterator[str]:
    """Serve `shop` on 127.0.0.1 (a free port); yields the base URL."""
    handler = type("Handler", (_Handler,), {"shop": shop})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
