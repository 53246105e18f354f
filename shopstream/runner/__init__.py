"""The one runner every processor runs on: poll, decode, apply, produce, confirm, store, commit.

Decision (issue 10, docs/decisions/0001-runner.md): the runner is built on **confluent-kafka**, not
Faust, with its **own changelogged state store**. Measured on this machine (DESIGN.md): consume →
dict update → produce runs at ~158,000 events/s with confluent-kafka against ~4,000/s for a Faust
table update + send, and Faust's cost is per message inside its stream machinery; Faust tables also
cannot be written from batches, and its consumer needed guards against records read but never
delivered. The store is an in-memory dict per assigned partition (`store.PartitionState`), written
through to a compacted changelog topic declared in topology/topics.yaml (`orders-orders-changelog`,
`inventory-atp-changelog`: same names and partitions as Faust's tables had, so existing changelogs
restore), changelog partition = input partition, restored from the changelog on assignment before any
record of that partition is handled.

The loop (`loop.Runner`, one thread, so a processor needs no locks):
1. poll a batch (`poll_batch`: wait for the first record, then take what is fetched), group it by
   partition (`offsets.by_partition`; co-partitioned inputs share a partition's state);
2. per partition, hand each record to the processor's `handle(record, state)`, which decodes and
   applies the pure core and returns `Effects` (outputs, state writes); a later record of the batch
   sees the earlier ones' writes. Faults follow the one retry policy (`shopstream.processing`):
   transient ones (broker, registry or Redis away, retriable KafkaError, timeouts) are retried in place
   with backoff and jitter for `SHOPSTREAM_RETRY_MAX_ELAPSED_S`, the partition waiting; permanent ones
   (undecodable, wrong type, a handler bug) park the record on its DLQ (`DeadLetterWriter`, routes from
   the topology). A DLQ write that fails is retried in place; past the budget the process halts
   without committing (exit 75, `shopstream.halt`);
3. queue every output of the poll (all its partitions) on ONE confirming producer
   (`producer.ConfirmingProducer`: murmur2, idempotent, acks=all, failures reported only) at once, so
   the next stage reads them without waiting, and keep the poll's records and state writes as open work;
4. once `SHOPSTREAM_COMMIT_INTERVAL_MS` (default 100; Kafka Streams' `commit.interval.ms`) has passed, or
   the open work holds `MAX_OPEN_RECORDS`, flush (`Runner._flush`): wait for the broker to confirm every
   queued output once, then write the open work's changelog records — each key once, however often the
   interval wrote it — and wait once, then store the states and commit, with
   `enable.auto.commit=false`, the explicit offsets of the contiguous done prefix
   (`offsets.DoneOffsets`): done = applied and confirmed, or parked. Between flushes a poll waits for
   nothing; the orders worker at 200 orders/s used to wait three times per poll (outputs, changelog,
   a synchronous commit). A crash re-reads at most an interval's records (their ids are deterministic).
Delivery failure is a sticky latch: once any output or changelog record was refused, nothing more is
committed; a refused changelog record halts at once, refused outputs after their in-place retries and
parking, both with exit 76, so a restart re-reads from the last commit. Rebalance: a revoke flushes
the open work and commits what is done, then drops the partitions' state; a lost partition's open work
is dropped unconfirmed (its new owner reads it again); an assignment restores state before processing.
A processor's `tick(now)` (the orders sweep) runs in the same thread between batches, after a flush,
its effects confirmed at once.
`/readyz` (ready once every assigned partition is restored) and `/metrics` are on the worker's admin
port (`admin.AdminServer`). Stateless processors (no changelog) run on the same loop.

Atomic state (`Processor.atomic_state`, the anomalies engine): a processor whose keys depend on each
other gets a `BATCH_END` marker after each batch's changelog records, and a restore ignores what
follows the last marker (`store`), so a crash between two records of a batch never restores half of it.
Stall watch (`watch`): idle for `SHOPSTREAM_STALL_AFTER_S`, the loop compares each owned partition's
position with its end and reports records waiting past it (log, `shopstream_runner_stalled_partitions`).

Deferred acknowledgement: `Effects.pending` holds a record (nothing of its partition is committed past
it) until a later Effects — from `handle`, `tick` or `drain` (on stop and before a revoke's commit) —
acks it, counted once that Effects' outputs are confirmed (the shop sync's coalescing windows).
Batch handler: a stateless processor with `batched = True` gets each poll whole in `handle_batch`;
records it cannot handle come back in `Effects.parked`; a transient fault re-runs the batch, and past
the budget rewinds it (seek back, nothing parked or committed) instead of parking (the view sink).
"""

from shopstream.runner.api import Effects, Processor, ProcessorBase, Record
from shopstream.runner.loop import Runner
from shopstream.runner.serve import run_processor

__all__ = ["Effects", "Processor", "ProcessorBase", "Record", "Runner", "run_processor"]
