"""Support KPIs through the API (role `viewer`): `GET /v1/support/stats`.

    200 {"orders", "tickets", "tickets_per_100_orders", "self_service_share", "suggested",
         "first_response_s": {"automatic_replies", "median"},
         "per_intent": {"<intent>": {"tickets", "self_service", "self_service_share", "suggested"}}}

Counted by `worker support` in Redis (`processors/support/kpi.py`: idempotent estimates); Redis away: 503.
The same figures are Prometheus metrics of the worker (`shopstream_support_tickets_total{intent,outcome}`).
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from aiohttp import web

from shopstream.config import Settings
from shopstream.processors.support.kpi import all_keys, first_response_key, stats

CLIENT_KEY: web.AppKey[aioredis.Redis] = web.AppKey("support_redis", aioredis.Redis)
PREFIX_KEY: web.AppKey[str] = web.AppKey("support_prefix", str)


async def support_stats(request: web.Request) -> web.Response:
    """The KPI document."""
    client, prefix = request.app[CLIENT_KEY], request.app[PREFIX_KEY]
    keys = all_keys(prefix)
    try:
        pipe = client.pipeline()
        for _kind, _intent, key in keys:
            pipe.pfcount(key)
        pipe.hvals(first_response_key(prefix))
        *counts, seconds = await pipe.execute()
    except redis.RedisError as exc:
        return web.json_response({"error": "support stats unavailable", "reason": type(exc).__name__}, status=503)
    found = {(kind, intent): int(n) for (kind, intent, _), n in zip(keys, counts, strict=True)}
    return web.json_response(stats(found, [float(s) for s in seconds]))


def add_routes(app: web.Application, settings: Settings, client: aioredis.Redis | None = None) -> None:
    """`GET /v1/support/stats` (viewer, the default role) on the API's Redis client."""
    app[PREFIX_KEY] = settings.redis_key_prefix
    if client is not None:
        app[CLIENT_KEY] = client
    app.router.add_get("/v1/support/stats", support_stats)
