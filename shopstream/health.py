"""`/healthz` and `/readyz` for every HTTP service: alive, and ready = Kafka and Redis answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from shopstream.config import Settings
from shopstream.kafka import kafka_reachable

READY_TIMEOUT_S = 3.0


async def healthz(_request: web.Request) -> web.Response:
    """The process is alive (no dependency is checked: a liveness probe must not restart on an outage)."""
    return web.json_response({"status": "ok"})


async def check_redis(ping: Callable[[], Awaitable[object]]) -> str:
    """'ok' or 'error: <class>' for a Redis ping."""
    try:
        await asyncio.wait_for(ping(), READY_TIMEOUT_S)
        return "ok"
    except Exception as exc:  # any failure means "not ready"; the class name says which kind
        return f"error: {type(exc).__name__}"


async def check_kafka(settings: Settings) -> str:
    """'ok' or 'error: …' for a Kafka metadata request (run off the event loop: librdkafka blocks)."""
    if not settings.kafka_bootstrap_servers:
        return "error: KAFKA_BOOTSTRAP_SERVERS is not set"
    try:
        ok = await asyncio.get_running_loop().run_in_executor(None, kafka_reachable, settings, READY_TIMEOUT_S)
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok" if ok else "error: no metadata answer"


async def readiness(settings: Settings, redis_ping: Callable[[], Awaitable[object]]) -> web.Response:
    """200 `{"status": "ready", "checks": …}` or 503 naming the failed checks."""
    redis_state, kafka_state = await asyncio.gather(check_redis(redis_ping), check_kafka(settings))
    checks = {"redis": redis_state, "kafka": kafka_state}
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        return web.json_response({"status": "unavailable", "failed": failed, "checks": checks}, status=503)
    return web.json_response({"status": "ready", "checks": checks})
