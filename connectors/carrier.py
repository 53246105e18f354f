"""Carrier connector: `POST /webhooks/carrier` (tracking updates relayed by a carrier hub, pure: no I/O here).

Body (JSON object; unknown fields are ignored, the ones below are validated)::

    {
      "tracking_number": "1Z999AA10123456784",       # required
      "carrier": "ups",                               # required, carrier name as the hub spells it
      "order_id": "1001",                             # required, the shop's order id (the topic key)
      "status": "InTransit",                          # required, the status system's raw status
      "status_system": "aftership",                   # required: aftership | dhl | easypost (a table in
                                                      #   topology/carrier.yaml)
      "occurred_at": "2024-05-02T08:15:00+02:00",    # required, ISO-8601 with a UTC offset (or Z)
      "location": "Hamburg, DE",                      # optional
      "shipment_id": "ship-77",                       # optional; default: the tracking number
      "lines": [{"sku": "TSHIRT-BLK-M", "quantity": 2}],  # optional; empty = the whole shipment
      "detail": "Arrived at sort facility",           # optional, the carrier's free text
      "tracking_url": "https://...",                  # optional
      "signed_by": "J. DOE"                           # optional (delivered)
    }

- Authenticity: `X-Shopstream-Signature: t=<unix seconds>,v1=<hex>`, the hex HMAC-SHA256 of
  `f"{t}." + raw body` with the shared secret (`SHOPSTREAM_CARRIER_SECRET`, `new,old` while rotating),
  `t` within the tolerance; the untimed legacy form only behind `SHOPSTREAM_SIGNATURE_ACCEPT_LEGACY`.
  Missing, wrong, stale, or an empty secret configured: 401. The returns and ERP connectors use the
  same scheme (`connectors/signing.py`: `shopstream_signature`, `shopstream_signature_valid`,
  `ShopstreamSigned`).
- Dedupe: on `X-Shopstream-Delivery-Id` when the sender gives one (also the `source_event_id`).
  Without it there is no dedupe claim; a redelivery is still a duplicate downstream because the
  event id is derived from (carrier, tracking_number, status, occurred_at) — the same for every
  delivery of the same scan, with or without a delivery id.
- Mapping: `status_system` + `status` -> canonical event by the data in `topology/carrier.yaml`
  (`connectors/carrier_mapping.py`). `ignore` entries are acknowledged (200 `ignored`), nothing is
  published. A status (or status system) the tables do not cover: 422 naming both, and the body
  is parked on `connectors.dlq` by the front; add the entry and replay.
- Events on `fulfillment.shipments`, keyed by `order_id`: ShipmentCreated (`created_at`),
  ShipmentDispatched (`dispatched_at`), ShipmentDelivered (`delivered_at`), ShipmentException
  (`reported_at`, `exception_code` and `returning_to_sender` from the table), all at `occurred_at`.
  `status_detail` is `"<status_system> <status>"`, plus `": <detail>"` when given.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shopstream.connectors.base import Outgoing, PayloadError, make_meta, parse_time
from shopstream.connectors.carrier_mapping import CarrierMapping, load_carrier_mapping
from shopstream.connectors.payload import parse_body, representing
from shopstream.connectors.signing import Secrets, ShopstreamSigned, shopstream_delivery_id
from shopstream.schemas.models import (
    EventMeta,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    ShipmentLine,
)
from shopstream.topology import names

SOURCE = "carrier"
SHIPMENTS_TOPIC = names.FULFILLMENT_SHIPMENTS


class _Body(BaseModel):
    # Senders add fields; unknown ones are ignored, the ones we read are validated.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class CarrierLine(_Body):
    sku: str = Field(min_length=1)
    quantity: int = Field(ge=1, le=2**31 - 1)


class CarrierUpdate(_Body):
    """One tracking update (see the module docstring)."""

    tracking_number: str = Field(min_length=1)
    carrier: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    status: str = Field(min_length=1)
    status_system: str = Field(min_length=1)
    occurred_at: str = Field(min_length=1)
    location: str | None = None
    shipment_id: str | None = None
    lines: list[CarrierLine] = Field(default_factory=list)
    detail: str | None = None
    tracking_url: str | None = None
    signed_by: str | None = None


def parse_update(body: bytes) -> tuple[CarrierUpdate, datetime]:
    """Validate a carrier webhook body; PayloadError with the reasons otherwise."""
    update = parse_body(CarrierUpdate, body, "carrier tracking update")
    return update, parse_time(update.occurred_at, "occurred_at")


class CarrierConnector(ShopstreamSigned):
    """Translates carrier tracking updates into canonical Shipment* events."""

    name = SOURCE

    def __init__(self, secret: Secrets, mapping: CarrierMapping | None = None, **signing: Any) -> None:
        super().__init__(secret, **signing)
        self._mapping = mapping if mapping is not None else load_carrier_mapping()

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        update, occurred = parse_update(body)
        if update.status_system not in self._mapping.systems:
            raise PayloadError(f"unknown status_system {update.status_system!r} "
                               f"(known: {', '.join(sorted(self._mapping.systems))})")
        entry = self._mapping.entry(update.status_system, update.status)
        if entry is None:
            raise PayloadError(f"unknown carrier status {update.status!r} of status system "
                               f"{update.status_system!r}: no entry in topology/carrier.yaml")
        if entry.event == "ignore":
            return []
        meta = make_meta(
            source=SOURCE, event_type=entry.event,
            identity=f"{update.carrier.lower()}:{update.tracking_number}:{update.status}:{occurred.isoformat()}",
            occurred_at=occurred, received_at=received_at, source_event_id=shopstream_delivery_id(headers),
            correlation_id=f"carrier:tracking:{update.tracking_number}")
        with representing(f"tracking update {update.tracking_number} {update.status}"):
            record = self._record(entry.event, update, occurred, meta, entry.exception_code or "",
                                  entry.returning_to_sender)
        return [Outgoing(topic=SHIPMENTS_TOPIC, key=update.order_id, record=record)]

    @staticmethod
    def _record(event: str, u: CarrierUpdate, occurred: datetime, meta: EventMeta, exception_code: str,
                returning: bool) -> BaseModel:
        lines = [ShipmentLine(sku=li.sku, quantity=li.quantity) for li in u.lines]
        shipment_id = u.shipment_id or u.tracking_number
        detail = f"{u.status_system} {u.status}" + (f": {u.detail}" if u.detail else "")
        common: dict[str, Any] = dict(meta=meta, order_id=u.order_id, shipment_id=shipment_id, carrier=u.carrier,
                                      tracking_number=u.tracking_number, lines=lines)
        if event == "ShipmentCreated":
            return ShipmentCreated(location=u.location, created_at=occurred, **common)
        if event == "ShipmentDispatched":
            return ShipmentDispatched(tracking_url=u.tracking_url, location=u.location, dispatched_at=occurred,
                                      status_detail=detail, **common)
        if event == "ShipmentDelivered":
            return ShipmentDelivered(delivered_at=occurred, signed_by=u.signed_by, status_detail=detail, **common)
        return ShipmentException(exception_code=exception_code, status_detail=detail, reported_at=occurred,
                                 returning_to_sender=returning, **common)
