"""The shop sync processor without a broker: decoding, command encoding, and what it lets the runner commit.

Kafka is not mocked for behaviour claims about the broker (tests/integration does that on a real
one); here a small harness plays the runner's part — `DoneOffsets`, a record done unless `pending`,
acks counted once a tick's or drain's outputs are "confirmed" — to pin down the processor's own
bookkeeping: offsets are committed only up to the oldest record whose change is still in an open
window, and only with the command that carries it.
"""

from __future__ import annotations

import io
import json
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest

from shopstream import schemas
from shopstream.processors.inventory.shop_sync import ShopStockCommand
from shopstream.processors.inventory.shop_sync_worker import (
    COMMAND_NS,
    AtpChange,
    AtpDecoder,
    CommandEncoder,
    MisplacedRecord,
    ShopSyncProcessor,
    command_event_id,
)
from shopstream.runner import Effects, Record
from shopstream.runner.offsets import DoneOffsets
from shopstream.schemas.models import AtpLevel, AtpLocation, EventMeta, SyncShopStock
from shopstream.serde import (
    AvroSerde,
    InvalidRecord,
    NotAvroFramed,
    RegistryUnavailable,
    UnknownRecord,
    UnknownSchemaId,
)

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


# -------------------------------------------------------------------------------- what may be committed


class Clock:
    def __init__(self) -> None:
        self.s = 100.0

    def __call__(self) -> float:
        return self.s


class Harness:
    """The runner's part: read -> handle -> done unless pending; tick/drain outputs confirmed -> acks done."""

    def __init__(self, window_ms: int = 2000) -> None:
        self.registry = FakeRegistry()
        serde = AvroSerde(self.registry)  # type: ignore[arg-type]
        self.serde = serde
        self.clock = Clock()
        self.proc = ShopSyncProcessor(AtpDecoder(serde), CommandEncoder(serde, "commands.shop"),
                                      window_ms=window_ms, clock=self.clock)
        self.offsets = DoneOffsets()
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def feed(self, *records: Record) -> list[Effects]:
        out = []
        for record in records:
            tp = (record.topic, record.partition)
            self.offsets.read(tp, record.offset)
            effects = self.proc.handle(record, {})
            if not effects.pending:
                self.offsets.done(tp, record.offset)
            out.append(effects)
        return out

    def settle(self, work: object) -> None:
        assert isinstance(work, list)
        for _, effects in work:
            self.sent += effects.outputs
            for topic, partition, offset in effects.acks:
                self.offsets.done((topic, partition), offset)

    def tick(self) -> None:
        self.settle(list(self.proc.tick(0.0, {})))

    def positions(self) -> dict[int, int]:
        return {p: o for (_, p), o in self.offsets.positions().items()}

    def figures(self) -> list[tuple[bytes | None, int]]:
        out = []
        for topic, key, value in self.sent:
            cmd = self.serde.decode(value)
            assert topic == "commands.shop" and isinstance(cmd, SyncShopStock)
            out.append((key, cmd.available))
        return out


def rec(partition: int, offset: int, sku: str, available: int, version: int) -> Record:
    return Record("inventory.atp", "inventory.atp", partition, offset, sku.encode(), atp_bytes(sku, available, version))


def test_commits_stop_at_the_oldest_open_window_until_its_command_is_confirmed() -> None:
    h = Harness()
    h.feed(rec(0, 0, "A", 5, 1), rec(0, 1, "A", 6, 2), rec(1, 0, "B", 1, 1))
    h.tick()
    assert h.sent == [] and h.positions() == {}  # both openers held: nothing to commit
    assert h.offsets.in_flight() == 2
    h.clock.s += 1.0
    h.feed(rec(0, 2, "C", 3, 1))
    h.tick()
    assert h.sent == []
    h.clock.s += 1.0  # A's and B's windows end (opened at 100 s, 2 s window); C's is still open
    h.tick()
    assert h.figures() == [(b"A", 6), (b"B", 1)]
    assert h.positions() == {0: 2, 1: 1}  # partition 0 up to C's record (still pending)
    h.offsets.committed(h.offsets.positions())
    h.clock.s += 1.0
    h.tick()
    assert h.figures() == [(b"A", 6), (b"B", 1), (b"C", 3)]
    assert h.positions() == {0: 3}  # only positions that moved


def test_records_needing_no_command_are_done_at_once() -> None:
    h = Harness()
    h.feed(rec(0, 0, "A", 5, 1))
    h.clock.s += 2.0
    h.tick()
    assert len(h.sent) == 1
    effects = h.feed(rec(0, 1, "A", 5, 2), rec(0, 2, "A", 4, 1))  # unchanged, then stale
    assert [e.pending for e in effects] == [False, False]
    assert h.positions() == {0: 3} and len(h.sent) == 1


def test_a_window_that_came_back_to_the_figure_sent_acks_its_opener_without_a_command() -> None:
    h = Harness()
    h.feed(rec(0, 0, "A", 5, 1))
    h.clock.s += 2.0
    h.tick()
    h.feed(rec(0, 1, "A", 7, 2), rec(0, 2, "A", 5, 3))  # a burst back to what the shop shows
    assert h.positions() == {0: 1}
    h.clock.s += 2.0
    h.tick()
    assert len(h.sent) == 1 and h.positions() == {0: 3}


def test_undecodable_and_misplaced_records_raise_for_the_runner_to_park_and_tombstones_are_ignored() -> None:
    h = Harness()
    with pytest.raises(NotAvroFramed):
        h.proc.handle(Record("inventory.atp", "inventory.atp", 0, 0, b"A", b"garbage"), {})
    with pytest.raises(MisplacedRecord):
        h.proc.handle(Record("inventory.atp", "inventory.atp", 0, 1, b"not-B", atp_bytes("B", 1, 1)), {})
    [effects] = h.feed(Record("inventory.atp", "inventory.atp", 0, 2, b"A", None))
    assert effects == Effects() and h.positions() == {0: 3} and h.offsets.in_flight() == 0


def test_drain_sends_every_open_window_and_acks_it_then_dropped_forgets() -> None:
    h = Harness()
    h.feed(rec(0, 0, "A", 5, 1), rec(1, 0, "B", 2, 1))
    h.settle(list(h.proc.drain(0.0)))  # before a revoke's commit, and on stop
    assert h.figures() == [(b"A", 5), (b"B", 2)]
    assert h.positions() == {0: 1, 1: 1}
    h.proc.dropped(0)
    assert h.proc.coalescer.known_skus() == 0 and h.proc.coalescer.pending_count() == 0


def test_registry_away_at_a_tick_closes_no_window_and_acks_nothing() -> None:
    h = Harness(window_ms=0)
    h.feed(rec(0, 0, "A", 5, 1))

    def away(subject: str, schema: Any) -> int:
        raise RegistryUnavailable("registry away")

    h.registry.register_schema = away  # type: ignore[method-assign]
    with pytest.raises(RegistryUnavailable):
        h.tick()
    assert h.proc.coalescer.pending_count() == 1 and h.positions() == {}
    del h.registry.register_schema
    h.tick()  # the next tick: the window is still there and goes out
    assert h.figures() == [(b"A", 5)] and h.positions() == {0: 1}
