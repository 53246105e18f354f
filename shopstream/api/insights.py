"""`GET /v1/alerts` and `GET /v1/kpis` (role viewer): the alerts and KPI views (`shopstream.views.alerts`).

    GET /v1/alerts?status=open|resolved&kind=K&subject=S&limit=N
        200 {"items": [alert documents, newest change first], "count"}; limit 1..1000 (default 100);
        400 {"error": "invalid request", "reason"} for an unknown status or a bad limit;
        503 {"error": "alerts view unavailable"} when Redis does not answer
    GET /v1/kpis?window=1h|24h|7d  (default 24h)
        200 the KPI report the anomalies worker stored for that window (see README "KPI definitions"),
        plus `work_items` created in the window and `work_items_per_100_orders` (from the work-queue
        view's index), and under `now` the DLQ backlog and per queue the depth and oldest age (the
        API's last refresh of those gauges);
        400 for another window; 404 {"error": "no kpis yet", "window"} before the worker wrote one;
        503 {"error": "kpi view unavailable"}
"""

from __future__ import annotations

import json
from datetime import datetime

import redis.exceptions
from aiohttp import web

from shopstream.api import queue_depth
from shopstream.metrics import DLQ_BACKLOG
from shopstream.views.alerts import STATUSES, AsyncInsights

INSIGHTS_KEY: web.AppKey[AsyncInsights] = web.AppKey("insights", AsyncInsights)
WINDOWS = ("1h", "24h", "7d")
LIMIT_MAX = 1000
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _bad(reason: str) -> web.Response:
    return web.json_response({"error": "invalid request", "reason": reason}, status=400)


async def list_alerts(request: web.Request) -> web.Response:
    """The alerts view, filtered."""
    query = request.query
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        return _bad(f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        return _bad("limit must be an integer")
    if not 1 <= limit <= LIMIT_MAX:
        return _bad(f"limit must be between 1 and {LIMIT_MAX}")
    try:
        items = await request.app[INSIGHTS_KEY].alerts(status, query.get("kind") or None,
                                                        query.get("subject") or None, limit)
    except _REDIS_DOWN:
        return web.json_response({"error": "alerts view unavailable"}, status=503)
    return web.json_response({"items": items, "count": len(items)})


async def get_kpis(request: web.Request) -> web.Response:
    """The stored KPI report of one window."""
    window = request.query.get("window", "24h")
    if window not in WINDOWS:
        return _bad(f"window must be one of {', '.join(WINDOWS)}")
    try:
        body = await request.app[INSIGHTS_KEY].kpis(window)
    except _REDIS_DOWN:
        return web.json_response({"error": "kpi view unavailable"}, status=503)
    if body is None:
        return web.json_response({"error": "no kpis yet", "window": window}, status=404)
    report = json.loads(body)
    try:
        start, end = (_ms(report[k]) for k in ("from", "to"))
        items = await request.app[INSIGHTS_KEY].work_items_between(start, end)
    except _REDIS_DOWN:
        return web.json_response({"error": "kpi view unavailable"}, status=503)
    except (KeyError, ValueError):  # a report without bounds: nothing to count against
        items = None
    orders = report.get("orders") or 0
    report["work_items"] = items
    report["work_items_per_100_orders"] = round(100 * items / orders, 4) if items is not None and orders else None
    backlog = [s.value for m in DLQ_BACKLOG.collect() for s in m.samples]
    report["now"] = {"dlq_backlog": int(sum(backlog)) if backlog else None, "work_queue": dict(queue_depth.LATEST)}
    return web.json_response(report)


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def add_routes(app: web.Application) -> None:
    """The two routes (default role viewer); `app[INSIGHTS_KEY]` is set with the shared Redis client."""
    app.router.add_get("/v1/alerts", list_alerts)
    app.router.add_get("/v1/kpis", get_kpis)
