"""Topology as data: topics (`topics.yaml`), status mappings and rules under this folder, with their loaders.

Topics: `load_topology()` reads and validates `topics.yaml` into a `Topology`; `check()` lists its
inconsistencies; `apply()` (in `shopstream.topology.admin`, imported lazily because it needs
confluent-kafka) creates missing topics on a broker and reports drift as an `ApplyReport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .topics import (
    DEFAULT_TOPOLOGY_PATH,
    Topic,
    Topology,
    TopologyError,
    check,
    known_record_names,
    load_topology,
    parse_duration_ms,
    parse_topology,
)

if TYPE_CHECKING:
    from .admin import ApplyReport, Drift, Unverified, apply

__all__ = [
    "DEFAULT_TOPOLOGY_PATH",
    "ApplyReport",
    "Drift",
    "Topic",
    "Topology",
    "TopologyError",
    "Unverified",
    "apply",
    "check",
    "known_record_names",
    "load_topology",
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
