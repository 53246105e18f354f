"""The shop sync adapter without a broker: decoding, command encoding, and what it commits when.

Kafka is not mocked for behaviour claims about the broker (tests/integration does that on a real
one); here fakes stand in for the consumer/producer to pin down the adapter's own bookkeeping:
offsets are committed only up to the oldest record whose change is still in an open window, and
only after the commands were confirmed.
"""

from __future__ import annotations

import io
import json
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest

from shopstream import schemas
from shopstream.dlq import DeadLetterWriter
from shopstream.kafka import DeliveryError
from shopstream.processing import RetryPolicy
from shopstream.processors.inventory.shop_sync import ShopStockCommand
from shopstream.processors.inventory.shop_sync_worker import (
    COMMAND_NS,
    AtpChange,
    AtpDecoder,
    CommandEncoder,
    CommandsNotConfirmed,
    OutRecord,
    ShopSync,
    command_event_id,
)
from shopstream.schemas.models import AtpLevel, AtpLocation, EventMeta, SyncShopStock
from shopstream.serde import AvroSerde, InvalidRecord, NotAvroFramed, UnknownRecord, UnknownSchemaId
from shopstream.topology import load_topology

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
ATP_ID, SYNC_ID, OTHER_ID = 11, 12, 13


@dataclass
class FakeSchema:
    schema_str: str


class FakeRegistry:
    """The two calls the decoder and serde make, from memory."""

    def __init__(self) -> None:
        self.schemas = {ATP_ID: json.dumps(schemas.schema_for("AtpLevel")),
                        SYNC_ID: json.dumps(schemas.schema_for("SyncShopStock")),
                        OTHER_ID: json.dumps(schemas.schema_for("StockSnapshot"))}

    def get_schema(self, schema_id: int) -> FakeSchema:
        if schema_id not in self.schemas:
            from confluent_kafka.schema_registry.error import SchemaRegistryError

            raise SchemaRegistryError(404, 40403, "Schema not found")
        return FakeSchema(self.schemas[schema_id])

    def register_schema(self, subject: str, schema: Any) -> int:
        return SYNC_ID


def atp_bytes(sku: str, available: int, version: int, schema_id: int = ATP_ID) -> bytes:
    level = AtpLevel(
        meta=EventMeta(event_id=str(uuid.uuid4()), event_type="AtpLevel", occurred_at=T0, recorded_at=T0,
                       source="shopstream.inventory", correlation_id="corr-1"),
        sku=sku, on_hand=available + 2, reserved=2, safety_stock=0, incoming=0, available=available,
        version=version, updated_at=T0,
        locations=[AtpLocation(location="default", on_hand=available + 2, reserved=2, safety_stock=0, incoming=0,
                               as_of=T0)])
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, schemas.parsed_schema("AtpLevel"), schemas.to_avro(level))
    return buf.getvalue()


# -------------------------------------------------------------------------------- decode / encode


def decoder() -> AtpDecoder:
    return AtpDecoder(AvroSerde(FakeRegistry()))  # type: ignore[arg-type]


def test_decoder_reads_the_fields_as_plain_values() -> None:
    change = decoder().decode(atp_bytes("SKU-1", -4, 9))
    assert (change.sku, change.available, change.version) == ("SKU-1", -4, 9)
    assert change.updated_at_ms == int(T0.timestamp() * 1000)
    assert isinstance(change.event_id, str) and change.correlation_id == "corr-1"


@pytest.mark.parametrize(("data", "error"), [
    (b"", NotAvroFramed),
    (b"\x01\x00\x00\x00\x0b" + b"x" * 10, NotAvroFramed),
    (struct.pack(">bI", 0, 999) + b"x", UnknownSchemaId),
    (struct.pack(">bI", 0, ATP_ID) + b"\x02", InvalidRecord),
])
def test_decoder_refuses_what_is_not_an_atp_level(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decoder().decode(data)


def test_decoder_refuses_another_record_type() -> None:
    with pytest.raises(UnknownRecord):
        decoder().decode(atp_bytes("SKU-1", 1, 1, schema_id=OTHER_ID))


def test_command_encodes_to_a_valid_sync_shop_stock() -> None:
    registry = FakeRegistry()
    serde = AvroSerde(registry)  # type: ignore[arg-type]
    encoder = CommandEncoder(serde, "commands.shop")
    cause = AtpChange("SKU-1", -3, 42, 1_700_000_000_000, "ev-1", "corr-1")
    data = encoder.encode(ShopStockCommand("SKU-1", 0, 42, cause), recorded_at_ms=1_700_000_000_500)
    assert data[:5] == struct.pack(">bI", 0, SYNC_ID)
    cmd = serde.decode(data)
    assert isinstance(cmd, SyncShopStock)
    assert (cmd.sku, cmd.available, cmd.atp_version) == ("SKU-1", 0, 42)
    assert cmd.meta.event_id == str(uuid.uuid5(uuid.UUID(bytes=COMMAND_NS), "SKU-1:42"))
    assert (cmd.meta.event_type, cmd.meta.causation_id, cmd.meta.correlation_id, cmd.meta.source) == (
        "SyncShopStock", "ev-1", "corr-1", "shopstream.shop-sync")
    assert cmd.meta.occurred_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert cmd.meta.recorded_at == datetime.fromtimestamp(1_700_000_000.5, UTC)


def test_command_event_id_is_uuid5_of_sku_and_version() -> None:
    for sku, version in (("A", 1), ("SKU-ÄÖ-1", 2**40)):
        assert command_event_id(sku, version) == str(uuid.uuid5(uuid.UUID(bytes=COMMAND_NS), f"{sku}:{version}"))


# -------------------------------------------------------------------------------- the loop's bookkeeping


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        self._t, self._p, self._o, self._k, self._v = topic, partition, offset, key, value

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes | None:
        return self._k

    def value(self) -> bytes | None:
        return self._v

    def error(self) -> None:
        return None

    def headers(self) -> list[tuple[str, bytes]]:
        return []

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)


@dataclass
class FakeConsumer:
    queue: list[FakeMessage] = field(default_factory=list)
    commits: list[dict[int, int]] = field(default_factory=list)

    def poll(self, timeout: float) -> FakeMessage | None:
        return self.queue.pop(0) if self.queue else None

    def consume(self, n: int, timeout: float) -> list[FakeMessage]:
        out, self.queue = self.queue[:n], self.queue[n:]
        return out

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        assert asynchronous is False
        self.commits.append({tp.partition: tp.offset for tp in offsets})


@dataclass
class FakeProducer:
    """Confirms everything, except that the next `fail_next` sends report every record as failed."""

    sent: list[OutRecord] = field(default_factory=list)
    fail_next: int = 0
    refuse_first_once: bool = False  # the next send with 2+ records refuses only its first one

    def send(self, records: Sequence[OutRecord], timeout_s: float = 60.0) -> list[Any]:
        if self.fail_next:
            self.fail_next -= 1
            return [(FakeMessage(t, 0, -1, k, v), "broker said no") for t, k, v, _ in records]
        if self.refuse_first_once and len(records) > 1:
            self.refuse_first_once = False
            (t, k, v, _), *rest = records
            self.sent.extend(rest)
            return [(FakeMessage(t, 0, -1, k, v), "broker said no")]
        self.sent.extend(records)
        return []

    async def publish(self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None) -> None:
        """The DLQ writer's path (the runner's ConfirmingProducer.publish): one record, confirmed."""
        failed = self.send([(topic, key or b"", value, headers)])
        if failed:
            raise DeliveryError(topic, str(failed[0][1]))


class Clock:
    def __init__(self) -> None:
        self.s = 100.0

    def __call__(self) -> float:
        return self.s


def make_sync(window_ms: int = 2000, retry: RetryPolicy | None = None) -> tuple[
        ShopSync, FakeConsumer, FakeProducer, Clock]:
    registry = FakeRegistry()
    consumer, producer, clock = FakeConsumer(), FakeProducer(), Clock()
    dlq = DeadLetterWriter(producer, processor="shop-sync",  # type: ignore[arg-type]
                           routes=load_topology().dlq_routes())
    serde = AvroSerde(registry)  # type: ignore[arg-type]
    sync = ShopSync(consumer, producer, AtpDecoder(serde), CommandEncoder(serde, "commands.shop"),  # type: ignore[arg-type]
                    dlq, command_topic="commands.shop", window_ms=window_ms, source_topic="inventory.atp",
                    clock=clock, retry=retry or RetryPolicy(initial_s=0.001, max_backoff_s=0.001, max_elapsed_s=5))
    return sync, consumer, producer, clock


def msg(partition: int, offset: int, sku: str, available: int, version: int) -> FakeMessage:
    return FakeMessage("inventory.atp", partition, offset, sku.encode(), atp_bytes(sku, available, version))


def test_commits_stop_at_the_oldest_open_window_until_its_command_is_confirmed() -> None:
    sync, consumer, producer, clock = make_sync()
    consumer.queue = [msg(0, 0, "A", 5, 1), msg(0, 1, "A", 6, 2), msg(1, 0, "B", 1, 1)]
    result = sync.step()
    assert (result.read, result.sent) == (3, 0)
    # Both partitions have an open window opened by their first record: nothing is settled yet.
    assert consumer.commits == [{0: 0, 1: 0}]
    clock.s += 1.0
    consumer.queue = [msg(0, 2, "C", 3, 1)]
    sync.step()
    assert consumer.commits == [{0: 0, 1: 0}]  # unchanged positions are not committed again
    clock.s += 1.0  # A's and B's windows end (opened at 100 s, 2 s window); C's is still open
    sync.step()
    assert [(r[1], r[0]) for r in producer.sent] == [(b"A", "commands.shop"), (b"B", "commands.shop")]
    assert consumer.commits[-1] == {0: 2, 1: 1}  # partition 0 up to C's record (still pending)
    clock.s += 1.0
    sync.step()
    assert [r[1] for r in producer.sent] == [b"A", b"B", b"C"]
    assert consumer.commits[-1] == {0: 3}  # only positions that moved are committed


def test_records_needing_no_command_are_committed_at_once() -> None:
    sync, consumer, producer, clock = make_sync()
    consumer.queue = [msg(0, 0, "A", 5, 1)]
    sync.step()
    clock.s += 2.0
    sync.step()
    assert len(producer.sent) == 1
    consumer.queue = [msg(0, 1, "A", 5, 2), msg(0, 2, "A", 4, 1)]  # unchanged, then stale
    result = sync.step()
    assert (result.stale, result.sent) == (1, 0)
    assert consumer.commits[-1] == {0: 3}
    assert len(producer.sent) == 1


def test_undecodable_and_misplaced_records_go_to_the_dlq_and_do_not_block() -> None:
    sync, consumer, producer, _clock = make_sync()
    consumer.queue = [FakeMessage("inventory.atp", 0, 0, b"A", b"garbage"),
                      FakeMessage("inventory.atp", 0, 1, b"not-B", atp_bytes("B", 1, 1)),
                      FakeMessage("inventory.atp", 0, 2, b"A", None)]
    result = sync.step()
    assert (result.parked, result.ignored) == (2, 1)
    assert [(r[0], r[1]) for r in producer.sent] == [("inventory.atp.dlq", b"A"), ("inventory.atp.dlq", b"not-B")]
    headers = dict(producer.sent[0][3] or [])
    assert headers["shopstream.dlq.stage"] == b"deserialize"
    assert headers["shopstream.dlq.error.class"].endswith(b"NotAvroFramed")
    assert dict(producer.sent[1][3] or [])["shopstream.dlq.error.class"].endswith(b"MisplacedRecord")
    assert consumer.commits[-1] == {0: 3}


def test_revoke_sends_pending_windows_commits_and_forgets() -> None:
    sync, consumer, producer, _clock = make_sync()
    consumer.queue = [msg(0, 0, "A", 5, 1)]
    sync.step()
    sync.on_revoke(consumer, [])  # type: ignore[arg-type]
    assert [r[1] for r in producer.sent] == [b"A"]
    assert consumer.commits[-1] == {0: 1}
    assert sync.coalescer.known_skus() == 0


def test_unconfirmed_commands_are_resent_before_anything_is_committed() -> None:
    sync, consumer, producer, _clock = make_sync(window_ms=0)
    consumer.queue = [msg(0, 0, "A", 5, 1)]
    producer.fail_next = 2
    sync.step()
    assert [r[1] for r in producer.sent] == [b"A"]
    assert consumer.commits == [{0: 1}]


def test_commands_never_confirmed_stop_the_worker_without_a_commit() -> None:
    sync, consumer, producer, _clock = make_sync(window_ms=0, retry=RetryPolicy(initial_s=0.001, max_elapsed_s=0))
    consumer.queue = [msg(0, 0, "A", 5, 1)]
    producer.fail_next = 1
    with pytest.raises(CommandsNotConfirmed, match="broker said no"):
        sync.step()
    assert consumer.commits == []


def test_a_command_that_failed_is_not_committed_past_on_revoke() -> None:
    # The failed command's window is closed already; before the fix its figure counted as sent, so
    # the revoke's flush found nothing pending and committed past a command that never went out.
    sync, consumer, producer, _clock = make_sync(window_ms=0, retry=RetryPolicy(initial_s=0.001, max_elapsed_s=0))
    consumer.queue = [msg(0, 0, "A", 5, 1), msg(1, 0, "B", 1, 1)]
    producer.fail_next = 1
    with pytest.raises(CommandsNotConfirmed):
        sync.step()
    producer.fail_next = 1  # still failing when the worker shuts down
    sync.on_revoke(consumer, [])  # type: ignore[arg-type]
    assert consumer.commits == [] and producer.sent == []


def test_a_command_that_failed_is_resent_by_the_revoke_then_committed() -> None:
    sync, consumer, producer, _clock = make_sync(window_ms=0, retry=RetryPolicy(initial_s=0.001, max_elapsed_s=0))
    consumer.queue = [msg(0, 0, "A", 5, 1), msg(0, 1, "A", 7, 2)]
    producer.fail_next = 1
    with pytest.raises(CommandsNotConfirmed):
        sync.step()
    sync.on_revoke(consumer, [])  # the broker is back
    assert [r[1] for r in producer.sent] == [b"A"]  # the one failed command (figure 7), once
    assert consumer.commits == [{0: 2}]


def test_an_unconfirmed_figure_is_resent_before_a_newer_one_of_its_sku_never_after() -> None:
    # A's command (5) failed; a newer window of A (7) is open when the worker stops. The flush sends both:
    # the older first, each batch confirmed before the next, so the shop ends on 7.
    sync, consumer, producer, clock = make_sync(window_ms=1000, retry=RetryPolicy(initial_s=0.001, max_elapsed_s=0))
    consumer.queue = [msg(0, 0, "A", 5, 1)]
    sync.step()
    clock.s += 2
    producer.fail_next = 1
    with pytest.raises(CommandsNotConfirmed):  # A's window ended: 5 is sent, the broker refuses it
        sync.step()
    consumer.queue = [msg(0, 1, "A", 7, 2)]
    sync.step()  # a new window for A opens, not due yet
    producer.refuse_first_once = True  # sent together, 5 would be refused and re-sent after 7
    sync.on_revoke(consumer, [])  # type: ignore[arg-type]
    serde = AvroSerde(FakeRegistry())  # type: ignore[arg-type]
    decoded = [serde.decode(r[2]) for r in producer.sent if r[1] == b"A"]
    assert [c.available for c in decoded] == [5, 7]
