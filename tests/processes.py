"""Every process the test session starts: found by a marker in its environment, its logs told on failure.

The session puts `SHOPSTREAM_TEST_RUN=<uuid>` into its own environment (tests/conftest.py), so every
process it starts inherits it — workers, `shopstream dev` and the services dev starts in turn, the
broker, a private redis-server. `leftovers()` finds those still alive by reading /proc, so the
session-end check sees grandchildren too, whoever started them.

Tests and fixtures register the log of each process they start (`track`); when a test fails, the
report gets the tail of each log started for it, with the age of its last line, so a stalled service
shows itself in CI's output alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "SHOPSTREAM_TEST_RUN"
TAIL_CHARS = 2500


@dataclass(frozen=True)
class Leftover:
    pid: int
    cmdline: str


def leftovers(run_id: str) -> list[Leftover]:
    """Live processes (not zombies) other than this one whose environment carries this run's marker."""
    needle = f"{MARKER}={run_id}".encode()
    found: list[Leftover] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        found.append(Leftover(pid=int(entry.name), cmdline=cmdline))
    return found


def wait_gone(run_id: str, timeout_s: float) -> list[Leftover]:
    """Leftovers still alive after `timeout_s` (processes told to stop may need a moment to exit)."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = leftovers(run_id)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def kill(procs: list[Leftover]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)


# --- logs of the processes a test started -----------------------------------------------------------

_LOGS: list[tuple[str, Path]] = []


def track(name: str, log: Path) -> None:
    """Register the log of a process a test or fixture started (its tail is printed if the test fails)."""
    _LOGS.append((name, log))


def mark() -> int:
    """A position in the registry: the logs registered after it belong to the test that took it."""
    return len(_LOGS)


def tails(since: int = 0) -> str:
    """The tail of each log registered after `since`, with how long ago it was last written."""
    logs = {path: name for name, path in _LOGS[since:]}  # by path: two workers of one name have two logs
    now = time.time()
    parts = []
    for path, name in logs.items():
        if not path.exists():
            parts.append(f"--- {name}: {path} (no log)")
            continue
        age = now - path.stat().st_mtime
        text = path.read_text(errors="replace")
        parts.append(f"--- {name}: {path} (last written {age:.0f} s ago)\n{text[-TAIL_CHARS:]}")
    return "\n".join(parts)
