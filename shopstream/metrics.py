"""Prometheus metrics shared by every service, and the `/metrics` handler for aiohttp apps."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

RECORDS_IN = Counter(
    "shopstream_records_in_total", "Records consumed, by processor, topic and outcome",
    ["processor", "topic", "outcome"],  # outcome: ok | duplicate | stale | rejected | dlq
)
RECORDS_OUT = Counter(
    "shopstream_records_out_total", "Records produced, by processor and topic", ["processor", "topic"])
PROCESSING_SECONDS = Histogram(
    "shopstream_processing_seconds", "Time to handle one record (or one webhook) end to end",
    ["processor"], buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DLQ_WRITES = Counter(
    "shopstream_dlq_writes_total", "Records parked on a dead-letter topic",
    ["dlq_topic", "processor", "error_class", "fingerprint"],
)
WEBHOOK_REQUESTS = Counter(
    "shopstream_webhook_requests_total", "Webhook requests by source, topic and HTTP status",
    ["source", "status"],
)
RETRIES = Counter("shopstream_retries_total", "Transient-fault retries", ["processor", "operation"])
STALLED_PARTITIONS = Gauge(
    "shopstream_runner_stalled_partitions",
    "Owned partitions with records past the consumer's position while its polls return nothing (runner/watch.py)",
    ["processor"],
)
DLQ_BACKLOG = Gauge(
    "shopstream_dlq_backlog", "Records on a dead-letter topic at its last count (e.g. by `shopstream dlq list`)",
    ["dlq_topic"],
)


async def metrics_handler(_request: web.Request) -> web.Response:
    """Expose the process's metrics in the Prometheus text format."""
    resp = web.Response(body=generate_latest())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    resp.charset = "utf-8"
    return resp
