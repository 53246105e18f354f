"""`bench orders`' load: an open-loop arrival schedule of signed Shopify orders and Stripe captures.

Order i is due at t0 + i/R whatever the system does: each arrival is its own task on a bounded aiohttp
connection pool, so a slow answer delays no later arrival's schedule (only its own send, when every
connection is busy). Latency is therefore also reported from the scheduled time (coordinated omission
accounted for), not only from the send. The bodies and signatures are the simulator's
(`shopstream.sim.traffic`, `shopstream.sim.faces.signed_delivery`): the same deliveries the oracle checks.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp

from shopstream.sim.faces import Faces, signed_delivery
from shopstream.sim.steps import Line, SimOrder, Step
from shopstream.sim.traffic import orders as shop_orders
from shopstream.sim.traffic import payments
from shopstream.sim.world import Customer

SKUS = 200  # the orders' lines spread over this many SKUs (two lines each)


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


def sim_order(order_id: str, index: int) -> SimOrder:
    """A two-line pending order (paid by the capture that may follow)."""
    customer = Customer(customer_id=10_000 + index % 5000, email=f"bench{index % 5000}@example.com",
                        prior_orders=3, segment="regular", weight=1.0, city="Berlin")
    lines = (Line(f"BENCH-{index % SKUS:04d}", 1, Decimal("19.90")),
             Line(f"BENCH-{(index * 7 + 3) % SKUS:04d}", 2, Decimal("9.50")))
    return SimOrder(order_id=order_id, customer=customer, lines=lines, placed_at=datetime.now(UTC),
                    scenario="paid", orders_count=4)


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
