"""Meta of every record the orders processor produces: deterministic ids derived from the cause. Pure.

Produced records carry `meta.event_id = uuid5(ORDERS_NAMESPACE, "<record>:<cause event id>[:<part>]")`,
so a replay produces identical ids; `event_type` is the record name, `source` is `shopstream.orders`,
`causation_id` the cause event id, `correlation_id`, `occurred_at` and `recorded_at` are the cause's.

Derived records are not validated again
---------------------------------------
The records `lifecycle`, `canonical` (and the modules it uses) and `reservations` derive from
validated models (the event, the stored state, mapping and table values) are built with
`model_construct`: re-validating every derived OrderState, EventMeta, snapshot, change and
reservation was ~30% of an order's CPU (issue 14's profile). The bounds still hold where they
matter: the Avro writer (`shopstream.codecs.model_writer`) refuses an unknown enum symbol, an int
out of range, a decimal beyond its precision or scale and a naive timestamp, so nothing invalid is
published.
"""

from __future__ import annotations

import uuid

from shopstream.codecs.avro import event_uuid5
from shopstream.schemas.models import EventMeta

OUTPUT_SOURCE = "shopstream.orders"
# Namespace of the deterministic ids of records this processor produces.
ORDERS_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:shopstream:processor:orders")
# Its 16 bytes, for `event_uuid5` (the same ids as `uuid.uuid5(ORDERS_NAMESPACE, name)`, without a UUID object).
ORDERS_NAMESPACE_BYTES = ORDERS_NAMESPACE.bytes


def output_meta(record: str, cause: EventMeta, part: str = "") -> EventMeta:
    """Meta of a record produced by this processor: id derived from the cause, so replays match.

    The id is `uuid5(ORDERS_NAMESPACE, "<record>:<cause event id>")`, with `":<part>"` appended when
    one cause produces several records of one type (e.g. a StockAdjusted per SKU).
    """
    name = f"{record}:{cause.event_id}" + (f":{part}" if part else "")
    # Built from a validated meta and a derived id: not validated again (module docstring, "Derived records").
    return EventMeta.model_construct(
        event_id=event_uuid5(ORDERS_NAMESPACE_BYTES, name),
        event_type=record,
        occurred_at=cause.occurred_at,
        recorded_at=cause.recorded_at,
        source=OUTPUT_SOURCE,
        source_event_id=None,
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
    )
