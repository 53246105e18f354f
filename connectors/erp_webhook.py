"""ERP stock delta feed: `POST /webhooks/erp` (StockAdjusted / GoodsReceived pushed by an ERP, pure: no I/O here).

The push counterpart of the file import (`connectors/erp_stock.py`, absolute StockSnapshots): an ERP
that pushes changes sends signed corrections and goods receipts as they happen.

Body (JSON; unknown fields are ignored, the ones below are validated) — one event object, or a
batch of up to `MAX_EVENTS` (500) of them::

    {"type": "stock_adjusted",                      # required: stock_adjusted | goods_received
     "id": "ADJ-2024-0042",                          # required: the ERP's id of this event, a string or
                                                     #   an integer; unique per type, the same on every resend
     "sku": "TSHIRT-BLK-M",                          # required
     "location": "WH-BER",                           # optional; missing / null / "" = "default"
     "delta": -3,                                    # required, a non-zero whole number (signed on-hand change)
     "reason": "damage",                             # required, e.g. count_correction, damage, theft, found
     "reference": "INV-77",                          # optional, the ERP document
     "adjusted_at": "2024-05-10T09:00:00+02:00"}     # required, ISO-8601 with a UTC offset (or Z)

    {"type": "goods_received", "id": "GR-881", "sku": "TSHIRT-BLK-M", "location": "WH-BER",
     "quantity": 120,                                # required, a whole number >= 1
     "purchase_order": "PO-3301",                    # optional
     "supplier": "ACME Textiles",                    # optional
     "received_at": "2024-05-10T07:30:00Z"}          # required, ISO-8601 with a UTC offset (or Z)

    {"events": [<event>, <event>, ...]}              # a batch: 0 to 500 events, published in this order

Quantities must be JSON integers: `3.0`, `"3"` and `true` are refused (a guessed stock figure is
worse than a rejected one, as in the file import). Both fit an Avro int.

- Authenticity: the carrier/returns scheme (`connectors/signing.py`): `X-Shopstream-Signature` is the
  timed hex HMAC-SHA256 (`t=…,v1=…`) of the raw body with the shared secret `SHOPSTREAM_ERP_SECRET`,
  compared in constant time. Missing, wrong, or no secret configured: 401 and nothing published.
- Events on `inventory.stock`, keyed by SKU: stock_adjusted -> StockAdjusted, goods_received ->
  GoodsReceived; `meta.source` "erp" (the system the file import names too), `meta.source_event_id`
  the ERP id, `meta.occurred_at` the adjusted_at / received_at, `meta.correlation_id`
  `erp:reference:<reference>` / `erp:purchase_order:<purchase_order>` when given.
- Idempotence: the event id is derived from (type, ERP id) only (`make_meta`), so every resend of an
  ERP event, alone or in any batch, carries the same event id and the inventory processor applies it
  once. On top, the front dedupes whole deliveries in Redis on a key taken from the (authenticated,
  valid) body: `<type>:<id>` for one event, `batch:<sha256 of the sorted type:id list>` for a batch of
  several; `X-Shopstream-Delivery-Id` is not used. A body that fails validation gets no dedupe claim,
  so a corrected resend with the same ids goes through.
- Validation is all-or-nothing per request: any invalid event (missing or ill-typed field, unknown
  type, zero delta, quantity < 1, timestamp without an offset, an id repeated within the batch for the
  same type, more than 500 events) rejects the whole request with 422, nothing is published, and the
  reason names each bad event (`events.3 (id 'ADJ-4'): delta: must not be 0`; the first 20 problems);
  the front parks the raw body on `connectors.dlq`. A broker failure half-way through a batch answers
  503; the ERP resends the batch and the events already published are duplicates downstream.
- An empty batch is acknowledged (200 `ignored`), nothing is published.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from shopstream.connectors.base import Outgoing, PayloadError, make_meta, parse_time
from shopstream.connectors.erp_stock import DEFAULT_LOCATION, SOURCE, STOCK_TOPIC
from shopstream.connectors.payload import load_json_object
from shopstream.connectors.signing import ShopstreamSigned
from shopstream.schemas.models import GoodsReceived, StockAdjusted
from shopstream.validation import problems

MAX_EVENTS = 500
MAX_REASONS = 20
AVRO_INT_MIN, AVRO_INT_MAX = -(2**31), 2**31 - 1

EventKind = Literal["stock_adjusted", "goods_received"]
EVENT_TYPES: dict[str, str] = {"stock_adjusted": "StockAdjusted", "goods_received": "GoodsReceived"}


def _id_text(value: object) -> object:
    """ERP ids may be JSON integers (database keys); they are kept as their decimal text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, strict=True)

    id: str = Field(min_length=1, max_length=200)
    sku: str = Field(min_length=1)
    location: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, v: object) -> object:
        return _id_text(v)


class AdjustmentIn(_Event):
    """One `stock_adjusted` event (see the module docstring)."""

    delta: StrictInt = Field(ge=AVRO_INT_MIN, le=AVRO_INT_MAX)
    reason: str = Field(min_length=1)
    reference: str | None = None
    adjusted_at: str = Field(min_length=1)

    @field_validator("delta")
    @classmethod
    def _non_zero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("must not be 0 (an adjustment changes on-hand)")
        return v


class ReceiptIn(_Event):
    """One `goods_received` event (see the module docstring)."""

    quantity: StrictInt = Field(ge=1, le=AVRO_INT_MAX)
    purchase_order: str | None = None
    supplier: str | None = None
    received_at: str = Field(min_length=1)


@dataclass(frozen=True)
class ErpEvent:
    """A validated event of a delivery: its kind, the ERP id, the fields, and the time as UTC."""

    kind: EventKind
    body: AdjustmentIn | ReceiptIn
    at: datetime

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.body.id}"

    @property
    def location(self) -> str:
        return self.body.location or DEFAULT_LOCATION


def _reasons(exc: ValidationError) -> list[str]:
    return problems(exc, root="(event)", strip_value_error=True)


def _parse_event(item: object) -> tuple[ErpEvent | None, list[str]]:
    """One event object -> (event, []) or (None, reasons without the event's label)."""
    if not isinstance(item, dict):
        return None, [f"expected an event object, got {type(item).__name__}"]
    kind = item.get("type")
    try:
        if kind == "stock_adjusted":
            adjustment = AdjustmentIn.model_validate(item)
            return ErpEvent("stock_adjusted", adjustment, parse_time(adjustment.adjusted_at, "adjusted_at")), []
        if kind == "goods_received":
            receipt = ReceiptIn.model_validate(item)
            return ErpEvent("goods_received", receipt, parse_time(receipt.received_at, "received_at")), []
    except ValidationError as exc:
        return None, _reasons(exc)
    except PayloadError as exc:
        return None, [str(exc)]
    got = "missing" if kind is None else repr(kind)
    return None, [f"type: {got}, expected {' | '.join(EVENT_TYPES)}"]


def _label(index: int, item: object) -> str:
    ident = _id_text(item.get("id")) if isinstance(item, dict) else None
    return f"events.{index}" + (f" (id {ident!r})" if isinstance(ident, str) and ident else "")


def parse_delivery(body: bytes) -> list[ErpEvent]:
    """Validate an ERP webhook body (one event or a batch); PayloadError naming every bad event otherwise."""
    data = load_json_object(body)
    if "events" in data:
        items = data["events"]
        if not isinstance(items, list):
            raise PayloadError(f"events: expected a list of event objects, got {type(items).__name__}")
        if len(items) > MAX_EVENTS:
            raise PayloadError(f"events: {len(items)} events in one request, at most {MAX_EVENTS}; "
                               "send them in several requests")
        batch = True
    elif "type" in data:
        items, batch = [data], False
    else:
        raise PayloadError('expected an event object with "type" (stock_adjusted | goods_received) '
                           'or a batch {"events": [...]}')
    events: list[ErpEvent] = []
    problems: list[str] = []
    bad = 0
    first_of: dict[str, int] = {}
    for i, item in enumerate(items):
        event, reasons = _parse_event(item)
        if event is not None:
            seen = first_of.setdefault(event.key, i)
            if seen != i:
                reasons = [f"{event.kind} id {event.body.id!r} repeats events.{seen}"]
            else:
                events.append(event)
        if reasons:
            bad += 1
            prefix = f"{_label(i, item)}: " if batch else ""
            problems += [prefix + r for r in reasons]
    if problems:
        shown = "; ".join(problems[:MAX_REASONS])
        more = f"; … and {len(problems) - MAX_REASONS} more" if len(problems) > MAX_REASONS else ""
        scope = f"{bad} of {len(items)} events invalid, nothing published" if batch else "nothing published"
        raise PayloadError(f"not a valid ERP stock delivery ({scope}): {shown}{more}")
    return events


def dedupe_key(events: list[ErpEvent]) -> str | None:
    """The delivery's dedupe key: `<type>:<id>` for one event, a digest of the sorted keys for several."""
    if not events:
        return None
    if len(events) == 1:
        return events[0].key
    digest = hashlib.sha256("\n".join(sorted(e.key for e in events)).encode()).hexdigest()
    return f"batch:{digest[:40]}"


class ErpWebhookConnector(ShopstreamSigned):
    """Translates ERP pushes into StockAdjusted / GoodsReceived on `inventory.stock`."""

    name = SOURCE

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return None  # the ERP's event ids are the dedupe key: see delivery_id_from_body

    def delivery_id_from_body(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """The dedupe key of a valid body; None for an invalid one (no claim: a corrected resend goes through)."""
        try:
            return dedupe_key(parse_delivery(body))
        except PayloadError:
            return None

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        return [Outgoing(topic=STOCK_TOPIC, key=e.body.sku, record=self._record(e, received_at))
                for e in parse_delivery(body)]

    @staticmethod
    def _record(event: ErpEvent, received_at: datetime) -> BaseModel:
        b = event.body
        common: dict[str, Any] = dict(sku=b.sku, location=event.location)
        if isinstance(b, AdjustmentIn):
            correlation = f"erp:reference:{b.reference}" if b.reference else None
            meta = make_meta(source=SOURCE, event_type="StockAdjusted", identity=b.id, occurred_at=event.at,
                             received_at=received_at, source_event_id=b.id, correlation_id=correlation)
            return StockAdjusted(meta=meta, delta=b.delta, reason=b.reason, reference=b.reference,
                                 adjusted_at=event.at, **common)
        correlation = f"erp:purchase_order:{b.purchase_order}" if b.purchase_order else None
        meta = make_meta(source=SOURCE, event_type="GoodsReceived", identity=b.id, occurred_at=event.at,
                         received_at=received_at, source_event_id=b.id, correlation_id=correlation)
        return GoodsReceived(meta=meta, quantity=b.quantity, purchase_order=b.purchase_order, supplier=b.supplier,
                             received_at=event.at, **common)
