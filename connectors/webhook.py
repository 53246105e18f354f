"""The webhook front: the same guarantees for every source connector.

Every request ends in exactly one of three outcomes, whatever the client sends:
- **accepted**: 2xx, only after Kafka confirmed every event (or 200 `ignored` / `duplicate`);
- **rejected**: 4xx with `{"error": reason}`; when the body got past the signature check (or was too large
  to check) it is parked on `connectors.dlq` with its context, and the delivery's dedupe claim is released,
  so a corrected resend (or `shopstream dlq redrive`) is processed;
- **unavailable**: 503, nothing parked, the source retries (broker, registry or Redis away, or the registry
  refusing our own schema — 401/403/409 are our configuration's fault, never the sender's).
A bug in a connector is caught here, parked with its fingerprint and answered 422 naming the fingerprint,
never with a traceback; a 500 is impossible by construction.

For each `POST /webhooks/<source>`:
1. a signature, topic or delivery-id header sent twice → 400; a body above MAX_BODY → 413 (the first
   PARKED_PREFIX bytes parked, marked truncated);
2. signature check → 401 `{"error": ...}`, nothing parked or published;
3. dedupe claim on the source's delivery id → 200 `{"status": "duplicate"}` for a delivered id,
   409 while the same id is in flight, 503 while Redis is unreachable; a delivery id that is not 1-256
   printable ASCII characters → 400 (parked);
4. translation → 422 with the reason (parked); a source time more than SHOPSTREAM_MAX_FUTURE_SKEW_S ahead
   of our clock → 422 (parked);
5. publish → 200 only after Kafka confirmed every event; 503 if the broker or registry is away.
At most MAX_CONCURRENT_PER_SOURCE deliveries of one source are handled at once; one that waits longer
than BUSY_WAIT_S for a slot gets a 503.
For connectors whose events may name their order only through an earlier payment (`LinksPayments`:
Stripe disputes), the payment's order is looked up before step 4 (503 while Redis is unreachable) and
every published `payments` record's payment id → order id is remembered after step 5
(`connectors/payment_links.py`). For connectors whose product deletions name only the product id
(`IndexesProducts`: Shopify, WooCommerce) a deletion's SKUs are looked up before step 4 (503 while Redis is
unreachable; an unknown id → 202 `{"status": "parked"}`, parked with the reason) and every published
ProductUpserted's product id → SKUs is remembered after step 5 (`connectors/product_index.py`).
Unknown source topics are acknowledged (200 `ignored`) and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from aiohttp import web

from shopstream.config import Settings
from shopstream.connectors.base import (
    SINGLE_VALUE_HEADERS,
    DeliveryIdFromBody,
    IndexesProducts,
    LinksPayments,
    Outgoing,
    PayloadError,
    SourceConnector,
    refuse_future,
)
from shopstream.connectors.dedupe import Claim, DeliveryDedupe
from shopstream.connectors.payload import MAX_BODY, PARKED_PREFIX
from shopstream.connectors.payment_links import PaymentLinks
from shopstream.connectors.product_index import ProductSkus
from shopstream.dlq import DeadLetterWriter, FailedRecord, Failure, fingerprint
from shopstream.kafka import DeliveryError, Publisher
from shopstream.metrics import PROCESSING_SECONDS, RECORDS_OUT, WEBHOOK_REQUESTS
from shopstream.schemas.models import (
    ChargebackOpened,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    ProductUpserted,
    RefundIssued,
)
from shopstream.serde import AvroSerde, RegistryRefused, RegistryUnavailable, SerdeError
from shopstream.topology import CONNECTORS_DLQ

log = logging.getLogger("shopstream.connectors")

#: Request headers every parked body keeps, besides its connector's `kept_headers`.
COMMON_KEPT_HEADERS = ("content-type", "user-agent")
#: Header naming the source of a parked webhook body, and the one marking a truncated (413) body.
SOURCE_HEADER = "shopstream.webhook.source"
TRUNCATED_HEADER = "shopstream.webhook.truncated"
#: When the body was first received (ms since epoch): a redrive checks timed signatures against it.
RECEIVED_HEADER = "shopstream.webhook.received-at"
MAX_DELIVERY_ID = 256
#: How much of a body beyond MAX_BODY is read and dropped so the sender gets its 413 on a clean connection.
DRAIN_LIMIT = 16 * 1024 * 1024
#: Deliveries of one source handled at once; more wait up to BUSY_WAIT_S, then get a 503 (the source
#: retries). One flooding source (or an attacker posting to it) cannot take every other source's capacity.
MAX_CONCURRENT_PER_SOURCE = 32
BUSY_WAIT_S = 5.0
# The records of the `payments` topic: each names its payment and its order.
PAYMENT_RECORDS = (PaymentAuthorized, PaymentCaptured, PaymentFailed, RefundIssued, ChargebackOpened)


class BodyTooLarge(PayloadError):
    """The body is larger than the front reads (MAX_BODY)."""


class InvalidDeliveryId(PayloadError):
    """The delivery id header is not 1-256 printable ASCII characters."""


class UnknownProduct(PayloadError):
    """A product deletion whose product id the product index does not know."""


class ConnectorBug(Exception):
    """A connector raised something other than PayloadError: our bug, parked with its fingerprint."""


@dataclass(frozen=True)
class Outcome:
    """What a delivery came to: the HTTP status and JSON body (the same for a request and a redrive)."""

    status: int
    body: dict[str, object] = field(default_factory=dict)

    def response(self) -> web.Response:
        """The outcome as an aiohttp JSON response."""
        return web.json_response(self.body, status=self.status)


def _err(status: int, reason: str, **extra: object) -> Outcome:
    return Outcome(status, {"error": reason, **extra})


def repeated_headers(request: web.Request) -> list[str]:
    """The single-value headers the request carries more than once (sorted)."""
    return sorted(name for name in SINGLE_VALUE_HEADERS if len(request.headers.getall(name, [])) > 1)


async def read_bounded(request: web.Request, limit: int) -> tuple[bytes, int | None]:
    """The body when it is at most `limit` bytes: (body, None); else (its first PARKED_PREFIX bytes, size)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
            continue
        # Too large: keep the start for the DLQ, read the rest into nothing (a sender still writing its body
        # would otherwise see a reset instead of the 413), up to DRAIN_LIMIT; past that aiohttp closes.
        while size <= DRAIN_LIMIT and (rest := await request.content.read(64 * 1024)):
            size += len(rest)
        declared = request.content_length
        return b"".join(chunks)[:PARKED_PREFIX], declared if declared is not None and declared > size else size
    return b"".join(chunks), None


class WebhookFront:
    """Verifies, dedupes, translates, publishes and acknowledges webhook deliveries."""

    def __init__(self, settings: Settings, publisher: Publisher, serde: AvroSerde, dedupe: DeliveryDedupe,
                 dlq: DeadLetterWriter, links: PaymentLinks | None = None,
                 products: ProductSkus | None = None) -> None:
        self._settings = settings
        self._publisher = publisher
        self._serde = serde
        self._dedupe = dedupe
        self._dlq = dlq
        self._links = links
        self._products = products
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def handle(self, connector: SourceConnector, request: web.Request) -> web.Response:
        """Process one HTTP delivery for `connector`; the response code tells the source what happened."""
        started = time.perf_counter()
        slots = self._slots.setdefault(connector.name, asyncio.Semaphore(MAX_CONCURRENT_PER_SOURCE))
        try:
            await asyncio.wait_for(slots.acquire(), BUSY_WAIT_S)
        except TimeoutError:
            outcome = _err(503, f"too many {connector.name} deliveries at once, retry later")
        else:
            try:
                outcome = await self._from_request(connector, request)
            except Exception as exc:  # the last line of defence: never a 500, never a traceback in the body
                log.exception("webhook front failed before the body was read (%s)", connector.name)
                outcome = _err(400, "the request could not be read", ref=fingerprint(exc))
            finally:
                slots.release()
        WEBHOOK_REQUESTS.labels(connector.name, str(outcome.status)).inc()
        PROCESSING_SECONDS.labels(f"webhook:{connector.name}").observe(time.perf_counter() - started)
        return outcome.response()

    async def _from_request(self, connector: SourceConnector, request: web.Request) -> Outcome:
        repeated = repeated_headers(request)
        if repeated:
            return _err(400, f"header sent more than once: {', '.join(repeated)}")
        body, oversize = await read_bounded(request, MAX_BODY)
        if oversize is not None:
            reason = f"body of {oversize} bytes is larger than {MAX_BODY} bytes"
            return await self._reject(413, connector, request.headers, body, None, BodyTooLarge(reason),
                                      extra=[(TRUNCATED_HEADER, str(oversize).encode())])
        return await self.accept(connector, request.headers, body)

    async def accept(self, connector: SourceConnector, headers: Mapping[str, str], body: bytes, *,
                     extra_headers: list[tuple[str, bytes]] | None = None) -> Outcome:
        """Verify, dedupe, translate and publish one delivery (a request's or a redriven one)."""
        try:
            if not connector.verify(headers, body):
                return _err(401, "missing or invalid signature")
            delivery_id = connector.delivery_id(headers)
            if delivery_id is None and isinstance(connector, DeliveryIdFromBody):
                delivery_id = connector.delivery_id_from_body(headers, body)
        except Exception as exc:
            return await self._bug(connector, headers, body, None, exc, extra_headers)
        if delivery_id is not None and not (0 < len(delivery_id) <= MAX_DELIVERY_ID and delivery_id.isascii()
                                            and delivery_id.isprintable()):
            return await self._reject(400, connector, headers, body, None,
                                      InvalidDeliveryId("delivery id must be 1-256 printable ASCII characters"),
                                      extra=extra_headers)
        if delivery_id:
            try:
                claim = await self._dedupe.claim(connector.name, delivery_id)
            except redis.RedisError as exc:
                log.warning("dedupe store unavailable, asking %s to retry: %s", connector.name, type(exc).__name__)
                return _err(503, "dedupe store unavailable, retry later")
            if claim is Claim.DONE:
                return Outcome(200, {"status": "duplicate", "delivery_id": delivery_id})
            if claim is Claim.IN_FLIGHT:
                return _err(409, "the same delivery is being processed; retry later")
        try:
            outcome = await self._translate_and_publish(connector, headers, body, delivery_id, extra_headers)
        except Exception as exc:
            outcome = await self._bug(connector, headers, body, delivery_id, exc, extra_headers)
        except BaseException:
            await self._settle(connector.name, delivery_id, done=False)
            raise
        await self._settle(connector.name, delivery_id, done=outcome.status == 200)
        return outcome

    async def _settle(self, source: str, delivery_id: str | None, *, done: bool) -> None:
        # Done only after Kafka confirmed; every refusal releases the claim, so a corrected resend (or a
        # redrive of the parked body) is processed instead of being answered "duplicate" for days.
        if not delivery_id:
            return
        try:
            if done:
                await self._dedupe.complete(source, delivery_id)
            else:
                await self._dedupe.release(source, delivery_id)
        except redis.RedisError as exc:
            # Published events carry deterministic ids, so a retry the store fails to stop is a duplicate
            # every consumer drops; an unreleased claim expires by itself (PENDING_TTL_S).
            log.warning("dedupe store unavailable while settling a claim: %s", type(exc).__name__)

    async def _translate_and_publish(self, connector: SourceConnector, headers: Mapping[str, str], body: bytes,
                                     delivery_id: str | None,
                                     extra_headers: list[tuple[str, bytes]] | None) -> Outcome:
        received_at = datetime.now(UTC)
        linking = self._links is not None and isinstance(connector, LinksPayments)
        indexing = self._products is not None and isinstance(connector, IndexesProducts)
        try:
            deleted = connector.deleted_product(headers, body) \
                if self._products is not None and isinstance(connector, IndexesProducts) else None
            if deleted is not None:
                assert self._products is not None and isinstance(connector, IndexesProducts)
                try:
                    skus = await self._products.skus_of(connector.name, deleted)
                except redis.RedisError as exc:
                    log.warning("product index unavailable, asking %s to retry: %s", connector.name,
                                type(exc).__name__)
                    return _err(503, "product index unavailable, retry later")
                if not skus:
                    return await self._park_unknown_product(connector, headers, body, delivery_id, deleted,
                                                            extra_headers)
                outgoing = connector.translate_deleted(headers, body, received_at, skus)
            elif linking:
                assert self._links is not None and isinstance(connector, LinksPayments)
                payment = connector.unlinked_payment(body)
                try:
                    linked = await self._links.order_of(connector.name, payment) if payment else None
                except redis.RedisError as exc:
                    log.warning("payment links unavailable, asking %s to retry: %s", connector.name,
                                type(exc).__name__)
                    return _err(503, "payment link store unavailable, retry later")
                outgoing = connector.translate_linked(headers, body, received_at, linked)
            else:
                outgoing = connector.translate(headers, body, received_at)
            for out in outgoing:
                refuse_future(out.record.__dict__["meta"].occurred_at, received_at,
                              self._settings.max_future_skew_s, "occurred_at")
        except PayloadError as exc:
            return await self._reject(422, connector, headers, body, delivery_id, exc, extra=extra_headers)
        if not outgoing:
            return Outcome(200, {"status": "ignored"})
        try:
            for out in outgoing:
                topic = self._settings.topic(out.topic)
                value = self._serde.encode(topic, out.record)
                await self._publisher.publish(topic, out.key.encode(), value,
                                              [("shopstream.source", connector.name.encode())])
                RECORDS_OUT.labels(f"connector:{connector.name}", out.topic).inc()
        except RegistryRefused as exc:
            # Our credentials or schema, not the sender's body: nothing is parked, the source retries.
            log.error("schema registry refused our schema, asking %s to retry: %s", connector.name, exc)
            return _err(503, "event store unavailable, retry later")
        except (DeliveryError, RegistryUnavailable) as exc:
            log.warning("publish failed, asking %s to retry: %s", connector.name, exc)
            return _err(503, "event store unavailable, retry later")
        except SerdeError as exc:
            return await self._reject(422, connector, headers, body, delivery_id, exc, extra=extra_headers)
        if linking:
            await self._remember_links(connector.name, outgoing)
        if indexing:
            await self._remember_products(connector.name, outgoing, deleted)
        return Outcome(200, {"status": "accepted", "events": [o.event_id for o in outgoing]})

    async def _park_unknown_product(self, connector: SourceConnector, headers: Mapping[str, str], body: bytes,
                                    delivery_id: str | None, product_id: str,
                                    extra_headers: list[tuple[str, bytes]] | None) -> Outcome:
        """A deletion of a product id the index does not know: parked with the reason, answered 202 (the shop
        does not retry; the dedupe claim is released, so a redrive once the SKUs are known is processed)."""
        reason = (f"product {product_id} deleted, but no SKU of it is known (no ProductUpserted of it was "
                  f"published through this service): parked for a redrive")
        outcome = await self._reject(202, connector, headers, body, delivery_id, UnknownProduct(reason),
                                     extra=extra_headers)
        if outcome.status != 202:
            return outcome  # could not park: 503, the shop retries
        return Outcome(202, {"status": "parked", "reason": reason})

    async def _remember_products(self, source: str, outgoing: list[Outgoing], deleted: str | None) -> None:
        assert self._products is not None
        products: dict[str, set[str]] = {}
        for out in outgoing:
            if isinstance(out.record, ProductUpserted) and out.record.product_id:
                products.setdefault(out.record.product_id, set()).add(out.record.sku)
        try:
            if deleted is not None:
                await self._products.forget(source, [deleted])
            if products:
                await self._products.remember(source, products)
        except redis.RedisError as exc:
            # The events are on Kafka; a later deletion of the product is parked as unknown (and redriven).
            log.warning("product index not updated (%s): %s", source, type(exc).__name__)

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

    async def _bug(self, connector: SourceConnector, headers: Mapping[str, str], body: bytes,
                   delivery_id: str | None, exc: Exception,
                   extra_headers: list[tuple[str, bytes]] | None) -> Outcome:
        ref = fingerprint(exc)
        log.error("connector %s raised %s (fingerprint %s); body parked", connector.name, type(exc).__name__, ref,
                  exc_info=exc)
        bug = ConnectorBug(f"{type(exc).__name__} in connector {connector.name} (fingerprint {ref})")
        bug.__cause__ = exc
        bug.__traceback__ = exc.__traceback__  # group by where it raised, not by this line
        return await self._reject(422, connector, headers, body, delivery_id, bug, extra=extra_headers,
                                  reason=f"the delivery could not be processed; it is kept for an operator "
                                         f"(ref {ref})")

    async def _reject(self, status: int, connector: SourceConnector, headers: Mapping[str, str], body: bytes,
                      delivery_id: str | None, exc: Exception, *, extra: list[tuple[str, bytes]] | None = None,
                      reason: str | None = None) -> Outcome:
        """Park the body with its context and answer `status`; 503 when it cannot be parked (nothing lost)."""
        try:
            await self.park(connector, headers, body, delivery_id, exc, extra or [])
        except Exception as park_exc:  # DeliveryError, or the writer itself failing: the source keeps it
            log.warning("could not park a %s body (%s): asking to retry", connector.name, type(park_exc).__name__)
            return _err(503, "event store unavailable, retry later")
        return _err(status, reason or str(exc))

    async def park(self, connector: SourceConnector, headers: Mapping[str, str], body: bytes,
                   delivery_id: str | None, exc: Exception, extra: list[tuple[str, bytes]]) -> None:
        """Park a refused body on `connectors.dlq` with the connector's allowlisted request headers."""
        allowed = set(COMMON_KEPT_HEADERS) | set(getattr(connector, "kept_headers", ()))
        kept = [(f"http.{k.lower()}", v.encode("utf-8", "surrogateescape")) for k, v in headers.items()
                if k.lower() in allowed]
        kept.append((SOURCE_HEADER, connector.name.encode()))
        kept.extend((k, v) for k, v in extra if k != SOURCE_HEADER)
        now_ms = int(time.time() * 1000)
        if not any(k == RECEIVED_HEADER for k, _ in kept):  # a redrive keeps the first receipt's time
            kept.append((RECEIVED_HEADER, str(now_ms).encode()))
        record = FailedRecord(topic=f"webhook:{connector.name}", key=(delivery_id or connector.name).encode(),
                              value=body, headers=kept, timestamp_ms=now_ms)
        await self._dlq.park(record, Failure(error=exc, stage="connector"),
                             to_topic=self._settings.topic(CONNECTORS_DLQ))
