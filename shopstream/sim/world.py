"""The simulated shop's catalog and customers: pure and seeded (same seed, same world)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Sku:
    """One article: its price, cost, opening stock and popularity weight (Zipf-like)."""

    sku: str
    title: str
    price: Decimal
    cost: Decimal
    on_hand: int
    weight: float


@dataclass(frozen=True)
class Customer:
    """A buyer: email (unique per run), how many orders the shop knew before, segment, addresses."""

    customer_id: int
    email: str
    prior_orders: int
    segment: str  # regular | new | gift (ships elsewhere than it bills) | bulk (orders often)
    weight: float
    city: str


@dataclass(frozen=True)
class World:
    """Catalog and customers of one run."""

    skus: tuple[Sku, ...]
    customers: tuple[Customer, ...]


_KINDS = ("TSHIRT", "HOODIE", "MUG", "CAP", "SOCKS", "BAG", "POSTER", "SCARF", "BOTTLE", "NOTEBOOK")
_CITIES = ("Berlin", "Hamburg", "München", "Köln", "Leipzig", "Dresden", "Bremen", "Mainz")


def make_world(seed: int, run_id: str, skus: int = 40, customers: int = 120, orders: int = 240) -> World:
    """A catalog of `skus` articles (popularity ~ 1/rank) stocked for about `orders` orders, and `customers` buyers."""
    rng = random.Random(f"world:{seed}")
    catalog = []
    total_weight = sum(1.0 / rank for rank in range(1, skus + 1))
    for rank in range(1, skus + 1):
        price = Decimal(rng.choice((5, 9, 12, 15, 19, 25, 29, 35, 39, 49))) - Decimal("0.10")
        weight = 1.0 / rank
        # Stock follows expected demand (~2.5 units per order, spread by popularity) times 0.8-1.6: most
        # articles last the day, a few sell out and oversell, as in a real shop.
        demand = orders * 2.5 * weight / total_weight
        on_hand = max(2, int(demand * rng.uniform(0.8, 1.6)))
        catalog.append(Sku(sku=f"SIM-{run_id}-{rank:04d}", title=f"{_KINDS[rank % len(_KINDS)].title()} {rank}",
                           price=price, cost=(price * Decimal("0.45")).quantize(Decimal("0.01")),
                           on_hand=on_hand, weight=weight))
    people = []
    for i in range(customers):
        roll = rng.random()
        segment = "regular" if roll < 0.35 else "new" if roll < 0.88 else "gift" if roll < 0.95 else "bulk"
        weight = {"regular": 3.0, "new": 1.0, "gift": 1.0, "bulk": 5.0}[segment]
        people.append(Customer(customer_id=7_000_000 + i, email=f"c{i}.{run_id}@example.com",
                               prior_orders=0 if segment == "new" else rng.randint(2, 30), segment=segment,
                               weight=weight, city=rng.choice(_CITIES)))
    return World(skus=tuple(catalog), customers=tuple(people))
