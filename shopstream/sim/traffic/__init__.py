"""One module per capability: the deliveries its source systems make (pure; bodies as the sources send them).

Extension point: a later capability (support tickets, catalog/PIM, anomalies) adds a module here with a
`steps_for(...)` of its own, registers it in `shopstream.sim.plan`, and adds its expectations to the oracle.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(at: datetime) -> str:
    """ISO-8601 UTC with a Z, as the carrier, returns and ERP bodies carry times."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
