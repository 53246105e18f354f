"""Support processor (`shopstream worker support`): the support core on the runner (`shopstream.runner`).

Stateless on the runner (no changelog): what a ticket decision needs lives in Redis (see `lookup.py` for
why the orders view and not `orders.state`). Inputs, dispatched by topic:

- `support.tickets`: TicketCreated → understand (language, entities, intent with confidence and model
  version) → find the order (an order number in the ticket or the helpdesk's link, else the requester's
  most recent order) and the customer's history → route, draft, govern (`triage.SupportCore`) →
  RouteTicket and SuggestReply on `commands.support`, a ReviewItem on `review.queue` when a person must
  approve (`records.decision_records`). TicketUpdated is acknowledged (a ticket is routed once, when
  created; its later messages belong to the agent who has it).
- `review.decisions`: a WorkItemDecided approving a `support_cancel_order` item → CancelOrder on
  `commands.shop` (`records.approval_records`); every other decision is the orders worker's.
- `shop.orders`, `fulfillment.shipments`, `payments`: order numbers, customers, tracking and refund dates
  into support's Redis index (idempotent writes).

Effectively once: output ids derive from the input event id, so a record read again after a crash
re-emits identical records, which consumers drop as duplicates; nothing is committed before the broker
confirmed the outputs (the runner). Undecodable or misplaced records go to `<input>.dlq`; Redis, broker
or registry away are transient faults retried in place. Metrics: `shopstream_support_tickets_total`
per intent and outcome (self_service, suggested, routed); the KPIs of `GET /v1/support/stats` in Redis
(`kpi.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import redis
from prometheus_client import Counter
from pydantic import BaseModel

from shopstream.config import Settings
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.schemas.models import (
    ChargebackOpened,
    OrderCancelled,
    OrderPlaced,
    OrderReviewed,
    OrderUpdated,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    RefundIssued,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    TicketCreated,
    TicketUpdated,
    WorkItemDecided,
)
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import names

from .lookup import SupportFacts
from .model import ModelError
from .policy import PolicyError
from .records import approval_records, decision_records, ticket_input
from .replies import RepliesError
from .routing import RoutingError
from .triage import SupportCore, TicketDecision

#: A data file of the support core that does not load (the worker refuses to start: exit 2).
SupportConfigError = (ModelError, RoutingError, RepliesError, PolicyError)

log = logging.getLogger(__name__)

PROCESSOR = "support"
TICKETS = Counter("shopstream_support_tickets", "Tickets decided by the support worker", ["intent", "outcome"])
# Each input topic and the records that belong on it (anything else is parked on its DLQ).
INPUTS: dict[str, tuple[type[BaseModel], ...]] = {
    names.SUPPORT_TICKETS: (TicketCreated, TicketUpdated),
    names.REVIEW_DECISIONS: (WorkItemDecided, OrderReviewed),
    names.SHOP_ORDERS: (OrderPlaced, OrderUpdated, OrderCancelled),
    names.FULFILLMENT_SHIPMENTS: (ShipmentCreated, ShipmentDispatched, ShipmentDelivered, ShipmentException),
    names.PAYMENTS: (PaymentAuthorized, PaymentCaptured, PaymentFailed, RefundIssued, ChargebackOpened),
}


class SupportProcessor(ProcessorBase):
    """The support worker's processor on the runner (stateless: facts in Redis)."""

    name = PROCESSOR
    inputs: tuple[str, ...] = tuple(INPUTS)

    def __init__(self, settings: Settings, core: SupportCore | None = None, facts: SupportFacts | None = None) -> None:
        self.settings = settings
        self.core = core or SupportCore.load()
        self.serde = AvroSerde(make_registry_client(settings.schema_registry_url))
        self.facts = facts or SupportFacts(
            redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5),
            settings.redis_key_prefix)
        log.info("support: model %s, routing %s, policy %s", self.core.model.version, self.core.routing.version,
                 self.core.policy.version)

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Decode and act on one record (raises: the runner classifies)."""
        event = self.serde.decode(record.value)
        if not isinstance(event, INPUTS.get(record.label, ())):
            raise TypeError(f"{type(event).__name__} does not belong on {record.label}")
        if isinstance(event, TicketCreated):
            key = record.key.decode() if record.key else event.ticket_id
            return self._outputs(decision_records(event, key, self._decide(event, key)))
        if isinstance(event, WorkItemDecided):
            return self._outputs(approval_records(event))
        if isinstance(event, OrderPlaced | OrderUpdated):
            # OrderPlaced also counts for the KPIs (tickets per 100 orders).
            self.facts.record_order(event)
        elif isinstance(event, ShipmentCreated | ShipmentDispatched | ShipmentDelivered):
            self.facts.record_shipment(event)
        elif isinstance(event, RefundIssued):
            self.facts.record_refund(event)
        return Effects()

    def _decide(self, ticket: TicketCreated, key: str) -> TicketDecision:
        inp = ticket_input(ticket, key)
        seen = self.core.understand(inp)
        order_id, source = self.facts.resolve(seen.candidates), "named in the ticket"
        if order_id is None and not seen.candidates:
            order_id, source = self.facts.latest_order(inp.customer_email), "the requester's most recent order"
        order = self.facts.order_facts(order_id) if order_id else None
        decision = self.core.decide(inp, seen, order, self.facts.customer_facts(inp.customer_email),
                                    order_source=source)
        outcome = "self_service" if decision.auto_reply else "suggested" if decision.needs_approval else "routed"
        TICKETS.labels(decision.intent, outcome).inc()
        # First response of an automatic reply: from the ticket's creation to now (the reply goes out now).
        waited = max(time.time() - ticket.created_at.timestamp(), 0.0) if decision.auto_reply else None
        self.facts.count_ticket(key, decision.intent, outcome, waited)
        return decision

    def _outputs(self, records: list[tuple[str, str, object]]) -> Effects:
        effects = Effects()
        for topic, key, value in records:
            assert isinstance(value, BaseModel)
            effects.outputs.append((topic, key.encode(), self.serde.encode(self.settings.topic(topic), value)))
        return effects


def run(settings: Settings, web_port: int | None = None) -> None:
    """Run the support worker in the foreground until interrupted."""
    run_processor(settings, SupportProcessor(settings), web_port=web_port)
