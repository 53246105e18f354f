"""The `shopstream dlq` command line: its arguments and the dispatch to one module per verb.

Kept out of cli.py (the composition root) so the DLQ tools' options live beside the tools; cli.py checks
the settings and hands over.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from shopstream.config import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def run_dlq(args: argparse.Namespace, settings: Settings) -> int:
    """Run the `dlq` verb `args.action` asks for: a bad argument exits 2 naming it, a broker problem 1."""
    from confluent_kafka import KafkaException

    from shopstream.ops.dlq_common import now_ms
    from shopstream.ops.dlq_filters import Selection, UsageError, parse_time
    from shopstream.ops.dlq_list import dlq_list
    from shopstream.ops.dlq_replay import ReplayOptions, dlq_replay
    from shopstream.ops.dlq_scan import ScanError, TopicMissing
    from shopstream.ops.dlq_show import dlq_show
    from shopstream.topology import TopologyError, load_topology_for

    if logging.getLogger().level > logging.DEBUG:  # the registry client logs every request at INFO
        for noisy in ("httpx", "httpx2"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        topology = load_topology_for(settings)
        now = now_ms()
        since = parse_time(args.since, now, "--since") if getattr(args, "since", None) else None
        until = parse_time(args.until, now, "--until") if getattr(args, "until", None) else None
        if args.action == "list":
            return dlq_list(settings, topology, as_json=args.json)
        if args.action == "show":
            return dlq_show(settings, topology, args.topic, offset=args.offset, fingerprint=args.fingerprint,
                            since_ms=since, until_ms=until, limit=args.limit, as_json=args.json)
        selection = Selection(fingerprint=args.fingerprint, error_class=args.error_class, since_ms=since,
                              until_ms=until, offset_from=args.offset_from, offset_to=args.offset_to, key=args.key)
        if args.action == "redrive":
            from shopstream.ops.dlq_redrive import RedriveOptions, dlq_redrive

            return dlq_redrive(settings, topology, args.topic, RedriveOptions(
                selection=selection, source=args.source, dry_run=args.dry_run, limit=args.limit,
                max_redrives=args.max_redrives, force=args.force))
        options = ReplayOptions(selection=selection, to=args.to, dry_run=args.dry_run, rate=args.rate,
                                limit=args.limit, max_replays=args.max_replays, force=args.force)
        return dlq_replay(settings, topology, args.topic, options)
    except (UsageError, TopologyError) as exc:
        print(f"shopstream dlq {args.action}: {exc}", file=sys.stderr)
        return 2
    except TopicMissing as exc:
        print(f"shopstream dlq {args.action}: {exc}", file=sys.stderr)
        return 2
    except (ScanError, KafkaException) as exc:
        print(f"shopstream dlq {args.action}: {exc}", file=sys.stderr)
        return 1


def add_dlq_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], handler: Handler) -> None:
    """The `dlq` command and its verbs, each run by `handler`."""
    times = "ISO-8601 with a zone (2026-11-23T10:00:00Z) or an age ago (90m, 2h, 3d)"
    dlq = sub.add_parser("dlq", help="inspect dead-letter topics and replay them once the cause is fixed")
    dsub = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dsub.add_parser("list", help="every DLQ topic: counts, oldest/newest age, counts per fingerprint and error")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=handler)

    p = dsub.add_parser("show", help="decoded view of dead letters: headers, key, value (Avro via the registry)")
    p.add_argument("topic", metavar="TOPIC", help="logical DLQ topic name, e.g. shop.orders.dlq")
    p.add_argument("--offset", type=int, help="the one record at this offset")
    p.add_argument("--fingerprint", help="records with this failure fingerprint")
    p.add_argument("--since", metavar="T", help=f"parked at or after T: {times}")
    p.add_argument("--until", metavar="T", help=f"parked before T: {times}")
    p.add_argument("--limit", type=int, default=20, help="show at most N records (default 20)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=handler)

    p = dsub.add_parser("replay", help="re-send dead letters to their original topic (dry-run first)",
                        description="Re-send selected dead letters with their key, value and original headers. "
                                    "Reads the DLQ only up to its end at the start; records what it sent on "
                                    "dlq.replay-log so a second run sends nothing again.")
    p.add_argument("topic", metavar="TOPIC", help="logical DLQ topic name, e.g. shop.orders.dlq")
    _add_selection_args(p, times)
    p.add_argument("--to", metavar="TOPIC", help="send to this logical topic instead of each record's original")
    p.add_argument("--dry-run", action="store_true", help="print what would be sent; send and record nothing")
    p.add_argument("--rate", type=float, metavar="N", help="at most N records per second")
    p.add_argument("--limit", type=int, metavar="N", help="send at most N records")
    p.add_argument("--max-replays", type=int, default=3, metavar="N",
                   help="skip records already replayed N times (default 3)")
    p.add_argument("--force", action="store_true",
                   help="send even records already in the replay log or at --max-replays")
    p.set_defaults(func=handler)

    p = dsub.add_parser("redrive", help="re-submit parked webhook bodies through their connector (dry-run first)",
                        description="Re-submit webhook bodies parked on connectors.dlq through the same "
                                    "connector: signature verified again from the stored body and headers, same "
                                    "delivery id. For after a fix (e.g. a missing carrier mapping was added).")
    p.add_argument("topic", metavar="TOPIC", help="connectors.dlq")
    _add_selection_args(p, times)
    p.add_argument("--source", help="only bodies of this webhook source (shopify, stripe, carrier, ...)")
    p.add_argument("--dry-run", action="store_true", help="verify and translate, print the outcome; publish nothing")
    p.add_argument("--limit", type=int, metavar="N", help="process at most N bodies")
    p.add_argument("--max-redrives", type=int, default=3, metavar="N",
                   help="skip bodies already redriven N times (default 3)")
    p.add_argument("--force", action="store_true", help="process even bodies already redriven or at --max-redrives")
    p.set_defaults(func=handler)


def _add_selection_args(p: argparse.ArgumentParser, times: str) -> None:
    """The record filters `replay` and `redrive` share."""
    p.add_argument("--fingerprint", help="only records with this failure fingerprint")
    p.add_argument("--error-class", help="only this error class (full name or a dotted suffix, e.g. NotAvroFramed)")
    p.add_argument("--since", metavar="T", help=f"parked at or after T: {times}")
    p.add_argument("--until", metavar="T", help=f"parked before T: {times}")
    p.add_argument("--offset-from", type=int, metavar="N", help="from this DLQ offset (inclusive)")
    p.add_argument("--offset-to", type=int, metavar="N", help="up to this DLQ offset (inclusive)")
    p.add_argument("--key", help="only records with this key (UTF-8)")
