"""Child processes that never outlive their owner: own process group, parent-death signal, group stop.

Every process shopstream starts (the dev stack's services and workers, the embedded broker, the
benchmarks' and tests' workers) goes through `spawn`:

- it leads its own process group (a terminal's Ctrl-C reaches only the owner, which then stops its
  children in order: services first, the broker last), and `stop` signals the whole group, so a
  grandchild it started goes with it;
- on Linux it asks the kernel for SIGTERM when the thread that started it exits
  (`PR_SET_PDEATHSIG`): an owner killed with SIGKILL, or one whose own stop timed out, does not leave
  orphans behind that keep consuming, holding ports or writing logs. Start children from a thread
  that lives as long as they should (the main thread, in practice).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None]:
    """The child-side setup: new session (own group), SIGTERM on the parent's death."""
    def setup() -> None:
        os.setsid()
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
    return setup


def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          stdout: int | IO[bytes] | None = None, stderr: int | IO[bytes] | None = None,
          cwd: str | None = None) -> subprocess.Popen[bytes]:
    """Start `argv` as a child in its own process group that is sent SIGTERM when its owner dies."""
    return subprocess.Popen(list(argv), env=dict(env) if env is not None else None, stdout=stdout,
                            stderr=stderr, cwd=cwd, preexec_fn=_die_with_parent(os.getpid()))


def signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send `signum` to the child's process group (the child itself if it leads none any more)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:  # the group is gone: every member has exited
        pass
    except PermissionError:
        process.send_signal(signum)


def stop(process: subprocess.Popen[bytes], timeout_s: float) -> int:
    """SIGTERM the child's group; SIGKILL the group if the child has not exited within `timeout_s`.

    Returns the child's exit code. Members of the group that outlive the child are killed too."""
    if process.poll() is None:
        signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait()
    # A grandchild that ignored the TERM must not survive its group leader.
    signal_group(process, signal.SIGKILL)
    return process.returncode
