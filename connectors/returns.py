"""Returns connector: `POST /webhooks/returns` (a returns platform or the warehouse, pure: no I/O here).

Body (JSON object; unknown fields are ignored, the ones below are validated)::

    {
      "type": "requested" | "received" | "inspected",   # required
      "return_id": "RMA-1001-1",                         # required
      "order_id": "1001",                                # required (the topic key)
      "occurred_at": "2024-05-10T09:00:00Z",            # required, ISO-8601 with a UTC offset (or Z)
      "lines": [{                                        # required, at least one
          "sku": "TSHIRT-BLK-M", "quantity": 1,          #   required; quantity >= 1
          "line_id": "li-1",                             #   optional, the order line returned
          "reason": "too_small",                         #   optional
          "condition_grade": "as_new",                   #   inspected only, required there:
                                                         #     as_new | good | damaged | unsellable
          "restockable": true                            #   inspected only, required there
      }],
      "location": "WH-BER",            # optional; received / inspected
      "tracking_number": "...",        # optional; received (the return parcel)
      "customer_note": "...",          # optional; requested
      "inspector": "..."               # optional; inspected
    }

- Authenticity and dedupe: the carrier connector's scheme (`connectors/signing.py`):
  `X-Shopstream-Signature` = `t=…,v1=…` over the raw body with `SHOPSTREAM_RETURNS_SECRET`,
  constant-time compare, 401 when missing or wrong; dedupe on `X-Shopstream-Delivery-Id` when given;
  the event id is derived from (return_id, type, occurred_at), so a redelivery without (or with a
  new) delivery id is still a duplicate downstream.
- Events on `returns`, keyed by `order_id`: requested -> ReturnRequested (`requested_at`),
  received -> ReturnReceived (`received_at`), inspected -> ReturnInspected (`inspected_at`).
- Validation: a missing field, an unknown `type`, a bad grade, an inspected line without grade or
  restockable flag, or grade / restockable on a request or receipt (they are results of inspection):
  422 with the reasons; the front parks the raw body on `connectors.dlq`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopstream.connectors.base import Outgoing, make_meta, parse_time
from shopstream.connectors.payload import parse_body, representing
from shopstream.connectors.signing import ShopstreamSigned, shopstream_delivery_id
from shopstream.schemas.models import ConditionGrade, ReturnInspected, ReturnLine, ReturnReceived, ReturnRequested
from shopstream.topology import names

SOURCE = "returns"
RETURNS_TOPIC = names.RETURNS

ReturnType = Literal["requested", "received", "inspected"]
EVENT_TYPES: dict[str, str] = {"requested": "ReturnRequested", "received": "ReturnReceived",
                               "inspected": "ReturnInspected"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ReturnsLine(_Body):
    sku: str = Field(min_length=1)
    quantity: int = Field(ge=1, le=2**31 - 1)
    line_id: str | None = None
    reason: str | None = None
    condition_grade: ConditionGrade | None = None
    restockable: bool | None = None


class ReturnUpdate(_Body):
    """One returns delivery (see the module docstring)."""

    type: ReturnType
    return_id: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    occurred_at: str = Field(min_length=1)
    lines: list[ReturnsLine] = Field(min_length=1)
    location: str | None = None
    tracking_number: str | None = None
    customer_note: str | None = None
    inspector: str | None = None

    @model_validator(mode="after")
    def _inspection_fields(self) -> ReturnUpdate:
        for i, line in enumerate(self.lines):
            if self.type == "inspected":
                if line.condition_grade is None or line.restockable is None:
                    raise ValueError(f"lines.{i}: an inspected line needs condition_grade and restockable")
            elif line.condition_grade is not None or line.restockable is not None:
                raise ValueError(f"lines.{i}: condition_grade / restockable are results of inspection, "
                                 f"not part of a {self.type} return")
        return self


def parse_return(body: bytes) -> tuple[ReturnUpdate, datetime]:
    """Validate a returns webhook body; PayloadError with the reasons otherwise."""
    update = parse_body(ReturnUpdate, body, "returns delivery")
    return update, parse_time(update.occurred_at, "occurred_at")


class ReturnsConnector(ShopstreamSigned):
    """Translates returns deliveries into ReturnRequested / ReturnReceived / ReturnInspected."""

    name = SOURCE

    def translate(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Outgoing]:
        update, occurred = parse_return(body)
        event_type = EVENT_TYPES[update.type]
        meta = make_meta(source=SOURCE, event_type=event_type,
                         identity=f"{update.return_id}:{update.type}:{occurred.isoformat()}",
                         occurred_at=occurred, received_at=received_at, source_event_id=shopstream_delivery_id(headers),
                         correlation_id=f"returns:return:{update.return_id}")
        lines = [ReturnLine(sku=li.sku, quantity=li.quantity, line_id=li.line_id, reason=li.reason,
                            condition_grade=li.condition_grade, restockable=li.restockable) for li in update.lines]
        common: dict[str, Any] = dict(meta=meta, order_id=update.order_id, return_id=update.return_id, lines=lines)
        record: BaseModel
        with representing(f"return {update.return_id}"):
            if update.type == "requested":
                record = ReturnRequested(requested_at=occurred, customer_note=update.customer_note, **common)
            elif update.type == "received":
                record = ReturnReceived(received_at=occurred, location=update.location,
                                        tracking_number=update.tracking_number, **common)
            else:
                record = ReturnInspected(inspected_at=occurred, location=update.location, inspector=update.inspector,
                                         **common)
        return [Outgoing(topic=RETURNS_TOPIC, key=update.order_id, record=record)]
