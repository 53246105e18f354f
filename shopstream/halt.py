"""Stopping a consumer without committing: the last resort of "never acknowledge what was not applied or parked".

A consumer may commit an input offset only once the record was applied (outputs and state confirmed
by the broker) or parked on its DLQ. When neither can be done any more — the DLQ write keeps failing
past the retry budget, or the producer lost a record it cannot attribute to one input — the process
stops here at once, with `os._exit`, and a supervisor (Kubernetes, `shopstream dev`, a test) starts it
again; it then re-reads from the last committed offset.

Why `os._exit` and not an exception: an exception unwinds through the runner's `finally`, whose
consumer close commits what the loop marked done (Faust, before the runner, even acknowledged the
event in flight when an agent raised). A hard exit skips every such path: no `finally`, no atexit,
no consumer close, so no commit (and no leave-group: the group notices after the session timeout).
Log handlers and stdio are flushed first so the critical line that says why reaches the log.

Exit codes (distinct so an operator can tell them from a crash, 1, or a signal, 128+n):
- `EXIT_PARK_FAILED` (75, EX_TEMPFAIL): a record could neither be applied nor parked;
- `EXIT_DELIVERY_FAILED` (76): the broker refused or lost a record the worker wrote (an output or
  a changelog record), so the worker's state and the committed offsets could disagree.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn

EXIT_PARK_FAILED = 75
EXIT_DELIVERY_FAILED = 76

log = logging.getLogger("shopstream.halt")


class MustRestart(Exception):
    """Raised where the process can no longer acknowledge anything safely; the consumer loop halts on it.

    Never retried and never parked: the record in hand did nothing wrong (see `halt`)."""

    exit_code = EXIT_DELIVERY_FAILED


def _flush_logs() -> None:
    # A copy: another thread may create a logger meanwhile, and iterating the live dict would then raise.
    for logger in [logging.getLogger(), *(lg for lg in list(logging.Logger.manager.loggerDict.values())
                                          if isinstance(lg, logging.Logger))]:
        for handler in logger.handlers:
            with contextlib.suppress(Exception):  # a broken handler must not keep the process from stopping
                handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def halt(reason: str, code: int) -> NoReturn:
    """Log `reason` as critical, flush the logs and end the process with `code`, committing nothing."""
    try:
        log.critical("stopping without committing offsets (exit %d): %s", code, reason)
        _flush_logs()
    finally:  # whatever logging does, the process must not return into the consumer loop
        os._exit(code)
