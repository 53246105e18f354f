"""What every source connector provides, and the helpers they share (pure: no I/O here).

A connector turns one delivery from a source system (a webhook body, a file row) into canonical
events. It never publishes itself: the webhook front (`connectors/webhook.py`) verifies, dedupes,
publishes and acknowledges, so every source gets the same guarantees.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from shopstream.schemas.models import EventMeta

#: Namespace for deterministic event ids: the same source delivery always maps to the same event id,
#: so a redelivered webhook that slips past the dedupe store is still a duplicate downstream.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2b1e-6a7d-4c1a-9a43-3f0e8f1d2a10")


class PayloadError(ValueError):
    """The body is not a valid delivery of this source; the message says why (sent as the 422 reason)."""


#: Headers that must come once: a second signature, topic or delivery id would let a proxy and this service
#: read different values (one verified, the other routed); the front answers 400 to a repeated one.
SINGLE_VALUE_HEADERS = frozenset({
    "content-length", "content-type",
    "x-shopify-hmac-sha256", "x-shopify-topic", "x-shopify-webhook-id", "x-shopify-event-id",
    "stripe-signature",
    "x-wc-webhook-signature", "x-wc-webhook-topic", "x-wc-webhook-delivery-id",
    "x-shopstream-signature", "x-shopstream-delivery-id",
})


@dataclass(frozen=True)
class Outgoing:
    """One canonical event to publish: logical topic name, key, record."""

    topic: str
    key: str
    record: BaseModel

    @property
    def event_id(self) -> str:
        # Every published record has `meta` first (schemas contract); BaseModel does not declare it.
        return str(self.record.__dict__["meta"].event_id)


class SourceConnector(Protocol):
    """A webhook source: how to authenticate, identify and translate a delivery."""

    name: str
    #: Request headers (lower case) kept with a parked body: exactly what a redrive needs to verify and
    #: translate it again, never a proxy's or client's other headers (API keys, client addresses).
    kept_headers: tuple[str, ...]

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """True when the request carries a valid signature for `body`."""
        ...

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """The source's id of this delivery (retries repeat it), used to dedupe."""
        ...

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        """Canonical events for the delivery; [] for a topic we acknowledge but do not use.

        Raises PayloadError when the body is not a valid delivery.
        """
        ...


@runtime_checkable
class DeliveryIdFromBody(Protocol):
    """Optional extra of a SourceConnector whose source names a delivery only in the body (Stripe's evt_ id).

    The front asks it when `delivery_id(headers)` gave None, after the signature check (so only for an
    authenticated body); None means no dedupe claim for this delivery.
    """

    def delivery_id_from_body(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """The source's id of this delivery, read from the (verified) body."""
        ...


def parse_time(value: object, field: str) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime; PayloadError names the field otherwise."""
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{field}: expected an ISO-8601 timestamp, got {type(value).__name__}")
    if len(value) > 64:
        raise PayloadError(f"{field}: not an ISO-8601 timestamp ({len(value)} characters)")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadError(f"{field}: not an ISO-8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise PayloadError(f"{field}: timestamp without a UTC offset: {value!r}")
    try:
        # Year 1 with a positive offset (or 9999 with a negative one) leaves datetime's range in UTC.
        return parsed.astimezone(UTC)
    except OverflowError:
        raise PayloadError(f"{field}: timestamp out of range: {value!r}") from None


def refuse_future(when: datetime, now: datetime, skew_s: float, field: str) -> None:
    """PayloadError when `when` lies more than `skew_s` ahead of `now`: a sender with a broken clock would
    otherwise make every later real update of the entity look stale (ordering is by source time)."""
    if (when - now).total_seconds() > skew_s:
        raise PayloadError(f"{field}: {when.isoformat()} is more than {skew_s:g} s ahead of our clock "
                           f"({now.isoformat()}); fix the sender's clock")


def make_meta(*, source: str, event_type: str, identity: str, occurred_at: datetime, received_at: datetime,
              source_event_id: str | None, correlation_id: str | None) -> EventMeta:
    """Event metadata with an event id derived from the delivery identity (stable across retries)."""
    return EventMeta(
        event_id=str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}:{event_type}:{identity}")),
        event_type=event_type,
        occurred_at=occurred_at,
        recorded_at=received_at,
        source=source,
        source_event_id=source_event_id,
        correlation_id=correlation_id,
        causation_id=None,
    )


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive on the wire; connectors look them up in lower case."""
    return {k.lower(): v for k, v in headers.items()}


@runtime_checkable
class LinksPayments(Protocol):
    """A connector some of whose events name their order only through a payment seen before.

    The webhook front looks the payment up (`connectors.payment_links`) before translating and
    passes what it found as `linked_order`; after publishing it remembers the (payment id, order id)
    of every record on `payments`."""

    def unlinked_payment(self, body: bytes) -> str | None:
        """The payment id to look up when the delivery names no order itself; None otherwise."""

    def translate_linked(self, headers: Mapping[str, str], body: bytes, received_at: datetime,
                         linked_order: str | None) -> list[Outgoing]:
        """`translate`, with the order a previous event linked the payment to (None: unknown)."""


@runtime_checkable
class IndexesProducts(Protocol):
    """A connector whose product deletions name only the shop's product id (`connectors.product_index`).

    The webhook front asks `deleted_product` first; for a deletion it looks the product's SKUs up and
    calls `translate_deleted` with them (never with []: an unknown id is parked). Every other delivery
    goes through `translate`, and the front remembers the SKUs of the ProductUpserted records it published."""

    def deleted_product(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """The product id when the delivery is a product deletion; None otherwise (PayloadError: bad body)."""

    def translate_deleted(self, headers: Mapping[str, str], body: bytes, received_at: datetime,
                          skus: list[str]) -> list[Outgoing]:
        """One ProductDeleted per SKU of the deleted product."""
