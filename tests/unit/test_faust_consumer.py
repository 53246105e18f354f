"""The Faust consumer fix (shopstream/faust_app.py): fetched records are delivered or read again, never skipped.

Also a canary for the faust-streaming and aiokafka internals the fix relies on: when an upgrade moves
them, this fails instead of the workers silently losing records again.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from aiokafka.consumer.fetcher import Fetcher
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from shopstream.faust_app import _Consumer, split_fetched, stalled_partitions


@dataclass(frozen=True)
class Rec:
    offset: int


def test_records_of_active_and_buffered_partitions_are_kept() -> None:
    records = {"a": [Rec(5), Rec(6)], "b": [Rec(9)]}
    keep, rewind = split_fetched(records, active={"a"}, buffered={"b"})
    assert keep == records
    assert rewind == {}


def test_a_partition_paused_meanwhile_is_rewound_to_its_first_fetched_record() -> None:
    records = {"a": [Rec(5), Rec(6)], "paused": [Rec(312), Rec(313), Rec(319)]}
    keep, rewind = split_fetched(records, active={"a"}, buffered=set())
    assert keep == {"a": records["a"]}
    assert rewind == {"paused": 312}


def test_nothing_active_keeps_nothing() -> None:
    keep, rewind = split_fetched({"x": [Rec(1)]}, active=set(), buffered=set())
    assert keep == {}
    assert rewind == {"x": 1}


def test_canary_faust_internals_the_fix_overrides_are_where_it_expects_them() -> None:
    # The override replaces ThreadDelegateConsumer._getmany(active_partitions, timeout) ...
    assert list(inspect.signature(faust_consumer.ThreadDelegateConsumer._getmany).parameters) == [
        "self", "active_partitions", "timeout"]
    assert _Consumer._getmany is not faust_aiokafka.Consumer._getmany
    # ... Faust still filters a fetched batch by its live active set and the buffered set ...
    getmany = inspect.getsource(faust_consumer.Consumer.getmany)
    assert "tp in active_partitions" in getmany and "self._buffered_partitions" in getmany
    # ... and rewinds through the client thread's seek_wait.
    assert hasattr(faust_aiokafka.AIOKafkaConsumerThread, "seek_wait")


def test_canary_aiokafka_reads_an_empty_partition_filter_as_every_partition() -> None:
    # The reason for the snapshot: `if partitions and tp not in partitions` drains every partition for {}.
    assert "if partitions and tp not in partitions" in inspect.getsource(Fetcher.fetched_records)


# --- the stall guard: a commit stuck behind records read past but never processed --------------------


def test_records_read_past_and_not_in_flight_are_stalled() -> None:
    # The CI failure: committed 312, acked 320.., nothing below 320 in flight.
    stuck = stalled_partitions({"p2": 312, "p0": 594}, {"p2": [321, 320, 322], "p0": [594, 595]}, set(), [])
    assert stuck == {"p2": (312, 320)}


def test_a_record_still_being_processed_is_not_a_stall() -> None:
    assert stalled_partitions({"p": 10}, {"p": [12, 13]}, set(), [("p", 10), ("q", 1)]) == {}


def test_in_flight_records_after_the_gap_do_not_hide_it() -> None:
    assert stalled_partitions({"p": 10}, {"p": [12]}, set(), [("p", 14)]) == {"p": (10, 12)}


def test_a_gap_faust_recorded_or_an_unknown_commit_is_left_to_faust() -> None:
    assert stalled_partitions({"p": 10}, {"p": [12]}, {"p"}, []) == {}
    assert stalled_partitions({"p": None}, {"p": [12]}, set(), []) == {}
    assert stalled_partitions({"p": 10}, {"p": [10, 11]}, set(), []) == {}


def test_canary_faust_commit_bookkeeping_the_guard_reads() -> None:
    source = inspect.getsource(faust_consumer.Consumer)
    for attribute in ("self._acked", "self._committed_offset", "self._gap", "self._unacked_messages",
                      "min(acked) - committed_offset > 1"):
        assert attribute in source, attribute
    assert list(inspect.signature(faust_consumer.Consumer._new_offset).parameters) == ["self", "tp"]
