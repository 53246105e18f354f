"""Work-queue gauges: items waiting for a person per queue, and the age of the oldest one.

`shopstream_work_queue_depth{queue}` counts open and claimed (undecided) items;
`shopstream_work_queue_oldest_age_seconds{queue}` is the age of the oldest of them (0 when none), so
"work queue older than its SLA" is one alert rule (deploy/alerts.yml). Refreshed by the read API from
the work-queue view (`shopstream.views.work_items`), oldest first, scanning at most `SCAN_MAX` items.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions
from aiohttp import web
from prometheus_client import Gauge

from shopstream.config import Settings

REFRESH_S = 30.0
SCAN_MAX = 20_000
WAITING = ("open", "claimed")
QUEUE_DEPTH = Gauge("shopstream_work_queue_depth", "Work items waiting for a decision, per queue", ["queue"])
QUEUE_OLDEST = Gauge("shopstream_work_queue_oldest_age_seconds", "Age of the oldest undecided work item, per queue",
                     ["queue"])
log = logging.getLogger("shopstream.api.queue_depth")
#: the last refresh: queue -> {"depth", "oldest_age_s"} (GET /v1/kpis shows it)
LATEST: dict[str, dict[str, float]] = {}


def summarize(docs: Iterable[dict[str, Any]], now: datetime) -> dict[str, tuple[int, float]]:
    """queue -> (undecided items, age in seconds of the oldest of them)."""
    out: dict[str, tuple[int, float]] = {}
    for doc in docs:
        if doc.get("status") not in WAITING or not doc.get("created_at"):
            continue
        created = datetime.fromisoformat(str(doc["created_at"]).replace("Z", "+00:00"))
        age = max(0.0, (now - created).total_seconds())
        depth, oldest = out.get(doc.get("queue") or "operations", (0, 0.0))
        out[doc.get("queue") or "operations"] = (depth + 1, max(oldest, age))
    return out


async def scan(client: aioredis.Redis, prefix: str, scan_max: int = SCAN_MAX) -> list[dict[str, Any]]:
    """The work-item documents of the view, oldest first (at most `scan_max`)."""
    index = f"{prefix}work-items:index"
    docs: list[dict[str, Any]] = []
    start = 0
    while start < scan_max:
        members = await client.zrange(index, start, start + 499)
        if not members:
            break
        names = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
        raws = await client.mget([f"{prefix}work-item:{n.split('|', 1)[1]}" for n in names])
        docs.extend(orjson.loads(r) for r in raws if r)
        start += len(members)
    return docs


def refresher(settings: Settings, interval_s: float = REFRESH_S) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context refreshing both gauges every `interval_s` (its own small client)."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        seen: set[str] = set()

        async def loop() -> None:
            while True:
                try:
                    summary = summarize(await scan(client, settings.redis_key_prefix), datetime.now(UTC))
                    for queue in seen - set(summary):
                        QUEUE_DEPTH.labels(queue).set(0)
                        QUEUE_OLDEST.labels(queue).set(0)
                    for queue, (depth, oldest) in summary.items():
                        QUEUE_DEPTH.labels(queue).set(depth)
                        QUEUE_OLDEST.labels(queue).set(oldest)
                    seen.update(summary)
                    LATEST.clear()
                    LATEST.update({q: {"depth": d, "oldest_age_s": round(a, 1)} for q, (d, a) in summary.items()})
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                    log.warning("work-queue gauges not refreshed: %s", exc)
                await asyncio.sleep(interval_s)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        await client.aclose()

    return ctx
