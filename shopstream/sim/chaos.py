"""Process faults of `shopstream simulate`: SIGKILL a worker, crash the broker, and time the recovery.

`kill-worker` SIGKILLs one stateful worker of the running `shopstream dev` (chosen by the seed among
the order and inventory workers, whose state the oracle checks most) at 35 % of the traffic; dev
starts it again (runtime.py) and the recovery is the time until the new process's /readyz answers
200 (joined its group, holds partitions, state restored). `restart-broker` SIGKILLs the durable
broker (`shopstream dev --durable-broker`: Tansu on S3, data kept) at 65 % of the traffic; dev
starts it again on the same port and the recovery is the time until the new broker answers
metadata. The process ids come from dev's `<state dir>/dev-pids.json` (dev/pids.py). A fault that
cannot be injected against this stack is returned as skipped with the reason, never silently.
"""

from __future__ import annotations

import os
import random
import signal
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shopstream.config import WORKER_PORT_OFFSETS
from shopstream.dev.pids import read_pids

PROCESS_FAULTS = ("kill-worker", "restart-broker")
AT_SHARE = {"kill-worker": 0.35, "restart-broker": 0.65}  # when, as a share of --duration
# The workers a kill may hit and their admin port offsets (SHOPSTREAM_WORKER_PORT + offset, dev/runtime.py).
KILLABLE = {"worker-orders": WORKER_PORT_OFFSETS["orders"], "worker-inventory": WORKER_PORT_OFFSETS["inventory"]}
RECOVERY_LIMIT_S = 180.0


@dataclass
class Disruption:
    """One injected process fault: what was hit, when (s after traffic start) and how long it took to recover."""

    fault: str
    target: str
    pid: int
    at_s: float
    injected_epoch: float
    recovered_after_s: float | None  # None: not back within RECOVERY_LIMIT_S
    new_pid: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        back = (f"back after {self.recovered_after_s:.1f} s (pid {self.new_pid})" if self.recovered_after_s is not None
                else f"NOT back within {RECOVERY_LIMIT_S:.0f} s")
        what = "ready (/readyz 200)" if self.fault == "kill-worker" else "answering metadata, data kept"
        return f"{self.fault}: SIGKILL {self.target} (pid {self.pid}) at +{self.at_s:.1f} s; {back}, {what}"


def plan_target(fault: str, seed: int) -> str:
    """Which process the fault hits (seeded)."""
    if fault == "kill-worker":
        return random.Random(f"kill-worker:{seed}").choice(sorted(KILLABLE))
    return "broker"


def why_not(fault: str, state_dir: Path) -> str | None:
    """The reason `fault` cannot be injected against the dev stack of `state_dir`, or None when it can."""
    pids = read_pids(state_dir)
    if pids is None:
        return (f"no {state_dir}/dev-pids.json: the simulator finds the processes to kill through the state dir of "
                "the `shopstream dev` it drives (run it with the same SHOPSTREAM_STATE_DIR)")
    if fault == "restart-broker":
        if pids.get("broker") is None:
            return "the stack uses an external broker (KAFKA_BOOTSTRAP_SERVERS): not the simulator's to restart"
        if not pids.get("durable_broker"):
            return ("the embedded broker keeps its data in memory, so a restart loses every topic: run "
                    "`shopstream dev --durable-broker` (Tansu on S3) to rehearse a broker restart")
    return None


def _current(state_dir: Path, target: str) -> int | None:
    pids = read_pids(state_dir) or {}
    pid = pids.get("broker") if target == "broker" else (pids.get("children") or {}).get(target)
    return int(pid) if pid else None


def _worker_ready(worker_port: int, target: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker_port + KILLABLE[target]}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _broker_answers(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
        return True
    except Exception:  # KafkaException while it is down
        return False


def inject(fault: str, target: str, *, state_dir: Path, worker_port: int, bootstrap: str,
           started_epoch: float) -> Disruption:
    """SIGKILL the target now and wait until dev has it back (or RECOVERY_LIMIT_S passed)."""
    pid = _current(state_dir, target)
    if pid is None:
        raise RuntimeError(f"{target} is not in {state_dir}/dev-pids.json")
    began = time.time()
    # A worker leads its own process group (children.spawn); the broker too: kill the whole group.
    os.killpg(pid, signal.SIGKILL)
    killed = time.monotonic()
    while time.monotonic() - killed < RECOVERY_LIMIT_S:
        new = _current(state_dir, target)
        if new is not None and new != pid and (
                _worker_ready(worker_port, target) if fault == "kill-worker" else _broker_answers(bootstrap)):
            return Disruption(fault, target, pid, began - started_epoch, began, time.monotonic() - killed, new)
        time.sleep(0.2)
    return Disruption(fault, target, pid, began - started_epoch, began, None, _current(state_dir, target))
