"""The read API (aiohttp): order and ATP lookups from the Redis views, health, readiness and metrics.

Endpoints:
    GET /v1/orders/{order_id}   200 the order view document (see shopstream.views.orders),
                                400 {"error", "reason"} for a malformed id,
                                404 {"error": "order not found", "order_id"},
                                503 {"error": "order view unavailable"} when Redis does not answer
    GET /v1/orders?order_id=A&order_id=B
                                up to 100 orders in one Redis round trip (MGET), like /v1/atp?sku=…: 200
                                {"items": [documents of the known orders, in query order],
                                 "unknown": [ids not in the view]}; 400 {"error": "invalid request",
                                "reason"} without an order_id parameter, with more than 100, or with one
                                /v1/orders/{order_id} would refuse; 503 {"error": "order view unavailable"}
    GET /v1/orders/{order_id}/history
                                200 {"order_id", "changes": [entries oldest first]} — the order's
                                OrderStatusChanged trail ordered by order version (see
                                shopstream.views.history); `?limit=N` (1..1000): the newest N, still
                                oldest first; "changes" is [] for an order the order view knows but
                                without recorded changes,
                                400 {"error", "reason"} for a malformed id or limit,
                                404 {"error": "order not found", "order_id", "reason"} when there is
                                neither a history nor an order document,
                                503 {"error": "order history unavailable"} when Redis does not answer
    GET /v1/atp/{sku}           200 the SKU's ATP document (see shopstream.views.atp): sku, on_hand,
                                reserved, safety_stock, incoming, available, version, updated_at
                                (ISO-8601), locations [{location, on_hand, reserved, safety_stock,
                                incoming, as_of}]; the SKU is URL-encoded in the path (may hold `/`),
                                400 {"error": "invalid sku", "reason"} (empty, > 255 characters,
                                control characters),
                                404 {"error": "sku not found", "sku"},
                                503 {"error": "atp view unavailable"} when Redis does not answer
    GET /v1/atp?sku=A&sku=B     up to 100 SKUs in one Redis round trip (MGET): 200
                                {"items": [documents of the known SKUs, in query order],
                                 "unknown": [SKUs not in the view]}; a SKU asked twice is answered once;
                                400 {"error": "invalid request", "reason"} without a sku parameter,
                                with more than 100 of them, or with one /v1/atp/{sku} would refuse;
                                503 as above
    GET /v1/products/{sku}/quality  200 the SKU's quality document (see shopstream.views.products):
                                per channel and locale completeness, missing, score, failed checks;
                                400 / 404 {"error": "sku not found", "sku"} / 503 as for /v1/atp/{sku}
    GET /healthz                200 {"status": "ok"} while the process serves requests (liveness)
  on the admin port only (SHOPSTREAM_ADMIN_PORT, default API port + 1000; `make_admin`):
    GET /readyz                 200 {"status": "ready", "checks": {...}} when Redis answers PING and
                                Kafka answers a metadata request (cached 3 s); else 503 with "failed"
    GET /metrics                Prometheus text format
    /v1/work-items…             the work queue (list, read, claim, decide): see shopstream.api.work_items
    /v1/review/lists…           the review rules' lists (admin): see shopstream.api.review_lists
    /v1/support/stats           support KPIs (viewer): see shopstream.api.support
    /v1/alerts, /v1/kpis        anomaly alerts and KPIs (viewer): see shopstream.api.insights

Every endpoint but /healthz, /readyz and /metrics needs `Authorization: Bearer <token>` with the role
`viewer` (401 without a valid token, 403 without the role; `shopstream.api.security`, tokens from
SHOPSTREAM_API_TOKENS_FILE through `shopstream.auth`).

The order, history and ATP documents are stored as JSON by the view sink and passed through unchanged
(no decode and re-encode per request; the batch and history answers are assembled from the stored
texts). All views share one Redis client (pool); the lookups of one entity share one handler
(`_lookup`: id check -> 400, Redis away -> 503, nothing stored -> 404, else the stored body).
Requests are counted in `shopstream_api_requests_total` by route template (not raw path, to keep
label cardinality bounded), method and status.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from aiohttp import web
from prometheus_client import Counter

from shopstream.api import insights, review_lists, support
from shopstream.api.backlog import refresher as backlog_refresher
from shopstream.api.lag import refresher as lag_refresher
from shopstream.api.queue_depth import refresher as queue_refresher
from shopstream.api.security import ROUTE_ROLES_KEY, TOKENS_KEY, authenticate
from shopstream.api.work_items import ITEMS_KEY, add_routes
from shopstream.auth import TokenStore
from shopstream.config import Settings
from shopstream.health import healthz, make_admin_app, serve_with_admin
from shopstream.processors.review.list_store import AsyncListStore
from shopstream.views.alerts import AsyncInsights
from shopstream.views.atp import AsyncAtpView, batch_skus, sku_problem
from shopstream.views.batch import BadQuery, batch_body, batch_ids
from shopstream.views.history import AsyncHistoryView, history_limit
from shopstream.views.orders import AsyncOrderView
from shopstream.views.products import AsyncQualityView
from shopstream.views.work_items import AsyncWorkItems

API_REQUESTS = Counter(
    "shopstream_api_requests_total", "Read API requests by route template, method and HTTP status",
    ["route", "method", "status"],
)

# Source order ids are numeric (Shopify, WooCommerce) or short tokens; anything else is a typo or
# a probe, and refusing it early keeps odd bytes out of Redis keys and logs.
ORDER_ID_MAX = 128
_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]*")


SETTINGS_KEY: web.AppKey[Settings] = web.AppKey("settings", Settings)
VIEW_KEY: web.AppKey[AsyncOrderView] = web.AppKey("order_view", AsyncOrderView)
ATP_KEY: web.AppKey[AsyncAtpView] = web.AppKey("atp_view", AsyncAtpView)
HISTORY_KEY: web.AppKey[AsyncHistoryView] = web.AppKey("history_view", AsyncHistoryView)
QUALITY_KEY: web.AppKey[AsyncQualityView] = web.AppKey("quality_view", AsyncQualityView)
#: How long a request waits for Redis before answering 503.
REDIS_TIMEOUT_S = 2.0
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def order_id_problem(order_id: str) -> str | None:
    """Why `order_id` is not acceptable, or None when it is."""
    if not order_id:
        return "order_id is empty"
    if len(order_id) > ORDER_ID_MAX:
        return f"order_id is longer than {ORDER_ID_MAX} characters"
    if not _ORDER_ID.fullmatch(order_id):
        return "order_id may contain only letters, digits and . _ : - (and must start with a letter or digit)"
    return None


@web.middleware
async def _count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        API_REQUESTS.labels(route, request.method, str(status)).inc()


async def _lookup(request: web.Request, param: str, problem_of: Callable[[str], str | None],
                  fetch: Callable[[str], Awaitable[bytes | None]], *, entity: str, view: str,
                  not_found: dict[str, Any] | None = None) -> web.Response:
    """One entity from a Redis view by the path parameter `param`: 400 {"error": "invalid <param>",
    "reason"} when `problem_of` refuses it, 503 {"error": "<view> unavailable"} when Redis does not
    answer, 404 {"error": "<entity> not found", <param>, **not_found} when `fetch` finds nothing, else
    the fetched JSON body as-is."""
    value = request.match_info[param]
    problem = problem_of(value)
    if problem:
        return web.json_response({"error": f"invalid {param}", "reason": problem}, status=400)
    try:
        raw = await fetch(value)
    except _REDIS_DOWN:
        return web.json_response({"error": f"{view} unavailable"}, status=503)
    if raw is None:
        return web.json_response({"error": f"{entity} not found", param: value, **(not_found or {})}, status=404)
    return web.Response(body=raw, content_type="application/json", charset="utf-8")


async def get_order(request: web.Request) -> web.Response:
    return await _lookup(request, "order_id", order_id_problem, request.app[VIEW_KEY].get_order_json,
                         entity="order", view="order view")


#: The 404 reason of a history lookup: both places an order can be known from are empty.
HISTORY_NOT_FOUND = "no status change and no order document recorded for this order_id"


async def get_order_history(request: web.Request) -> web.Response:
    try:
        limit = history_limit(request.query.get("limit"))
    except ValueError as exc:
        return web.json_response({"error": "invalid request", "reason": str(exc)}, status=400)
    history = request.app[HISTORY_KEY]
    return await _lookup(request, "order_id", order_id_problem, lambda order_id: history.get_body(order_id, limit),
                         entity="order", view="order history", not_found={"reason": HISTORY_NOT_FOUND})


async def get_atp(request: web.Request) -> web.Response:
    return await _lookup(request, "sku", sku_problem, request.app[ATP_KEY].get_json, entity="sku", view="atp view")


async def get_atp_batch(request: web.Request) -> web.Response:
    return await _batch(lambda: batch_skus(request.query.getall("sku", [])), request.app[ATP_KEY].get_many_json,
                        view="atp view")


async def get_orders_batch(request: web.Request) -> web.Response:
    return await _batch(lambda: batch_ids(request.query.getall("order_id", []), "order_id", order_id_problem,
                                          "/v1/orders?order_id=1001&order_id=1002"),
                        request.app[VIEW_KEY].get_many_json, view="order view")


async def _batch(ids_of: Callable[[], list[str]], get_many: Callable[[list[str]], Awaitable[list[bytes | None]]],
                 *, view: str) -> web.Response:
    """A batch lookup: the query's ids (BadQuery -> 400), one MGET (Redis away -> 503), the assembled answer."""
    try:
        ids = ids_of()
    except BadQuery as exc:
        return web.json_response({"error": "invalid request", "reason": str(exc)}, status=400)
    try:
        stored = await get_many(ids)
    except _REDIS_DOWN:
        return web.json_response({"error": f"{view} unavailable"}, status=503)
    return web.Response(body=batch_body(ids, stored), content_type="application/json", charset="utf-8")


async def get_product_quality(request: web.Request) -> web.Response:
    return await _lookup(request, "sku", sku_problem, request.app[QUALITY_KEY].get_json, entity="sku",
                         view="product quality view")


def make_app(settings: Settings) -> web.Application:
    """The read API application (Redis client opened and closed with the app); `TokenFileError` on a bad tokens file."""
    app = web.Application(middlewares=[_count_requests, authenticate])
    app[SETTINGS_KEY] = settings
    app[TOKENS_KEY] = TokenStore(settings.api_tokens_file or None)
    app[ROUTE_ROLES_KEY] = {}

    async def views(app: web.Application) -> AsyncIterator[None]:
        client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=REDIS_TIMEOUT_S,
                                         socket_connect_timeout=REDIS_TIMEOUT_S)
        app[VIEW_KEY] = AsyncOrderView(client, settings.redis_key_prefix)
        app[ATP_KEY] = AsyncAtpView(client, settings.redis_key_prefix)
        app[HISTORY_KEY] = AsyncHistoryView(client, settings.redis_key_prefix)
        app[QUALITY_KEY] = AsyncQualityView(client, settings.redis_key_prefix)
        app[ITEMS_KEY] = AsyncWorkItems(client, settings.redis_key_prefix)
        app[review_lists.LISTS_KEY] = AsyncListStore(client, settings.redis_key_prefix)
        app[support.CLIENT_KEY] = client
        app[insights.INSIGHTS_KEY] = AsyncInsights(client, settings.redis_key_prefix)
        yield
        await client.aclose()

    app.cleanup_ctx.append(views)
    app.cleanup_ctx.append(backlog_refresher(settings))
    app.cleanup_ctx.append(lag_refresher(settings))  # shopstream_consumer_lag for the lag alerts
    app.cleanup_ctx.append(queue_refresher(settings))  # work-queue depth and oldest age for the SLA alert
    app.router.add_get("/v1/orders/{order_id}", get_order)
    app.router.add_get("/v1/orders", get_orders_batch)
    app.router.add_get("/v1/orders/{order_id}/history", get_order_history)
    app.router.add_get("/v1/atp", get_atp_batch)
    app.router.add_get("/v1/atp/{sku:.+}", get_atp)
    app.router.add_get("/v1/products/{sku}/quality", get_product_quality)
    add_routes(app, settings)  # the work queue: shopstream.api.work_items
    review_lists.add_routes(app, settings)  # the review rules' lists (admin)
    support.add_routes(app, settings)  # support KPIs (viewer)
    insights.add_routes(app)  # alerts and KPIs: shopstream.api.insights
    app.router.add_get("/healthz", healthz)
    return app


def make_admin(settings: Settings, public: web.Application) -> web.Application:
    """The admin port's app (`/metrics`, `/readyz`): nothing internal on the public port."""
    return make_admin_app(settings, lambda: public[VIEW_KEY].ping())


def serve(settings: Settings) -> None:
    """Serve the read API on `http_host:api_port` and its admin app on `api_admin_port` until SIGINT/SIGTERM."""
    # No webhook secret is checked here (require_safe_exposure): the API holds none, and without a
    # tokens file every request but /healthz is refused.
    app = make_app(settings)
    serve_with_admin(app, make_admin(settings, app), settings.http_host, settings.api_port, settings.api_admin_port)
