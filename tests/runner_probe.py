"""A counting processor on the runner, for the runner's own integration tests (`python -m tests.runner_probe`).

Reads `inventory.stock` (any key) in group `runner-probe`, keeps a count per key in the runner's store
(changelog `inventory-atp-changelog`: an existing compacted topic of the topology, used by nothing
else in these tests), and writes `<key>:<count>` to `alerts.anomalies`. A value `poison` raises a
permanent error, so the record is parked on `inventory.stock.dlq`; `huge` makes an output over the
producer's `message.max.bytes` (parked too, stage `produce`) and `huge-state` a state value over it (a
changelog record that can never be written: the process halts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from shopstream.config import load_settings
from shopstream.processing import RetryPolicy
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.runner.api import Position
from shopstream.topology import names

INPUT = names.INVENTORY_STOCK
OUTPUT = names.ALERTS_ANOMALIES
CHANGELOG = "inventory-atp-changelog"
#: over librdkafka's default message.max.bytes (1,000,000)
HUGE = 1_100_000


class CountingProcessor(ProcessorBase):
    """count per key; `poison` is a permanent failure."""

    name = "runner-probe"
    inputs: tuple[str, ...] = (INPUT,)
    changelog = CHANGELOG

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        if record.value == b"poison":
            raise ValueError("poison record")
        key = record.key or b""
        count = state.get(key, 0) + 1
        if record.value == b"huge":
            return Effects([(OUTPUT, key, b"x" * HUGE)], {key: count})
        if record.value == b"huge-state":
            return Effects([(OUTPUT, key, key + b":" + str(count).encode())], {key: "9" * HUGE})
        return Effects([(OUTPUT, key, key + b":" + str(count).encode())], {key: count})

    def encode_state(self, value: Any) -> bytes:
        return str(value).encode()

    def decode_state(self, data: bytes) -> Any:
        return int(data)


class EchoProcessor(ProcessorBase):
    """Stateless: `<key>=<value>` for every record (no store, no changelog)."""

    name = "runner-echo"
    inputs: tuple[str, ...] = (INPUT,)

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        return Effects([(OUTPUT, record.key, (record.key or b"") + b"=" + (record.value or b""))])


class HoldingProcessor(ProcessorBase):
    """Deferred acks: `hold` is done only once a later `release` (or the drain on stop, if `drains`) acks it."""

    name = "runner-hold"
    inputs: tuple[str, ...] = (INPUT,)

    def __init__(self, drains: bool = False) -> None:
        self.held: list[Position] = []
        self.drains = drains

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        if record.value == b"hold":
            self.held.append((record.topic, record.partition, record.offset))
            return Effects(pending=True)
        if record.value == b"release":
            return self._release(record.key)
        return Effects([(OUTPUT, record.key, record.value or b"")])

    def _release(self, key: bytes | None) -> Effects:
        acks, self.held = self.held, []
        return Effects([(OUTPUT, key, b"released:%d" % len(acks))], acks=acks)

    def drain(self, now: float) -> list[tuple[int, Effects]]:
        return [(0, self._release(b"drain"))] if self.drains and self.held else []

    def dropped(self, partition: int) -> None:
        self.held = [h for h in self.held if h[1] != partition]


class BatchProcessor(ProcessorBase):
    """`handle_batch`: one output per record, `poison` parked; the first `failures` calls raise a Redis fault."""

    name = "runner-batch"
    inputs: tuple[str, ...] = (INPUT,)
    batched = True
    retry = RetryPolicy(initial_s=0.01, max_backoff_s=0.05, max_elapsed_s=5.0, max_attempts=2)

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls = 0

    def handle_batch(self, records: list[Record]) -> Effects:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise redis.ConnectionError("simulated: the batch's destination went away")
        effects = Effects()
        for record in records:
            if record.value == b"poison":
                effects.parked.append((record, ValueError("poison record"), "process"))
            else:
                effects.outputs.append((OUTPUT, record.key, b"batch:" + (record.value or b"")))
        return effects


if __name__ == "__main__":
    run_processor(load_settings(), CountingProcessor(), web_port=0)
