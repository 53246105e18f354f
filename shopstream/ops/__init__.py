"""`shopstream dlq list|show|replay|redrive`: look at dead letters, send them back once the cause is fixed.

Topic arguments are logical topology names (`shop.orders.dlq`, `connectors.dlq`); the tool adds
SHOPSTREAM_TOPIC_PREFIX. It reads the `shopstream.dlq.*` context headers written by `shopstream.dlq`.

Every verb escapes terminal control sequences in what it prints (`dlq_common.safe_out`): parked error
texts and bodies come from senders.

Modules: one per verb — `dlq_list`, `dlq_show`, `dlq_replay`, `dlq_redrive` (webhook bodies on
`connectors.dlq` through their connector again; see its module docs) —, and what they share: `dlq_filters`
(pure: dead letters as values, selections, time arguments, replay headers and the skip decision),
`dlq_scan` (bounded reads from Kafka), `dlq_common` (topic arguments, the replay log's name, the clock).

list
    Every DLQ topic of the topology: record count, oldest/newest age, counts grouped by error class and
    by failure fingerprint, each with one example message (`--json` for machines). Sets the Prometheus
    gauge `shopstream_dlq_backlog{dlq_topic}`. Exit 1 when a DLQ topic is missing or unreadable.

show TOPIC [--offset N | --fingerprint F | --since T --until T] [--limit N] [--json]
    Every header, the key, and the value decoded through the schema registry when it is
    Confluent-framed Avro; otherwise pretty JSON, UTF-8 text or hex.

replay TOPIC [filters] [--to TOPIC] [--dry-run] [--rate N] [--limit N] [--max-replays N] [--force]
    Re-sends the selected dead letters to their original topic (`shopstream.dlq.original.topic`) — only
    when the topology names this DLQ as that topic's DLQ (the header is not authenticated) — or to
    `--to`. Filters: `--fingerprint`, `--error-class` (full name or dotted suffix), `--since`/`--until`
    (when parked; since inclusive, until exclusive), `--offset-from`/`--offset-to` (inclusive), `--key`.
    Times are ISO-8601 with a zone (`2026-11-23T10:00:00Z`) or an age (`90m`, `2h`, `3d`).

What replay guarantees, and why it is safe to run in production
---------------------------------------------------------------

- **It terminates.** The DLQ (and the replay log) is read up to the end offsets captured when the
  replay starts, never "until the end": records that fail again during the replay land behind that
  end and are not read by this run (a replay that chases its own re-failures loops forever).
- **It does not send twice.** Every confirmed replay is recorded on the compacted topic
  `dlq.replay-log` (key `<dlq topic>:<partition>:<offset>`, value JSON `{sent_to, at, replay_count,
  fingerprint}`), written only after the broker confirmed the replayed record. A replay first reads
  the log and skips what it lists ("already replayed"), so running the same command twice sends
  nothing the second time. The window left is a crash between the confirmed send and the log write:
  that record is sent again by a rerun — at least once, never lost.
- **It is bounded per record.** A replayed record carries `shopstream.replay.count`; if it fails
  again, the DLQ writer keeps that header (it only replaces `shopstream.dlq.*`), so the new dead letter
  knows how often it was replayed. At `--max-replays` (default 3) it is skipped ("max replays
  reached"): a record that keeps failing is not pumped round the loop.
- **It is explicit.** `--dry-run` prints each record that would be sent and where, sends nothing and
  records nothing. Every run ends with one summary line: selected, sent, skipped (per reason), failed;
  the exit code is 1 when anything failed. `--rate` paces the sends, `--limit` caps them.
  `--force` overrides exactly the two stops above (already replayed, max replays); nothing else.
- **It restores the original record.** Key, value and the original headers are sent unchanged; the
  `shopstream.dlq.*` context is stripped and `shopstream.replay.from.topic`, `.from.partition`,
  `.from.offset`, `.count` and `.at` (ms since epoch) are added. The record goes through the one
  producer factory (murmur2 partitioner), so its key lands on the partition it came from.
- **It never invents topics.** A record whose original is not a Kafka topic (`webhook:shopify` on
  `connectors.dlq`) is skipped with "re-deliver from the source" unless `--to` names a topic; a target
  missing on the broker counts as failed, nothing is produced to it.
- **Re-processing is harmless.** Consumers are idempotent under redelivery (state keyed so applying an
  event twice is a no-op, see DESIGN "Effectively once"), so the at-least-once window above and a
  deliberate `--force` change no state that was already right.
"""
