"""The connectors service (`shopstream connectors serve`): webhook endpoints plus health and metrics.

Routes: `POST /webhooks/shopify`, `/webhooks/stripe`, `/webhooks/woocommerce`, `/webhooks/carrier`,
`/webhooks/returns`, `/webhooks/erp` (ERP stock deltas), `/webhooks/pim` (products), `GET /healthz`,
`GET /readyz` (Kafka + Redis), `GET /metrics`. Further sources (helpdesk) plug in as `SourceConnector`s in
`source_connectors()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from shopstream.config import Settings
from shopstream.connectors import carrier, erp_webhook, pim, returns
from shopstream.connectors.base import SourceConnector
from shopstream.connectors.dedupe import DeliveryDedupe
from shopstream.connectors.payment_links import PaymentLinks
from shopstream.connectors.shopify import ShopifyConnector
from shopstream.connectors.stripe import StripeConnector
from shopstream.connectors.webhook import WebhookFront
from shopstream.connectors.woocommerce import WooCommerceConnector
from shopstream.dlq import DeadLetterWriter
from shopstream.health import healthz, readiness
from shopstream.kafka import AsyncProducer
from shopstream.metrics import metrics_handler
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import load_topology_for

FRONT = web.AppKey("front", WebhookFront)
SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)


def source_connectors(settings: Settings) -> dict[str, SourceConnector]:
    """The webhook sources this service answers, by URL path segment."""
    return {"shopify": ShopifyConnector(settings.shopify_secret.get_secret_value()),
            "stripe": StripeConnector(settings.stripe_secret.get_secret_value()),
            "woocommerce": WooCommerceConnector(settings.woocommerce_secret.get_secret_value()),
            "carrier": carrier.CarrierConnector(settings.carrier_secret.get_secret_value()),
            "returns": returns.ReturnsConnector(settings.returns_secret.get_secret_value()),
            "erp": erp_webhook.ErpWebhookConnector(settings.erp_secret.get_secret_value()),
            "pim": pim.PimConnector(settings.akeneo_secret.get_secret_value(), settings.pim_secret.get_secret_value())}


def make_app(settings: Settings, *, producer_overrides: Mapping[str, Any] | None = None) -> web.Application:
    """The connectors aiohttp application (resources are opened on startup, closed on cleanup).

    `producer_overrides` are librdkafka settings on top of `producer_config` (e.g. a short
    `message.timeout.ms` in tests, so an unreachable broker answers 503 quickly).
    """
    app = web.Application(client_max_size=6 * 1024 * 1024)
    app[SETTINGS] = settings
    connectors = source_connectors(settings)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        producer = AsyncProducer(settings, **dict(producer_overrides or {}))
        client = aioredis.Redis.from_url(settings.redis_url)
        serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        app[REDIS] = client
        app[FRONT] = WebhookFront(settings, producer, serde,
                                  DeliveryDedupe(client, settings.redis_key_prefix, settings.webhook_dedupe_ttl_s),
                                  DeadLetterWriter(producer, "connectors",
                                                   load_topology_for(settings).dlq_routes(settings.topic_prefix)),
                                  PaymentLinks(client, settings.redis_key_prefix))
        yield
        await asyncio.get_running_loop().run_in_executor(None, producer.close)
        await client.aclose()

    app.cleanup_ctx.append(resources)

    async def webhook(request: web.Request) -> web.Response:
        connector = connectors.get(request.match_info["source"])
        if connector is None:
            return web.json_response({"error": f"unknown webhook source {request.match_info['source']!r}",
                                      "sources": sorted(connectors)}, status=404)
        return await request.app[FRONT].handle(connector, request)

    async def readyz(request: web.Request) -> web.Response:
        return await readiness(settings, request.app[REDIS].ping)

    app.router.add_post("/webhooks/{source}", webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app


def serve(settings: Settings) -> None:
    """Run the connectors service until interrupted."""
    web.run_app(make_app(settings), host=settings.http_host, port=settings.connectors_port,
                print=None, handle_signals=True)
