"""Topology as data: topics (`topics.yaml`), status mappings and rules under this folder, with their loaders.

Topics: `load_topology()` reads and validates `topics.yaml` (plus an overlay) into a `Topology`;
`load_topology_for(settings)` is what every process uses (it applies SHOPSTREAM_TOPOLOGY_OVERLAY); `check()` lists its
inconsistencies; `apply()` (in `shopstream.topology.admin`, imported lazily because it needs
confluent-kafka) creates missing topics on a broker and reports drift as an `ApplyReport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .checks import check, check_production, known_record_names
from .topics import (
    CONNECTORS_DLQ,
    DEFAULT_TOPOLOGY_PATH,
    PRODUCTION_OVERLAY_PATH,
    Topic,
    Topology,
    TopologyError,
    changelog_name,
    load_topology,
    load_topology_for,
    parse_duration_ms,
    parse_topology,
)

if TYPE_CHECKING:
    from .admin import ApplyReport, Drift, Unverified, apply

__all__ = [
    "CONNECTORS_DLQ",
    "DEFAULT_TOPOLOGY_PATH",
    "PRODUCTION_OVERLAY_PATH",
    "ApplyReport",
    "Drift",
    "Topic",
    "Topology",
    "TopologyError",
    "Unverified",
    "apply",
    "changelog_name",
    "check",
    "check_production",
    "known_record_names",
    "load_topology",
    "load_topology_for",
    "parse_duration_ms",
    "parse_topology",
]

_ADMIN = frozenset({"ApplyReport", "Drift", "Unverified", "apply"})


def __getattr__(name: str) -> Any:
    """Import the broker side (`admin`) only when one of its names is used."""
    if name in _ADMIN:
        from . import admin

        return getattr(admin, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
