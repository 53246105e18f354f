"""The webhook front: the same guarantees for every source connector.

For each `POST /webhooks/<source>`:
1. signature check → 401 `{"error": ...}` and nothing published when missing or wrong;
2. dedupe claim on the source's delivery id → 200 `{"status": "duplicate"}` for a delivered id,
   409 while the same id is still in flight, 503 while Redis is unreachable;
3. translation to canonical events → 422 with the reason for a body that is not a valid delivery,
   and the raw body parked on `connectors.dlq` with the request context (so nothing is lost);
4. publish → 200 only after Kafka confirmed every event; 503 if the broker or registry is away
   (the source retries; the dedupe claim is released).
For connectors whose events may name their order only through an earlier payment (`LinksPayments`:
Stripe disputes), the payment's order is looked up before step 3 (503 while Redis is unreachable) and
every published `payments` record's payment id → order id is remembered after step 4
(`connectors/payment_links.py`).
Unknown source topics are acknowledged (200 `{"status": "ignored"}`) and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import redis
from aiohttp import web

from shopstream.config import Settings
from shopstream.connectors.base import DeliveryIdFromBody, LinksPayments, Outgoing, PayloadError, SourceConnector
from shopstream.connectors.dedupe import Claim, DeliveryDedupe
from shopstream.connectors.payload import MAX_BODY
from shopstream.connectors.payment_links import PaymentLinks
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure
from shopstream.kafka import DeliveryError, Publisher
from shopstream.metrics import PROCESSING_SECONDS, RECORDS_OUT, WEBHOOK_REQUESTS
from shopstream.schemas.models import (
    ChargebackOpened,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    RefundIssued,
)
from shopstream.serde import AvroSerde, RegistryUnavailable, SerdeError
from shopstream.topology import CONNECTORS_DLQ

log = logging.getLogger("shopstream.connectors")

#: Request headers kept with a parked body (never the signature: it is a credential-derived value).
_KEPT_HEADERS = ("content-type", "user-agent")
# The records of the `payments` topic: each names its payment and its order.
PAYMENT_RECORDS = (PaymentAuthorized, PaymentCaptured, PaymentFailed, RefundIssued, ChargebackOpened)


def _json(code: int, **body: object) -> web.Response:
    return web.json_response(body, status=code)


class WebhookFront:
    """Verifies, dedupes, translates, publishes and acknowledges webhook deliveries."""

    def __init__(self, settings: Settings, publisher: Publisher, serde: AvroSerde, dedupe: DeliveryDedupe,
                 dlq: DeadLetterWriter, links: PaymentLinks | None = None) -> None:
        self._settings = settings
        self._publisher = publisher
        self._serde = serde
        self._dedupe = dedupe
        self._dlq = dlq
        self._links = links

    async def handle(self, connector: SourceConnector, request: web.Request) -> web.Response:
        """Process one delivery for `connector`; the response code tells the source what happened."""
        started = time.perf_counter()
        response = await self._handle(connector, request)
        WEBHOOK_REQUESTS.labels(connector.name, str(response.status)).inc()
        PROCESSING_SECONDS.labels(f"webhook:{connector.name}").observe(time.perf_counter() - started)
        return response

    async def _handle(self, connector: SourceConnector, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _json(413, error=f"body larger than {MAX_BODY} bytes")
        body = await request.read()
        headers: Mapping[str, str] = request.headers
        if not connector.verify(headers, body):
            return _json(401, error="missing or invalid signature")
        delivery_id = connector.delivery_id(headers)
        if delivery_id is None and isinstance(connector, DeliveryIdFromBody):
            delivery_id = connector.delivery_id_from_body(headers, body)
        if delivery_id:
            try:
                claim = await self._dedupe.claim(connector.name, delivery_id)
            except redis.RedisError as exc:
                log.warning("dedupe store unavailable, asking %s to retry: %s", connector.name, type(exc).__name__)
                return _json(503, error="dedupe store unavailable, retry later")
            if claim is Claim.DONE:
                return _json(200, status="duplicate", delivery_id=delivery_id)
            if claim is Claim.IN_FLIGHT:
                return _json(409, error="the same delivery is being processed; retry later")
        try:
            response = await self._translate_and_publish(connector, headers, body, delivery_id)
        except BaseException:
            if delivery_id:
                await self._dedupe.release(connector.name, delivery_id)
            raise
        if delivery_id:
            try:
                if response.status in (200, 422):
                    # A 422 body is parked on the DLQ: a retry of the same delivery would only park it again.
                    await self._dedupe.complete(connector.name, delivery_id)
                else:
                    await self._dedupe.release(connector.name, delivery_id)
            except redis.RedisError as exc:
                # The events are on Kafka already; a retry the store fails to stop is a duplicate that the
                # deterministic event id lets every consumer drop. The pending claim expires by itself.
                log.warning("dedupe store unavailable after publish: %s", type(exc).__name__)
        return response

    async def _translate_and_publish(self, connector: SourceConnector, headers: Mapping[str, str], body: bytes,
                                     delivery_id: str | None) -> web.Response:
        received_at = datetime.now(UTC)
        linking = self._links is not None and isinstance(connector, LinksPayments)
        try:
            if linking:
                assert self._links is not None and isinstance(connector, LinksPayments)
                payment = connector.unlinked_payment(body)
                try:
                    linked = await self._links.order_of(connector.name, payment) if payment else None
                except redis.RedisError as exc:
                    log.warning("payment links unavailable, asking %s to retry: %s", connector.name,
                                type(exc).__name__)
                    return _json(503, error="payment link store unavailable, retry later")
                outgoing = connector.translate_linked(headers, body, received_at, linked)
            else:
                outgoing = connector.translate(headers, body, received_at)
        except PayloadError as exc:
            try:
                await self._park(connector, headers, body, delivery_id, exc)
            except DeliveryError:
                # Could not keep the body: refuse it, so the source keeps it and retries.
                return _json(503, error="event store unavailable, retry later")
            return _json(422, error=str(exc))
        if not outgoing:
            return _json(200, status="ignored")
        try:
            for out in outgoing:
                topic = self._settings.topic(out.topic)
                value = self._serde.encode(topic, out.record)
                await self._publisher.publish(topic, out.key.encode(), value,
                                              [("shopstream.source", connector.name.encode())])
                RECORDS_OUT.labels(f"connector:{connector.name}", out.topic).inc()
        except (DeliveryError, RegistryUnavailable) as exc:
            log.warning("publish failed, asking %s to retry: %s", connector.name, exc)
            return _json(503, error="event store unavailable, retry later")
        except SerdeError as exc:
            await self._park(connector, headers, body, delivery_id, exc)
            return _json(422, error=str(exc))
        if linking:
            await self._remember_links(connector.name, outgoing)
        return _json(200, status="accepted", events=[o.event_id for o in outgoing])

    async def _remember_links(self, source: str, outgoing: list[Outgoing]) -> None:
        assert self._links is not None
        links = [(out.record.payment_id, out.record.order_id) for out in outgoing
                 if isinstance(out.record, PAYMENT_RECORDS) and out.record.order_id]
        if not links:
            return
        try:
            await self._links.remember(source, links)
        except redis.RedisError as exc:
            # The events are on Kafka; a later event of the payment that names no order goes to review.
            log.warning("payment links not stored (%s): %s", source, type(exc).__name__)

    async def _park(self, connector: SourceConnector, headers: Mapping[str, str], body: bytes,
                    delivery_id: str | None, exc: Exception) -> None:
        kept = [(f"http.{k}", v.encode()) for k, v in ((k.lower(), v) for k, v in headers.items())
                if k in _KEPT_HEADERS or (k.startswith("x-") and "hmac" not in k and "signature" not in k)]
        record = FailedRecord(topic=f"webhook:{connector.name}", key=(delivery_id or connector.name).encode(),
                              value=body, headers=kept, timestamp_ms=int(time.time() * 1000))
        await self._dlq.park(record, Failure(error=exc, stage="connector"),
                             to_topic=self._settings.topic(CONNECTORS_DLQ))
