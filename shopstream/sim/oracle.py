"""What the system must show once the day is processed, derived from the plan and the documented behaviour.

Sources (README "One canonical order", "Available to promise", "Order review"; the docstrings of
`processors/orders/transitions.py`, `payments.py`, `reservations.py`, `processors/inventory/atp.py`,
`figures.py`, `topology/returns_policy.yaml`), never the system's own output:

- status: the summary rules of `transitions.py` (first match wins): cancelled > on_hold (hold reasons or
  a disputed payment) > return_requested > delivered > shipped > ready_to_fulfill (paid or partially
  refunded) > pending_payment (pending, failed). A person's approve lifts the review holds; reject
  cancels like a shop cancellation.
- ATP: available = on_hand - reserved - safety_stock (no safety stock in the sim's export); an order
  reserves its units on placement, a cancel releases them, a shipped reservation stays deducted until an
  ERP count after the dispatch (the sim sends none), goods receipts and restockable returned units add
  to on_hand.
- exactly once: CreateInvoice when captured equals the total; ReleaseOrder when a never-held order is
  paid and still to be shipped; CreateReturnLabel per return requested in the window; IssueRefund per
  inspected return with a refund above zero (grade fractions of the returns policy). Never a
  ReleaseOrder for an unpaid order.
- at most once: ReleaseOrder of a paid order the carrier then scans. `releasable` (transitions.py) releases
  only while fulfilment is still to do, and the first verdict of the review rules must come first
  (`awaiting_review`); a worker with a backlog (after a restart) reads the order's topics in whatever
  order they come, so the delivered scan may be applied before the verdict, and then no release is
  due: the parcel already left (seen after a kill-worker: the order delivered, no ReleaseOrder).
- DLQ: every malformed body parked on connectors.dlq, nothing from a bad signature.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from shopstream.sim.plan import Plan

REFUND_FRACTION = {"as_new": 1, "good": 1, "damaged": 0.5, "unsellable": 0}


@dataclass
class Oracle:
    """Ground truth: per order the expected fields, per SKU the expected available, commands, DLQ records."""

    orders: dict[str, dict[str, str]] = field(default_factory=dict)
    atp: dict[str, int] = field(default_factory=dict)
    once: dict[str, set[str]] = field(default_factory=dict)  # command type -> order ids that must have exactly one
    never: dict[str, set[str]] = field(default_factory=dict)  # command type -> order ids that must have none
    at_most_once: dict[str, set[str]] = field(default_factory=dict)  # command type -> order ids with 0 or 1
    parked: set[str] = field(default_factory=set)  # markers that must be on connectors.dlq
    absent_orders: set[str] = field(default_factory=set)  # forged orders (bad signature) that must not exist
    holds: dict[str, tuple[str, ...]] = field(default_factory=dict)  # order id -> hold reasons it must get
    decisions: dict[str, str] = field(default_factory=dict)  # order id -> the reviewer's decision


def expected_order(scenario: str, decision: str, stripe: bool) -> dict[str, str]:
    """The fields of the order view a scenario must end in (only the ones the docs determine)."""
    table = {
        "delivered": {"status": "delivered", "payment_status": "paid", "fulfillment_status": "delivered",
                      "return_status": "none"},
        "paid": {"status": "ready_to_fulfill", "payment_status": "paid", "fulfillment_status": "unfulfilled"},
        "unpaid": {"status": "pending_payment", "payment_status": "pending"},
        "payment_failed": {"status": "pending_payment", "payment_status": "failed"},
        "cancelled": {"status": "cancelled"},
        "refunded": {"status": "ready_to_fulfill", "payment_status": "partially_refunded"},
        "returned": {"status": "return_requested", "payment_status": "paid", "fulfillment_status": "delivered",
                     "return_status": "partially_returned"},
        "disputed": {"status": "on_hold", "payment_status": "disputed"},
    }
    if scenario == "held":
        if decision == "reject":
            return {"status": "cancelled"}
        return ({"status": "ready_to_fulfill", "payment_status": "paid"} if stripe
                else {"status": "pending_payment", "payment_status": "pending"})
    return table[scenario]


def build_oracle(plan: Plan, stripe: bool = True) -> Oracle:
    """Expectations for every order, SKU, command and dead letter of `plan`."""
    oracle = Oracle()
    units: dict[str, int] = defaultdict(int)
    for s in plan.world.skus:
        units[s.sku] += s.on_hand + plan.receipts.get(s.sku, 0)
    once: dict[str, set[str]] = defaultdict(set)
    never: dict[str, set[str]] = defaultdict(set)
    at_most_once: dict[str, set[str]] = defaultdict(set)
    for order in plan.orders:
        oid, sc = order.order_id, order.scenario
        expect = expected_order(sc, order.decision, stripe)
        if order.holds and order.decision == "approve":
            expect["hold_reasons"] = ""  # approved: no hold reason left
        oracle.orders[oid] = expect
        if order.holds:
            oracle.holds[oid], oracle.decisions[oid] = order.holds, order.decision
        if expect["status"] != "cancelled":
            for ln in order.lines:
                units[ln.sku] -= ln.quantity
        for sku, qty, _, restock in order.return_lines:
            if restock:
                units[sku] += qty
        if sc in ("delivered", "paid", "refunded", "returned", "disputed"):
            (at_most_once if sc in ("delivered", "returned") else once)["ReleaseOrder"].add(oid)
            once["CreateInvoice"].add(oid)
        if sc == "held" and order.decision == "approve" and stripe:
            once["CreateInvoice"].add(oid)
        if sc in ("unpaid", "payment_failed", "cancelled"):
            never["ReleaseOrder"].add(oid)
            never["CreateInvoice"].add(oid)
        if sc == "returned":
            once["CreateReturnLabel"].add(oid)
            if any(REFUND_FRACTION[grade] > 0 for _, _, grade, _ in order.return_lines):
                once["IssueRefund"].add(oid)
            else:
                never["IssueRefund"].add(oid)
    oracle.atp = dict(units)
    oracle.once, oracle.never, oracle.at_most_once = dict(once), dict(never), dict(at_most_once)
    oracle.parked = set(plan.malformed)
    oracle.absent_orders = set(plan.badsig_orders)
    return oracle
