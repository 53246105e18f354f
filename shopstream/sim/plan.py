"""The schedule of one simulated shop day: every order, its scenario and every delivery (pure, seeded)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shopstream.sim import rules
from shopstream.sim.steps import Line, SimOrder, Step
from shopstream.sim.traffic import orders as shop
from shopstream.sim.traffic import payments, returns, shipments, stock
from shopstream.sim.world import Sku, World, make_world

FAULT_KINDS = ("dup", "reorder", "malformed", "badsig", "kill-worker", "restart-broker")
# Scenario -> (weight, capabilities it needs). Held orders get "held" whatever was drawn.
SCENARIOS: dict[str, tuple[int, tuple[str, ...]]] = {
    "delivered": (30, ("stripe", "carrier")), "paid": (15, ("stripe",)), "unpaid": (6, ()),
    "payment_failed": (5, ("stripe",)), "cancelled": (8, ()), "refunded": (6, ("stripe",)),
    "returned": (12, ("stripe", "carrier", "returns")), "disputed": (2, ("stripe",)),
}
GRADES = ("as_new", "good", "damaged", "unsellable")


@dataclass
class Config:
    """What the command line asked for."""

    seed: int = 7
    duration_s: float = 60.0
    orders_per_second: float = 2.0
    faults: frozenset[str] = frozenset()
    skus: int = 40
    customers: int = 120
    capabilities: frozenset[str] = frozenset({"shopify", "stripe", "carrier", "returns", "erp"})

    @property
    def orders(self) -> int:
        """How many orders the day has."""
        return max(1, int(self.duration_s * self.orders_per_second))


@dataclass
class Plan:
    """Everything the driver sends and the oracle expects."""

    world: World
    orders: list[SimOrder]
    steps: list[Step]
    receipts: dict[str, int] = field(default_factory=dict)  # SKU -> units received through the ERP webhook
    malformed: list[str] = field(default_factory=list)  # markers of the malformed bodies (must be parked)
    badsig_orders: list[str] = field(default_factory=list)  # orders sent with a bad signature (must not exist)


def parse_faults(text: str) -> frozenset[str]:
    """`dup,reorder` / `all` / `` -> the fault kinds; ValueError naming an unknown one."""
    names = {f.strip() for f in text.split(",") if f.strip()}
    if "all" in names:
        return frozenset(FAULT_KINDS)
    unknown = names - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))} (known: {', '.join(FAULT_KINDS)}, all)")
    return frozenset(names)


def _pick_lines(rng: random.Random, world: World) -> tuple[Line, ...]:
    count = rng.choices((1, 2, 3, 4, 5), weights=(45, 28, 15, 8, 4))[0]
    chosen: list[Sku] = []
    weights = [s.weight for s in world.skus]
    while len(chosen) < min(count, len(world.skus)):
        sku = rng.choices(world.skus, weights=weights)[0]
        if sku not in chosen:
            chosen.append(sku)
    return tuple(Line(s.sku, rng.choices((1, 2, 3), weights=(75, 20, 5))[0], s.price) for s in chosen)


def _scenario(rng: random.Random, caps: frozenset[str]) -> str:
    usable = {k: w for k, (w, needs) in SCENARIOS.items() if set(needs) <= caps}
    return rng.choices(list(usable), weights=list(usable.values()))[0]


def make_orders(cfg: Config, world: World, t0: datetime, order_base: int) -> list[SimOrder]:
    """The orders of the day at `orders_per_second`, customers by weight (repeat buyers), holds predicted."""
    rng = random.Random(f"orders:{cfg.seed}")
    count = cfg.orders
    seen: dict[str, int] = {}
    orders = []
    for i in range(count):
        customer = rng.choices(world.customers, weights=[c.weight for c in world.customers])[0]
        seen[customer.email] = seen.get(customer.email, 0) + 1
        placed = (t0 + timedelta(seconds=i / cfg.orders_per_second)).replace(microsecond=0)
        orders.append(SimOrder(order_id=str(order_base + i), customer=customer, lines=_pick_lines(rng, world),
                               placed_at=placed, scenario=_scenario(rng, cfg.capabilities),
                               orders_count=customer.prior_orders + seen[customer.email],
                               gift=customer.segment == "gift"))
    if "stripe" in cfg.capabilities and count >= 4 and not any(o.scenario == "disputed" for o in orders):
        orders[3].scenario = "disputed"  # a shop day with a chargeback in it, even a short one
    holds = rules.predict_holds(orders)
    for order in orders:
        if order.order_id in holds:
            order.holds, order.scenario = holds[order.order_id], "held"
            order.decision = "reject" if rng.random() < 0.25 else "approve"
        elif order.scenario == "returned":
            units = sum(ln.quantity for ln in order.lines)
            if units < 2:
                order.scenario = "delivered"  # a partial return needs a unit that stays with the customer
            else:
                first = order.lines[0]
                grade = rng.choice(GRADES)
                order.return_lines = ((first.sku, min(first.quantity, units - 1), grade, grade in ("as_new", "good")),)
    return orders


def _order_steps(order: SimOrder, at: float, caps: frozenset[str], reorder: bool) -> list[Step]:
    s = order.scenario
    paid = s in ("delivered", "paid", "refunded", "returned", "disputed") or (s == "held" and "stripe" in caps)
    steps = [shop.create(order, at + (1.0 if reorder and paid else 0.0))]
    if reorder and paid:
        order.faults.add("reorder")  # the payment overtakes the order: parked, applied when it arrives
    if paid:
        steps.append(payments.captured(order, at + (0.0 if reorder else 1.0)))
    if s == "payment_failed":
        steps.append(payments.failed(order, at + 1.0))
    if s == "cancelled":
        steps.append(shop.cancel(order, at + 2.0))
    if s == "refunded":
        steps.append(payments.refunded(order, at + 3.0))
    if s == "disputed":
        steps.append(payments.disputed(order, at + 4.0))
    if s in ("delivered", "returned"):
        swap = reorder and s == "delivered"  # the delivered scan overtakes the in-transit one
        steps.append(shipments.scan(order, at + (4.0 if swap else 2.5), "InTransit", 2))
        steps.append(shipments.scan(order, at + (2.5 if swap else 4.0), "Delivered", 3))
        if swap:
            order.faults.add("reorder")
    if s == "returned":
        steps += [returns.requested(order, at + 5.5), returns.inspected(order, at + 7.0)]
    return steps


def make_plan(cfg: Config, t0: datetime, run_id: str, order_base: int) -> Plan:
    """The whole day: orders and their deliveries in time order, ERP receipts, and the requested faults."""
    world = make_world(cfg.seed, run_id, cfg.skus, cfg.customers, cfg.orders)
    orders = make_orders(cfg, world, t0, order_base)
    rng = random.Random(f"faults:{cfg.seed}")
    plan = Plan(world=world, orders=orders, steps=[])
    for i, order in enumerate(orders):
        at = i / cfg.orders_per_second
        plan.steps += _order_steps(order, at, cfg.capabilities, "reorder" in cfg.faults and rng.random() < 0.1)
    if "erp" in cfg.capabilities:
        for k, sku in enumerate(world.skus[:3]):
            at = cfg.duration_s * (k + 1) / 4
            plan.steps.append(stock.goods_received(sku.sku, 20, at, t0 + timedelta(seconds=at), f"{run_id}-{k}"))
            plan.receipts[sku.sku] = plan.receipts.get(sku.sku, 0) + 20
    if "dup" in cfg.faults:
        # A redelivery: the same body and delivery id again (Shopify and Stripe retry until they see a 2xx).
        dups = [s for s in plan.steps if rng.random() < 0.08]
        plan.steps += [Step(at=s.at + 0.3, source=s.source, kind=s.kind, body=s.body, delivery_id=s.delivery_id,
                            subject=s.subject, fault="dup") for s in dups]
    extra = max(3, len(orders) // 40)
    if "malformed" in cfg.faults:
        for k in range(extra):
            marker = f"sim-malformed-{run_id}-{k}"
            body = json.dumps({"sim_marker": marker, "line_items": "not a list"}).encode()
            plan.steps.append(Step(at=cfg.duration_s * rng.random(), source="shopify", kind="orders/create",
                                   body=body, delivery_id=marker, subject=marker, expect=422, fault="malformed"))
            plan.malformed.append(marker)
    if "badsig" in cfg.faults:
        for k in range(extra):
            ghost = SimOrder(order_id=str(order_base + 900_000 + k), customer=world.customers[0],
                             lines=orders[0].lines, placed_at=t0, scenario="forged", orders_count=5)
            step = shop.create(ghost, cfg.duration_s * rng.random())
            plan.steps.append(Step(at=step.at, source="shopify", kind=step.kind, body=step.body,
                                   delivery_id=step.delivery_id, subject=ghost.order_id, expect=401, fault="badsig"))
            plan.badsig_orders.append(ghost.order_id)
    plan.steps.sort(key=lambda s: s.at)
    return plan
