"""The return label a carrier can sell as it is: `CreateReturnLabel`. Pure.

`canonical` decides *whether* a return gets a label (`returns.decide_label`: the window, the
non-returnable SKUs); this module fills in *what* the label needs, from the order record and the
returns policy's `label` section:

  ship_from       the customer's shipping address (else the billing address) as the shop gave it
  ship_to         the returns warehouse (`label.ship_to`)
  carrier/service `label.carrier` / `label.service`
  customer_email  the buyer's e-mail (the carrier mails the label); customer_name the address name,
                  else the buyer's name
  lines           the requested return lines
  weight_grams    sum over the lines of quantity x the order line's unit `grams` (matched by line id,
                  else SKU), `label.default_unit_grams` for a unit whose weight the shop did not give

`meta.event_id` derives from the return request (`output_meta`), so a replay re-emits the
same label command and the carrier adapter dedupes on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from shopstream.schemas.models import Address, CreateReturnLabel, OrderLine, ReturnLine

from .output_meta import output_meta
from .policy import PolicyAddress, ReturnsPolicy
from .record import OrderRecord
from .returns import ReturnRequest


def _unit_grams(line: ReturnLine, order_lines: Sequence[OrderLine], default: int) -> int:
    match = next((o for o in order_lines if line.line_id is not None and o.line_id == line.line_id), None)
    match = match or next((o for o in order_lines if o.sku == line.sku), None)
    return match.grams if match is not None and match.grams is not None else default


def parcel_grams(lines: Sequence[ReturnLine], order_lines: Sequence[OrderLine], default_unit_grams: int) -> int:
    """The parcel weight: units x unit grams (the policy's default where the order gives none)."""
    return sum(x.quantity * _unit_grams(x, order_lines, default_unit_grams) for x in lines)


def _address(value: PolicyAddress | None) -> Address | None:
    if value is None:
        return None
    return Address(**value.model_dump())


def build_label(rec: OrderRecord, order_lines: Sequence[OrderLine], return_id: str, request: ReturnRequest,
                policy: ReturnsPolicy) -> CreateReturnLabel:
    """The CreateReturnLabel of an approved return request."""
    ship_from = rec.shipping_address or rec.billing_address
    customer = rec.customer
    name = (ship_from.name if ship_from is not None else None) or (customer.name if customer is not None else None)
    label = policy.label
    return CreateReturnLabel(
        meta=output_meta("CreateReturnLabel", request.meta), order_id=rec.order_id, return_id=return_id,
        carrier=label.carrier, ship_from=ship_from, customer_email=customer.email if customer is not None else None,
        lines=list(request.lines), service=label.service, ship_to=_address(label.ship_to),
        weight_grams=parcel_grams(request.lines, order_lines, label.default_unit_grams), customer_name=name,
        order_number=rec.order_number)
