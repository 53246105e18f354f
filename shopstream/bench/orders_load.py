"""`bench orders`' load: an open-loop arrival schedule of signed Shopify orders and Stripe captures.

Order i is due at t0 + i/R whatever the system does: each arrival is its own task on a bounded aiohttp
connection pool, so a slow answer delays no later arrival's schedule (only its own send, when every
connection is busy). Latency is therefore also reported from the scheduled time (coordinated omission
accounted for), not only from the send. The bodies and signatures are the simulator's
(`shopstream.sim.traffic`, `shopstream.sim.faces.signed_delivery`): the same deliveries the oracle checks.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
import redis

from shopstream.bench.common import BenchError
from shopstream.config import Settings
from shopstream.sim.driver import ingest_stock
from shopstream.sim.faces import Faces, signed_delivery
from shopstream.sim.steps import Line, SimOrder, Step
from shopstream.sim.traffic import iso, payments
from shopstream.sim.traffic import orders as shop_orders
from shopstream.sim.world import Customer
from shopstream.views.atp import atp_key

SKUS = 200  # the orders' lines spread over this many SKUs (two lines each)
# Each SKU's opening stock: a flash sale of products in stock, which no run sells out. Without it every line
# oversold, and each order also made an oversold alert and a review item (measured here: 1.75 alerts and
# 1.8 review items an order), a storm the order path does not see at a real peak.
STOCK_ON_HAND = 1_000_000


@dataclass
class Delivery:
    """One webhook of the run: when it was due, sent and answered (perf_counter seconds)."""

    order_id: str
    kind: str  # create | capture
    due: float
    sent: float = math.nan
    answered: float = math.nan
    status: int = 0
    error: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == 200


def order_ids(count: int) -> list[str]:
    """`count` fresh numeric order ids (Shopify's are integers), unique per call."""
    base = (uuid.uuid4().int % 10**9) * 10**6
    return [str(base + i) for i in range(count)]


def captured(index: int, share: float) -> bool:
    """Whether order `index` also gets a Stripe capture: evenly spread, `share` of all orders."""
    return math.floor((index + 1) * share) > math.floor(index * share)


def bench_sku(n: int) -> str:
    """The n-th SKU the bench sells."""
    return f"BENCH-{n % SKUS:04d}"


def stock_export() -> str:
    """The ERP stock export (`shopstream ingest erp-stock`'s CSV) putting every bench SKU in stock."""
    rows = [f"{bench_sku(n)};{STOCK_ON_HAND};bench product {n}" for n in range(SKUS)]
    return "sku;on_hand;description\n" + "\n".join(rows) + "\n"


def sim_order(order_id: str, index: int) -> SimOrder:
    """A two-line pending order (paid by the capture that may follow)."""
    customer = Customer(customer_id=10_000 + index % 5000, email=f"bench{index % 5000}@example.com",
                        prior_orders=3, segment="regular", weight=1.0, city="Berlin")
    lines = (Line(bench_sku(index), 1, Decimal("19.90")), Line(bench_sku(index * 7 + 3), 2, Decimal("9.50")))
    return SimOrder(order_id=order_id, customer=customer, lines=lines, placed_at=datetime.now(UTC),
                    scenario="paid", orders_count=4)


def stock_skus(faces: Faces, settings: Settings, timeout_s: float = 120.0) -> None:
    """Every SKU the bench sells in stock (an ERP export through `shopstream ingest`), seen in the ATP view."""
    ingest_stock(faces, stock_export(), iso(datetime.now(UTC)))
    keys = [atp_key(settings.redis_key_prefix, bench_sku(n)) for n in range(SKUS)]
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        docs = client.mget(keys)
        if all(doc is not None and json.loads(doc)["on_hand"] == STOCK_ON_HAND for doc in docs):
            return
        time.sleep(0.5)
    raise BenchError(f"the bench's opening stock did not reach the ATP view within {timeout_s:g} s")


Accepted = Callable[[str, str], None]  # told (order id, create|capture) as each 200 arrives


async def _post(session: aiohttp.ClientSession, faces: Faces, step: Step, delivery: Delivery,
                on_accepted: Accepted) -> None:
    url, body, headers = signed_delivery(faces, step)  # signed at send time: Stripe's timestamp is checked
    delivery.sent = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            delivery.status = resp.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        delivery.error = f"{type(exc).__name__}: {exc}"
    delivery.answered = time.perf_counter()
    if delivery.accepted:
        on_accepted(delivery.order_id, delivery.kind)


async def _arrival(session: aiohttp.ClientSession, faces: Faces, order: SimOrder, create: Delivery,
                   capture: Delivery | None, on_accepted: Accepted) -> None:
    await _post(session, faces, shop_orders.create(order, 0.0), create, on_accepted)
    if capture is not None and create.accepted:
        # The capture follows its order's 200 on the same arrival: it is due then, not on the schedule.
        capture.due = time.perf_counter()
        await _post(session, faces, payments.captured(order, 0.0), capture, on_accepted)


async def _offer(faces: Faces, ids: list[str], rate: float, stripe_share: float, connections: int,
                 on_accepted: Accepted) -> tuple[list[Delivery], float, float]:
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=60)
    deliveries: list[Delivery] = []
    tasks: list[asyncio.Task[None]] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = time.perf_counter() + 0.05
        for i, order_id in enumerate(ids):
            due = t0 + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            create = Delivery(order_id, "create", due)
            capture = Delivery(order_id, "capture", math.nan) if captured(i, stripe_share) else None
            deliveries += [create] + ([capture] if capture else [])
            tasks.append(asyncio.create_task(_arrival(session, faces, sim_order(order_id, i),
                                                      create, capture, on_accepted)))
        offered_until = time.perf_counter()
        await asyncio.gather(*tasks)
    return deliveries, t0, offered_until


def offer(faces: Faces, ids: list[str], rate: float, stripe_share: float, connections: int,
          on_accepted: Accepted) -> tuple[list[Delivery], float, float]:
    """Post the orders `ids` at `rate` per second (plus captures for `stripe_share` of them).

    `on_accepted` is called on the event loop's thread as each 200 arrives. Returns every delivery, the
    schedule's start and when the last order was handed to its task (the offered rate is len(ids) over
    that span, whatever the answers took)."""
    return asyncio.run(_offer(faces, ids, rate, stripe_share, connections, on_accepted))
