"""A counting processor on the runner, for the runner's own integration tests (`python -m tests.runner_probe`).

Reads `inventory.stock` (any key) in group `runner-probe`, keeps a count per key in the runner's store
(changelog `inventory-atp-changelog`: an existing compacted topic of the topology, used by nothing
else in these tests), and writes `<key>:<count>` to `alerts.anomalies`. A value `poison` raises a
permanent error, so the record is parked on `inventory.stock.dlq`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopstream.config import load_settings
from shopstream.runner import Effects, ProcessorBase, Record, run_processor
from shopstream.topology import names

INPUT = names.INVENTORY_STOCK
OUTPUT = names.ALERTS_ANOMALIES
CHANGELOG = "inventory-atp-changelog"


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


if __name__ == "__main__":
    run_processor(load_settings(), CountingProcessor(), web_port=0)
