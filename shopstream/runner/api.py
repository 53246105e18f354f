"""What a processor gives the runner, and what the runner hands it: plain values, no Kafka client."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shopstream.processing import RetryPolicy

#: Where a consumed record sits: (physical topic, partition, offset).
Position = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed input record; `label` is its logical topic name (metrics, routing)."""

    topic: str
    label: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


@dataclass(slots=True)
class Effects:
    """What handling a record (or a tick) produced: outputs to send and state to write, applied only together.

    `outputs`: (logical topic, key, value bytes), sent in order; `writes`: key -> new state (None
    deletes) of the record's partition, stored once every output and changelog record is confirmed.
    Deferred acknowledgement: `pending` (from `handle`) means the record is not done when these effects
    are confirmed — it holds its partition's commit until a later Effects (from `handle`, `tick` or
    `drain`) names it in `acks`; acks count only once that Effects' outputs are confirmed.
    `parked` (from `handle_batch` only): records that can never be handled, with the error and the
    DLQ stage; the runner parks them (the one DLQ path) before confirming the outputs."""

    outputs: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    writes: dict[bytes, Any] = field(default_factory=dict)
    pending: bool = False
    acks: list[Position] = field(default_factory=list)
    parked: list[tuple[Record, BaseException, str]] = field(default_factory=list)


class Processor(Protocol):
    """A processor on the runner: its inputs, optional changelogged state, a pure-ish handler per record."""

    #: Logical name: consumer group, metrics label, DLQ `processor` header.
    name: str
    #: Logical input topics (co-partitioned when there is state).
    inputs: tuple[str, ...]
    #: Logical changelog topic of the state store, or None for a stateless processor.
    changelog: str | None
    #: True when the state's keys depend on each other (one record's dedupe evidence in one key, its counts
    #: in another): a batch's changelog records then end with a marker, and a restore ignores records past
    #: the last marker (a batch cut off by a crash), so the restored keys are all of one batch's end.
    atomic_state: bool
    #: Seconds between `tick` calls, or None for no tick.
    tick_interval_s: float | None
    #: Records per poll at most (a poll's outputs are queued together; confirmed once per commit interval).
    batch_size: int
    #: True: the runner hands each poll to `handle_batch` (stateless processors only), not `handle`.
    batched: bool
    #: The retry policy of this processor, or None for the runner's (SHOPSTREAM_RETRY_MAX_ELAPSED_S).
    retry: RetryPolicy | None
    #: The `processor` header of its dead letters, or None for `name`.
    dlq_name: str | None

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Decode and apply one record against its partition's state; raise on failure (the runner classifies)."""
        ...

    def handle_batch(self, records: list[Record]) -> Effects:
        """A whole poll at once (`batched`); must be idempotent: a transient fault re-runs or rewinds the batch."""
        ...

    def drain(self, now: float) -> Iterable[tuple[int, Effects]]:
        """Settle what is pending now (before a revoke's commit and on stop): effects acking held records."""
        ...

    def encode_state(self, value: Any) -> bytes:
        """A state value as changelog bytes."""
        ...

    def decode_state(self, data: bytes) -> Any:
        """Changelog bytes as a state value (on restore)."""
        ...

    def tick(self, now: float, states: Mapping[int, Mapping[bytes, Any]]) -> Iterable[tuple[int, Effects]]:
        """Periodic work over owned state (per partition), in the loop's thread between batches."""
        ...

    def restored(self, partition: int, state: Mapping[bytes, Any]) -> None:
        """A partition's state was restored from the changelog (assignment)."""
        ...

    def dropped(self, partition: int) -> None:
        """A partition's state was dropped (revoke or loss)."""
        ...

    def stored(self, partition: int, writes: Mapping[bytes, Any]) -> None:
        """A batch's writes were confirmed and stored."""
        ...


class ProcessorBase:
    """Defaults for the optional parts: no state, no tick, no hooks."""

    changelog: str | None = None
    atomic_state: bool = False
    tick_interval_s: float | None = None
    batch_size: int = 500
    batched: bool = False
    retry: RetryPolicy | None = None
    dlq_name: str | None = None

    def handle(self, record: Record, state: Mapping[bytes, Any]) -> Effects:
        """Batched processors are never called here."""
        raise NotImplementedError

    def handle_batch(self, records: list[Record]) -> Effects:
        """Only batched processors are called here."""
        raise NotImplementedError

    def drain(self, now: float) -> Iterable[tuple[int, Effects]]:
        """Nothing held back."""
        return ()

    def encode_state(self, value: Any) -> bytes:
        """Stateless processors never call this."""
        raise NotImplementedError

    def decode_state(self, data: bytes) -> Any:
        """Stateless processors never call this."""
        raise NotImplementedError

    def tick(self, now: float, states: Mapping[int, Mapping[bytes, Any]]) -> Iterable[tuple[int, Effects]]:
        """No periodic work."""
        return ()

    def restored(self, partition: int, state: Mapping[bytes, Any]) -> None:
        """Nothing to rebuild."""

    def dropped(self, partition: int) -> None:
        """Nothing to forget."""

    def stored(self, partition: int, writes: Mapping[bytes, Any]) -> None:
        """Nothing to track."""
