"""Support's order and customer facts on a real Redis: the orders view plus support's own index."""

from __future__ import annotations

from decimal import Decimal

import redis

from shopstream.processors.support.lookup import SupportFacts
from shopstream.schemas.models import Customer, ShipmentDispatched
from shopstream.views.orders import OrderView
from tests.integration.test_order_view import doc
from tests.unit.order_events import dispatched, placed


def test_order_by_number_with_tracking_and_customer_history(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    facts = SupportFacts(client, redis_prefix)
    order = placed().model_copy(update={"customer": Customer(customer_id="c1", email="Ann@Example.com",
                                                             orders_count=3)})
    facts.record_order(order)
    facts.record_order(order)  # idempotent
    ship = dispatched(5)
    assert isinstance(ship, ShipmentDispatched)
    facts.record_shipment(ship.model_copy(update={"carrier": "DHL", "tracking_number": "JJD0001234567890",
                                                  "tracking_url": "https://dhl.de/t/JJD0001234567890"}))
    assert facts.order_facts("1001") is None  # the orders view does not know it yet
    OrderView(client, redis_prefix).put(doc("1001", 3, status="shipped"))

    assert facts.resolve(("#1001",)) == "1001" and facts.resolve(("SO-9",)) is None
    found = facts.order_facts("1001")
    assert found is not None and found.status == "shipped" and found.order_number == "#1001"
    assert found.carrier == "DHL" and found.tracking_number == "JJD0001234567890"
    assert facts.latest_order("ann@example.com") == "1001"
    customer = facts.customer_facts("ANN@example.com")
    assert customer is not None and customer.order_count == 3 and customer.total_spent_eur == Decimal("15")
    assert facts.customer_facts("nobody@example.com") is None
    client.close()


async def test_kpis_are_idempotent_and_served(redis_url: str, redis_prefix: str) -> None:
    import redis.asyncio as aioredis
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from shopstream.api import support
    from shopstream.config import Settings

    client = redis.Redis.from_url(redis_url)
    facts = SupportFacts(client, redis_prefix)
    facts.record_order(placed())
    for _ in range(2):  # a redelivery counts once
        facts.count_ticket("zendesk:1", "where_is_my_order", "self_service", 0.25)
        facts.count_ticket("zendesk:2", "cancel_order", "suggested", None)
    app = web.Application()
    async_client = aioredis.Redis.from_url(redis_url)
    support.add_routes(app, Settings(redis_key_prefix=redis_prefix), async_client)
    async with TestClient(TestServer(app)) as http:
        resp = await http.get("/v1/support/stats")
        doc = await resp.json()
    assert doc["orders"] == 1 and doc["tickets"] == 2 and doc["tickets_per_100_orders"] == 200.0
    assert doc["self_service_share"] == 0.5 and doc["suggested"] == 1
    assert doc["per_intent"]["where_is_my_order"]["self_service"] == 1
    assert doc["first_response_s"] == {"automatic_replies": 1, "median": 0.25}
    await async_client.aclose()
    client.close()
