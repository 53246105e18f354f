"""The connectors service (`shopstream connectors serve`): webhook endpoints plus health and metrics.

Public port (SHOPSTREAM_CONNECTORS_PORT): `POST /webhooks/shopify`, `/webhooks/stripe`,
`/webhooks/woocommerce`, `/webhooks/carrier`, `/webhooks/returns`, `/webhooks/erp` (ERP stock deltas),
`/webhooks/pim` (products: Akeneo events or the generic signed JSON), `/webhooks/helpdesk` (generic signed
JSON), `/webhooks/helpdesk/{zendesk,freshdesk,gorgias}`, `GET /healthz`. Admin port (SHOPSTREAM_ADMIN_PORT,
default public + 1000): `GET /readyz` (Kafka + Redis, cached), `GET /metrics`. It refuses to listen on a
non-loopback address with a weak webhook secret. Further
sources (helpdesk) plug in as `SourceConnector`s in `source_connectors()`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from shopstream.config import Settings, require_safe_exposure, secret_list
from shopstream.connectors import carrier, erp_webhook, helpdesk, pim, returns
from shopstream.connectors.base import SourceConnector
from shopstream.connectors.carrier_mapping import CarrierMapping, load_carrier_mapping
from shopstream.connectors.dedupe import DeliveryDedupe
from shopstream.connectors.freshdesk import FreshdeskConnector, GorgiasConnector
from shopstream.connectors.payment_links import PaymentLinks
from shopstream.connectors.product_index import ProductSkus
from shopstream.connectors.shopify import ShopifyConnector
from shopstream.connectors.stripe import StripeConnector
from shopstream.connectors.webhook import WebhookFront
from shopstream.connectors.woocommerce import WooCommerceConnector
from shopstream.connectors.zendesk import ZendeskConnector
from shopstream.dlq import DeadLetterWriter
from shopstream.health import healthz, make_admin_app, serve_with_admin
from shopstream.kafka import AsyncProducer
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import load_topology_for

FRONT = web.AppKey("front", WebhookFront)
SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)
#: A Redis call that hangs must become a 503, not a request held until the source times out.
REDIS_TIMEOUT_S = 5.0
#: Helpdesks served on `/webhooks/helpdesk/<name>` (not on `/webhooks/<name>`).
HELPDESKS = ("zendesk", "freshdesk", "gorgias")


def source_connectors(settings: Settings, *, now: Callable[[], float] = time.time,
                      carrier_mapping: CarrierMapping | None = None) -> dict[str, SourceConnector]:
    """The webhook sources this service answers, by URL path segment.

    `now`: the clock timed signatures are checked against (a redrive passes the body's first receipt);
    `carrier_mapping`: the loaded carrier tables (default: read per SHOPSTREAM_CARRIER_MAPPING)."""
    mapping = carrier_mapping or load_carrier_mapping(extra=settings.carrier_mapping or None)
    timed: dict[str, Any] = {"now": now, "tolerance_s": settings.signature_tolerance_s}
    ours = {**timed, "accept_legacy": settings.signature_accept_legacy}
    return {"shopify": ShopifyConnector(secret_list(settings.shopify_secret)),
            "stripe": StripeConnector(secret_list(settings.stripe_secret), **timed),
            "woocommerce": WooCommerceConnector(secret_list(settings.woocommerce_secret)),
            "carrier": carrier.CarrierConnector(secret_list(settings.carrier_secret), mapping, **ours),
            "returns": returns.ReturnsConnector(secret_list(settings.returns_secret), **ours),
            "erp": erp_webhook.ErpWebhookConnector(secret_list(settings.erp_secret), **ours),
            "pim": pim.PimConnector(secret_list(settings.akeneo_secret), secret_list(settings.pim_secret), **ours),
            "helpdesk": helpdesk.GenericHelpdeskConnector(secret_list(settings.helpdesk_secret), **ours),
            **helpdesk_connectors(settings, now=now)}


def helpdesk_connectors(settings: Settings, *, now: Callable[[], float] = time.time) -> dict[str, SourceConnector]:
    """The helpdesks answered on `/webhooks/helpdesk/<system>` (issue 15); also in `source_connectors`, by
    their name, so a parked body is redriven through the same connector."""
    return {"zendesk": ZendeskConnector(settings.zendesk_secret.get_secret_value(), now=now,
                                        tolerance_s=int(settings.signature_tolerance_s)),
            "freshdesk": FreshdeskConnector(settings.freshdesk_secret.get_secret_value()),
            "gorgias": GorgiasConnector(settings.gorgias_secret.get_secret_value())}


def redis_client(settings: Settings) -> aioredis.Redis:
    """The async Redis client of the webhook front (dedupe, payment links, product index), with timeouts."""
    return aioredis.Redis.from_url(settings.redis_url, socket_timeout=REDIS_TIMEOUT_S,
                                   socket_connect_timeout=REDIS_TIMEOUT_S)


def build_front(settings: Settings, producer: AsyncProducer, client: aioredis.Redis) -> WebhookFront:
    """The webhook front on `producer` and `client` (the service's, or `dlq redrive`'s own)."""
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    return WebhookFront(settings, producer, serde,
                        DeliveryDedupe(client, settings.redis_key_prefix, settings.webhook_dedupe_ttl_s),
                        DeadLetterWriter(producer, "connectors",
                                         load_topology_for(settings).dlq_routes(settings.topic_prefix)),
                        PaymentLinks(client, settings.redis_key_prefix), ProductSkus(client, settings.redis_key_prefix))


def make_app(settings: Settings, *, producer_overrides: Mapping[str, Any] | None = None) -> web.Application:
    """The connectors aiohttp application (resources are opened on startup, closed on cleanup).

    `producer_overrides` are librdkafka settings on top of `producer_config` (e.g. a short
    `message.timeout.ms` in tests, so an unreachable broker answers 503 quickly).
    """
    app = web.Application(client_max_size=6 * 1024 * 1024)
    app[SETTINGS] = settings
    connectors = source_connectors(settings)
    helpdesks = {name: connectors[name] for name in HELPDESKS}

    async def resources(app: web.Application) -> AsyncIterator[None]:
        # No linger: a webhook's 200 waits for its record, and librdkafka still batches what queues while a
        # request is in flight. With the shared producer's 5 ms, the round trip of `bench webhook-latency`
        # went from 7.2 to 12.9 ms (p50, medians of 3) once single-record batches were turned off.
        producer = AsyncProducer(settings, **{"linger.ms": 0, **dict(producer_overrides or {})})
        client = redis_client(settings)
        app[REDIS] = client
        app[FRONT] = build_front(settings, producer, client)
        yield
        await asyncio.get_running_loop().run_in_executor(None, producer.close)
        await client.aclose()

    app.cleanup_ctx.append(resources)

    async def webhook(request: web.Request) -> web.Response:
        connector = connectors.get(request.match_info["source"])
        if connector is None or request.match_info["source"] in HELPDESKS:  # those answer under /helpdesk/
            return web.json_response({"error": f"unknown webhook source {request.match_info['source']!r}",
                                      "sources": sorted(connectors)}, status=404)
        return await request.app[FRONT].handle(connector, request)

    async def helpdesk_webhook(request: web.Request) -> web.Response:
        connector = helpdesks.get(request.match_info["system"])
        if connector is None:
            return web.json_response({"error": f"unknown helpdesk {request.match_info['system']!r}",
                                      "helpdesks": sorted(helpdesks)}, status=404)
        return await request.app[FRONT].handle(connector, request)

    app.router.add_post("/webhooks/{source}", webhook)
    app.router.add_post("/webhooks/helpdesk/{system}", helpdesk_webhook)
    app.router.add_get("/healthz", healthz)
    return app


def make_admin(settings: Settings, public: web.Application) -> web.Application:
    """The admin port's app (`/metrics`, `/readyz`), pinging Redis through `public`'s client."""
    return make_admin_app(settings, lambda: public[REDIS].ping())


def serve(settings: Settings) -> None:
    """Run the connectors service (public: webhooks, /healthz; admin: /metrics, /readyz) until interrupted."""
    require_safe_exposure(settings)
    app = make_app(settings)
    serve_with_admin(app, make_admin(settings, app), settings.http_host, settings.connectors_port,
                     settings.connectors_admin_port)
