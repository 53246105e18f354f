"""shopstream.children: a child leads its own group, `stop` takes the group down, an owner's death its children.

Real processes, no broker: what `shopstream dev`, the embedded broker and every test fixture rely on so
that nothing outlives the run that started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shopstream import children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _wait_dead(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _read_pid(pid_file: Path, what: str, timeout_s: float = 20.0) -> int:
    """The pid a helper process wrote to `pid_file` once it started `what`."""
    deadline = time.monotonic() + timeout_s
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, f"{what} was not started"
        time.sleep(0.05)
    return int(pid_file.read_text())


def test_a_child_leads_its_own_process_group() -> None:
    proc = children.spawn([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    finally:
        children.stop(proc, 5)
    assert proc.returncode == -signal.SIGTERM


def test_stop_takes_down_a_grandchild_in_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # The child starts a grandchild in its own group (plain Popen) that ignores SIGTERM, then waits.
    script = ("import signal, subprocess, sys, time\n"
              "g = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
              "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
              f"open({str(pid_file)!r}, 'w').write(str(g.pid))\n"
              "time.sleep(60)\n")
    proc = children.spawn([sys.executable, "-c", script])
    grandchild = _read_pid(pid_file, "the grandchild")
    children.stop(proc, 5)
    assert _wait_dead(grandchild), "a grandchild that ignores SIGTERM survived its group's stop"


def test_a_child_is_terminated_when_its_owner_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The owner starts a child through children.spawn and is then SIGKILLed: it cannot stop anything itself.
    owner_script = ("import sys, time\n"
                    "from shopstream import children\n"
                    "c = children.spawn([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                    f"open({str(pid_file)!r}, 'w').write(str(c.pid))\n"
                    "time.sleep(60)\n")
    owner = subprocess.Popen([sys.executable, "-c", owner_script])
    try:
        child = _read_pid(pid_file, "the owner's child")
        assert _alive(child)
        owner.kill()
        owner.wait()
        assert _wait_dead(child), "the child outlived its SIGKILLed owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
