"""What one `canonical.apply` / `expire` call produces: its outputs by topic, steps and `RecordOutcome`. Pure.

`Run` accumulates the records of one call (`emit`, `review`) and turns them into the `RecordOutcome`
the adapter publishes and stores; the topics are the logical names the adapter maps to physical ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from shopstream.schemas.models import EventMeta, OrderState, ReviewItem
from shopstream.topology import names

from .output_meta import output_meta
from .record import OrderRecord

TOPIC_STATE = names.ORDERS_STATE
TOPIC_CHANGES = names.ORDERS_STATUS_CHANGES
TOPIC_REVIEW = names.REVIEW_QUEUE
TOPIC_ERP = names.COMMANDS_ERP
TOPIC_FULFILLMENT = names.COMMANDS_FULFILLMENT
TOPIC_PAYMENTS = names.COMMANDS_PAYMENTS
TOPIC_ALERTS = names.ALERTS_ANOMALIES
TOPIC_STOCK = names.INVENTORY_STOCK
TOPIC_RESERVATIONS = names.INVENTORY_RESERVATIONS
TOPIC_SHOP = names.COMMANDS_SHOP


@dataclass(frozen=True)
class Output:
    """One record to publish: logical topic name, key (the adapter encodes it as UTF-8), record."""

    topic: str
    key: str
    record: BaseModel


@dataclass(frozen=True)
class Step:
    """One applied event that changed the canonical state (for per-step consumers such as reservations)."""

    cause: EventMeta
    before: OrderState | None
    after: OrderState
    rule: str


@dataclass(frozen=True)
class RecordOutcome:
    """What applying one event (or an expiry sweep) did.

    `record`: the order's table entry afterwards; store `record.to_dict()` when `changed` (after the
    broker confirmed every output). `outputs`: every record to publish, in order. `state`: the new
    canonical state when it changed (also among `outputs`). `steps`: each applied event that changed
    the canonical state (several when parked events were applied). `duplicate`: the event changed
    nothing and emitted nothing. `parked`: the event waits for its order. `rejected`: reasons of
    refused events (their ReviewItems are among `outputs`). `notes`: why things were no-ops.
    """

    record: OrderRecord
    changed: bool
    outputs: tuple[Output, ...] = ()
    state: OrderState | None = None
    steps: tuple[Step, ...] = ()
    duplicate: bool = False
    parked: bool = False
    rejected: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class Run:
    """Accumulates the outputs of one `apply` / `expire` call."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.steps: list[Step] = []
        self.rejected: list[str] = []
        self.notes: list[str] = []
        self.parked = False

    def emit(self, topic: str, key: str, record: BaseModel) -> None:
        self.outputs.append(Output(topic, key, record))

    def review(self, order_id: str, cause: EventMeta, kind: str, reason: str, *, part: str = "",
               details: dict[str, str] | None = None, rule: str | None = None) -> None:
        self.emit(TOPIC_REVIEW, order_id, ReviewItem(
            meta=output_meta("ReviewItem", cause, part or kind), order_id=order_id, kind=kind, reason=reason,
            details=details or {}, event_id=cause.event_id, event_type=cause.event_type, rule=rule))

    def outcome(self, start: OrderRecord, end: OrderRecord) -> RecordOutcome:
        changed = end != start
        outputs = list(self.outputs)
        state = end.state if end.state is not None and end.state != start.state else None
        if state is not None:
            outputs.append(Output(TOPIC_STATE, end.order_id, state))
        duplicate = not changed and not outputs and not self.rejected and not self.parked
        return RecordOutcome(record=end, changed=changed, outputs=tuple(outputs), state=state,
                             steps=tuple(self.steps), duplicate=duplicate, parked=self.parked,
                             rejected=tuple(self.rejected), notes=tuple(self.notes))
