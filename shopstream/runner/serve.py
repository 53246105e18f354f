"""`run_processor`: a processor on the runner in the foreground, with its admin port and signal handling."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from shopstream.config import Settings
from shopstream.runner.admin import AdminServer
from shopstream.runner.api import Processor
from shopstream.runner.loop import Runner

log = logging.getLogger("shopstream.runner")


def run_processor(settings: Settings, processor: Processor, *, web_port: int | None = None,
                  batch_size: int | None = None, stop: threading.Event | None = None) -> None:
    """Run `processor` on the runner in the foreground with `/metrics` and `/readyz` until SIGTERM/SIGINT."""
    own_stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if stop is None and threading.current_thread() is threading.main_thread():
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: stopping after the current batch", signum)
            own_stop.set()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    runner = Runner(settings, processor, batch_size=batch_size, stop=own_stop)
    port = settings.worker_web_port if web_port is None else web_port
    admin = AdminServer(settings.http_host, port, runner.readiness) if port else None
    log.info("%s: runner started", processor.name, extra={"inputs": list(runner.inputs), "admin_port": port})
    try:
        runner.run()
    finally:
        if admin is not None:
            admin.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        log.info("%s: runner stopped", processor.name)
