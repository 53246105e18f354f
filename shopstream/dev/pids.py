"""`<state dir>/dev-pids.json`: which process ids `shopstream dev` runs, rewritten whenever one changes.

Written by dev (runtime.py) when the stack is up, when it restarts a worker and when it restarts the
durable broker; read by whoever rehearses a crash from outside (`shopstream simulate --faults
kill-worker,restart-broker`, sim/chaos.py) and by an operator who wants `kill -9` to hit the right
process. Shape: {"dev": pid, "durable_broker": bool, "broker": pid or null, "children": {name: pid},
"bootstrap": the Kafka bootstrap the services use, "registry": the schema registry URL} — the last two
because dev takes a free port when 9092 (or the registry port) is taken, and a simulator that guessed
the default then wrote its opening stock into whatever other stack held 9092.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PIDS_FILE = "dev-pids.json"


def write_pids(state_dir: Path, *, broker: int | None, durable: bool, children: dict[str, int],
               bootstrap: str = "", registry: str = "") -> None:
    """Replace the file atomically (a reader never sees half of it)."""
    path = state_dir / PIDS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"dev": os.getpid(), "durable_broker": durable, "broker": broker,
                               "children": children, "bootstrap": bootstrap, "registry": registry}),
                   encoding="utf-8")
    tmp.replace(path)


def read_pids(state_dir: Path) -> dict[str, Any] | None:
    """The last state dev wrote, or None when no dev runs (or ran) with this state dir."""
    try:
        doc = json.loads((state_dir / PIDS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
