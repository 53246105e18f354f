"""The inventory processor's policy as data: `topology/inventory.yaml` -> `Policy` per SKU.

File format (validated; unknown keys are errors)::

    online_locations: [default]      # location codes that sell online (at least one)
    include_incoming: false          # promise units on open purchase orders too
    reorder_points:
      default: 5                     # reorder point of every SKU (null: none)
      skus: {SKU-1: 20}              # per-SKU overrides (null: none for that SKU)
    keep_finished_reservations: 30d  # forget released/counted reservations this old (null: never);
                                     # longer than inventory.reservations and its DLQ keep records
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator

from shopstream.processors.inventory.atp import Policy
from shopstream.topology.topics import parse_duration_ms
from shopstream.yamlmodel import load_yaml_model


class InventoryConfigError(ValueError):
    """The inventory policy file is missing or invalid."""


class ReorderPoints(BaseModel):
    """Reorder points: one default, overrides per SKU."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: NonNegativeInt | None = None
    skus: dict[str, NonNegativeInt | None] = Field(default_factory=dict)


class InventoryConfig(BaseModel):
    """A validated inventory policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    online_locations: tuple[str, ...] = Field(min_length=1)
    include_incoming: bool = False
    reorder_points: ReorderPoints = ReorderPoints()
    keep_finished_reservations: timedelta | None = None

    @field_validator("keep_finished_reservations", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None or isinstance(value, timedelta):
            return value
        millis = parse_duration_ms(value)
        if millis <= 0:
            raise ValueError(f"keep_finished_reservations must be a positive duration, got {value!r}")
        return timedelta(milliseconds=millis)

    @cached_property
    def policies_by_reorder_point(self) -> dict[int | None, Policy]:
        """`policy`'s cache (a plain attribute once filled: a pydantic private attribute costs a
        __getattr__ per line)."""
        return {}

    def policy(self, sku: str) -> Policy:
        """The ATP policy of one SKU."""
        points = self.reorder_points
        point = points.skus.get(sku, points.default)
        # One Policy per reorder point, built once: the bulk snapshot path asks for every line.
        policy = self.policies_by_reorder_point.get(point)
        if policy is None:
            policy = self.policies_by_reorder_point[point] = Policy(
                online_locations=frozenset(self.online_locations), include_incoming=self.include_incoming,
                reorder_point=point, keep_finished=self.keep_finished_reservations)
        return policy


def default_config_path() -> Path:
    """The shipped `topology/inventory.yaml` (package data of shopstream.topology)."""
    return Path(str(resources.files("shopstream.topology").joinpath("inventory.yaml")))


def load_inventory_config(path: Path | str | None = None) -> InventoryConfig:
    """Read and validate the policy file (default: the shipped one)."""
    return load_yaml_model(path if path is not None else default_config_path(), InventoryConfig,
                           InventoryConfigError, "inventory policy")
