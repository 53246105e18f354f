"""The runner's changelog restore on the durable broker (Tansu on S3 in moto) reads to the end (issue 19).

Tansu spends a fetch's max wait listing the partition's batch objects in S3 and answers empty once
it is spent (dev/broker.py, DURABLE_FETCH_MAX_WAIT_MS); the restore fetched with a fixed 10 ms wait,
so a changelog partition whose listing took longer (a few hundred single-record batches: ~0.4 ms each
in moto) never came back. And Tansu's ListOffsets on S3 names the first batch of the newest second
(moto's LastModified has whole seconds) as the end: the restore must not stop there.
"""

from __future__ import annotations

import time

import pytest

from shopstream.config import Settings
from shopstream.runner.store import restore
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.kafka_write import make_producer

pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]

RECORDS = 400


def test_a_restore_on_the_durable_broker_reads_every_record_of_a_long_changelog(durable_settings: Settings) -> None:
    settings = durable_settings
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    topic = settings.topic("orders-orders-changelog")
    producer = make_producer(settings)  # single-record batches: one S3 object per record, as dev writes them
    for i in range(RECORDS):
        producer.produce(topic, key=b"k%04d" % i, value=b"v%d" % i, partition=1)
        producer.poll(0)
    assert producer.flush(120) == 0
    began = time.monotonic()
    state = restore(settings, topic, 1, bytes, timeout_s=90)
    print(f"restored {len(state)} keys from {RECORDS} single-record batches in {time.monotonic() - began:.1f} s")
    assert state == {b"k%04d" % i: b"v%d" % i for i in range(RECORDS)}
