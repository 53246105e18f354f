"""SIGKILL the support worker mid-stream, restart it: every ticket is routed exactly as the oracle says.

Input: 1,500 TicketCreated on `support.tickets` (several intents, de/en, order numbers of known shipped
and open orders and of unknown ones, some delivered twice), with the orders view and support's index
prepared in Redis beforehand (so every decision's facts are fixed). The oracle is the pure core
(`SupportCore.decide` + `records.decision_records`) on each ticket with the same facts. The worker is the
real `shopstream worker support` process on the real broker; after a SIGKILL and a restart, the set of
RouteTicket records on `commands.support` is exactly the oracle's: each ticket routed, same queue,
intent and reasons, one distinct record id per ticket (a record read again re-emits the same id).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from shopstream.config import Settings
from shopstream.processors.support.lookup import SupportFacts
from shopstream.processors.support.records import decision_records, ticket_input
from shopstream.processors.support.triage import SupportCore
from shopstream.schemas.models import Customer, EventMeta, RouteTicket, TicketCreated
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from shopstream.views.orders import OrderView
from tests.integration.test_order_view import doc
from tests.kafka_read import read_all
from tests.kafka_write import make_producer
from tests.unit.order_events import dispatched, placed
from tests.workers import start_worker

pytestmark = pytest.mark.broker

TICKETS = 1500
TEXTS = ["Wo ist meine Bestellung #{n}?", "Where is my order #{n}?", "Bitte stornieren Sie Bestellung {n}",
         "Please send me the invoice for order {n}", "Ich möchte die Jacke aus Bestellung {n} zurückschicken",
         "asdf qwer zxcv", "Is the jacket available in blue?", "Mein Paket ({n}) kam kaputt an"]


def _prepare_orders(client: redis.Redis, prefix: str) -> None:
    facts = SupportFacts(client, prefix)
    for n, status in ((2001, "shipped"), (2002, "ready_to_fulfill"), (2003, "delivered")):
        order = placed().model_copy(update={"order_id": str(n), "order_number": f"#{n}",
                                            "customer": Customer(customer_id="c", email=f"c{n}@example.com")})
        facts.record_order(order)
        facts.record_shipment(dispatched(5).model_copy(update={"order_id": str(n), "carrier": "DHL",
                                                               "tracking_number": f"JJD{n}000",
                                                               "tracking_url": f"https://dhl.de/{n}"}))
        OrderView(client, prefix).put(doc(str(n), 3, status=status))


def _tickets() -> list[TicketCreated]:
    rng = random.Random(15)
    at = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    out: list[TicketCreated] = []
    for i in range(TICKETS):
        text = rng.choice(TEXTS).format(n=rng.choice([2001, 2002, 2003, 9999]))
        meta = EventMeta(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"crash-ticket-{i}")),
                         event_type="TicketCreated", occurred_at=at + timedelta(seconds=i),
                         recorded_at=at + timedelta(seconds=i), source="zendesk", source_event_id=None,
                         correlation_id=f"zendesk:ticket:{i}", causation_id=None)
        ticket = TicketCreated(meta=meta, ticket_id=str(i), subject="", body=text, channel="email",
                               priority="normal", created_at=meta.occurred_at, helpdesk="zendesk")
        out.append(ticket)
        if rng.random() < 0.1:
            out.append(ticket)  # delivered twice upstream
    return out


def _oracle(tickets: list[TicketCreated], facts: SupportFacts) -> dict[str, RouteTicket]:
    core = SupportCore.load()
    expected: dict[str, RouteTicket] = {}
    for ticket in tickets:
        key = f"zendesk:{ticket.ticket_id}"
        inp = ticket_input(ticket, key)
        seen = core.understand(inp)
        order_id = facts.resolve(seen.candidates)
        order = facts.order_facts(order_id) if order_id else None
        decision = core.decide(inp, seen, order, None, order_source="named in the ticket")
        route = decision_records(ticket, key, decision)[0][2]
        assert isinstance(route, RouteTicket)
        expected[key] = route
    return expected


def _routes(settings: Settings, serde: AvroSerde) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for msg in read_all(settings.kafka_bootstrap_servers, settings.topic("commands.support"), idle_s=0.2):
        record = serde.decode(msg.value())
        if isinstance(record, RouteTicket):
            found.setdefault(record.ticket_id, set()).add(record.model_dump_json())
    return found


def test_sigkill_mid_stream_then_restart_routes_as_the_oracle(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    client = redis.Redis.from_url(settings.redis_url)
    _prepare_orders(client, settings.redis_key_prefix)
    tickets = _tickets()
    expected = _oracle(tickets, SupportFacts(client, settings.redis_key_prefix))
    producer = make_producer(settings)
    topic = settings.topic("support.tickets")

    def produce(batch: list[TicketCreated]) -> None:
        for ticket in batch:
            producer.produce(topic, key=f"zendesk:{ticket.ticket_id}".encode(), value=serde.encode(topic, ticket))
            producer.poll(0)
        assert producer.flush(30) == 0

    first = len(tickets) * 2 // 3
    produce(tickets[:first])
    log = tmp_path / "worker.log"
    worker = start_worker("support", settings, log)
    try:
        # Kill it as soon as it is visibly mid-stream (polling fast: it routes hundreds of tickets a second).
        deadline = time.monotonic() + 120
        while len(_routes(settings, serde)) < 100:
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "worker routed nothing:\n" + log.read_text()[-3000:]
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        at_kill = len(_routes(settings, serde))
        assert at_kill < first, f"worker routed all {at_kill} tickets it had before the kill"
        produce(tickets[first:])  # more arrive while it is down
        worker = start_worker("support", settings, log)
        deadline = time.monotonic() + 180
        routes: dict[str, set[str]] = {}
        while time.monotonic() < deadline:
            routes = _routes(settings, serde)
            if len(routes) == len(expected):
                break
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(2)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        client.close()

    assert set(routes) == set(expected), f"{len(set(expected) - set(routes))} tickets not routed; log: {log}"
    differ = [k for k, v in expected.items() if routes[k] != {v.model_dump_json()}]
    assert not differ, f"{len(differ)} tickets routed unlike the oracle, e.g. {differ[0]}: {routes[differ[0]]}"
