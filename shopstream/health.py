"""Health and the admin port of every HTTP service.

`/healthz` (alive; may stay on the public port) and, on the admin port only (SHOPSTREAM_ADMIN_PORT;
default: public port + 1000), `/metrics` and `/readyz` (ready = Kafka and Redis answer). Readiness is
cached for READY_CACHE_S and uses one Kafka admin client for the process: a probe per second from
Kubernetes, or anyone hammering it, costs one metadata request per few seconds, not a new client each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaException

from shopstream.config import Settings
from shopstream.kafka import make_admin
from shopstream.metrics import metrics_handler

READY_TIMEOUT_S = 3.0
READY_CACHE_S = 3.0


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


class ReadinessProbe:
    """Kafka + Redis readiness with one reused admin client and a short cache."""

    def __init__(self, settings: Settings, redis_ping: Callable[[], Awaitable[object]],
                 cache_s: float = READY_CACHE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._redis_ping = redis_ping
        self._cache_s = cache_s
        self._clock = clock
        self._admin: Any = None
        self._cached: tuple[float, dict[str, str]] | None = None
        self._lock = asyncio.Lock()

    def _kafka_blocking(self) -> str:
        if not self._settings.kafka_bootstrap_servers:
            return "error: KAFKA_BOOTSTRAP_SERVERS is not set"
        try:
            if self._admin is None:
                self._admin = make_admin(self._settings)
            self._admin.list_topics(timeout=READY_TIMEOUT_S)
            return "ok"
        except KafkaException:
            return "error: no metadata answer"
        except Exception as exc:
            return f"error: {type(exc).__name__}"

    async def checks(self) -> dict[str, str]:
        """The state of each dependency ('ok' or 'error: …'), at most READY_CACHE_S old."""
        async with self._lock:  # concurrent probes share one check
            if self._cached is not None and self._clock() - self._cached[0] < self._cache_s:
                return self._cached[1]
            kafka = asyncio.get_running_loop().run_in_executor(None, self._kafka_blocking)
            redis_state, kafka_state = await asyncio.gather(check_redis(self._redis_ping), kafka)
            checks = {"redis": redis_state, "kafka": kafka_state}
            self._cached = (self._clock(), checks)
            return checks

    async def handler(self, _request: web.Request) -> web.Response:
        """200 `{"status": "ready", "checks": …}` or 503 naming the failed checks."""
        checks = await self.checks()
        failed = [name for name, state in checks.items() if state != "ok"]
        if failed:
            return web.json_response({"status": "unavailable", "failed": failed, "checks": checks}, status=503)
        return web.json_response({"status": "ready", "checks": checks})


def make_admin_app(settings: Settings, redis_ping: Callable[[], Awaitable[object]]) -> web.Application:
    """The admin port's application: `/metrics`, `/readyz` (cached) and `/healthz`."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/readyz", ReadinessProbe(settings, redis_ping).handler)
    app.router.add_get("/healthz", healthz)
    return app


def serve_with_admin(public: web.Application, admin: web.Application, host: str, port: int,
                     admin_port: int) -> None:
    """Serve `public` on host:port and `admin` on host:admin_port until SIGINT/SIGTERM."""
    runner = web.AppRunner(admin)

    async def start_admin(_app: web.Application) -> None:
        await runner.setup()
        await web.TCPSite(runner, host, admin_port).start()

    async def stop_admin(_app: web.Application) -> None:
        await runner.cleanup()

    # The public app's cleanup_ctx (its clients) starts before these hooks and ends after them.
    public.on_startup.append(start_admin)
    public.on_cleanup.append(stop_admin)
    web.run_app(public, host=host, port=port, print=None, handle_signals=True)
