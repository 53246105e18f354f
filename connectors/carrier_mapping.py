"""Carrier status tables: a carrier's tracking status -> canonical shipment event (data: `topology/carrier.yaml`).

File format (see the file's header for the choices made)::

    systems:
      aftership:                        # the webhook body's `status_system`
        InTransit:                      # the raw status, exact spelling of that system
          event: ShipmentDispatched     # or ShipmentCreated / ShipmentDelivered / ShipmentException / ignore
        AttemptFail:
          event: ShipmentException
          exception_code: delivery_attempt_failed   # required for ShipmentException, forbidden otherwise
          returning_to_sender: false                # optional, ShipmentException only
          note: free text

Validation (`CarrierMappingError` names the file and the offending entry): an unknown target event,
a missing or misplaced `exception_code`, unknown keys, or an empty table fail loading. Reading the
file is the only I/O (`load_carrier_mapping`); look-ups are pure.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopstream.yamlmodel import load_yaml_model, validate_model

ShipmentEvent = Literal["ShipmentCreated", "ShipmentDispatched", "ShipmentDelivered", "ShipmentException"]
Target = Literal["ShipmentCreated", "ShipmentDispatched", "ShipmentDelivered", "ShipmentException", "ignore"]
SYSTEM_NAME = r"^[a-z0-9][a-z0-9_-]*$"


class CarrierMappingError(ValueError):
    """The carrier status mapping is missing or invalid."""


class CarrierStatusEntry(BaseModel):
    """What one raw carrier status means."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: Target
    exception_code: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$")
    returning_to_sender: bool = False
    note: str | None = None

    @model_validator(mode="after")
    def _exception_fields(self) -> CarrierStatusEntry:
        if self.event == "ShipmentException" and not self.exception_code:
            raise ValueError("a ShipmentException entry needs an exception_code")
        if self.event != "ShipmentException" and (self.exception_code or self.returning_to_sender):
            raise ValueError(f"exception_code / returning_to_sender only belong to ShipmentException, "
                             f"not {self.event}")
        return self


class CarrierMapping(BaseModel):
    """The validated status tables of every carrier status system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    systems: dict[str, dict[str, CarrierStatusEntry]] = Field(min_length=1)

    @model_validator(mode="after")
    def _tables(self) -> CarrierMapping:
        for system, table in self.systems.items():
            if not re.match(SYSTEM_NAME, system):
                raise ValueError(f"{system!r} is not a status system name (lowercase letters, digits, - and _)")
            if not table:
                raise ValueError(f"status system {system!r} has no entries")
            blank = [status for status in table if not status.strip()]
            if blank:
                raise ValueError(f"status system {system!r} has an empty status")
        return self

    def entry(self, system: str, status: str) -> CarrierStatusEntry | None:
        """The entry for a raw status of a status system, or None when the table does not cover it."""
        table = self.systems.get(system)
        return None if table is None else table.get(status)


def parse_carrier_mapping(data: Any, origin: str = "<carrier mapping>") -> CarrierMapping:
    """Validate already-parsed mapping data; `origin` names it in error messages."""
    return validate_model(CarrierMapping, data, CarrierMappingError, "carrier status mapping", origin,
                          show_input=True)


def default_path() -> Path:
    """The shipped mapping (`topology/carrier.yaml`, package data of shopstream.topology)."""
    return Path(str(resources.files("shopstream.topology").joinpath("carrier.yaml")))


def load_carrier_mapping(path: Path | str | None = None, extra: Path | str | None = None) -> CarrierMapping:
    """Read and validate the carrier mapping (the shipped one by default), with the tables of `extra`
    (SHOPSTREAM_CARRIER_MAPPING) laid over it status by status: a missing status is added without a release."""
    base = load_yaml_model(path if path is not None else default_path(), CarrierMapping, CarrierMappingError,
                           "carrier status mapping", show_input=True)
    if not extra:
        return base
    over = load_yaml_model(extra, CarrierMapping, CarrierMappingError, "carrier status mapping", show_input=True)
    systems = {name: dict(table) for name, table in base.systems.items()}
    for name, table in over.systems.items():
        systems.setdefault(name, {}).update(table)
    return CarrierMapping(systems=systems)
