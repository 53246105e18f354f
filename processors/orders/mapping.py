"""Status mappings per source system: the source's raw order statuses -> canonical status dimensions.

The mappings are data (`topology/mappings/<source>.yaml`, shipped as package data of
`shopstream.topology`); this module validates them and answers look-ups. Reading the file is the
only I/O, done once by `load_mapping`; the lifecycle only ever sees a validated `StatusMapping`.

File format::

    source: shopify
    financial_status:                 # raw payment status -> canonical payment_status
      - id: shopify.financial_status.paid     # cited as `rule` in the audit trail
        values: [paid]                # raw values this entry covers (null = field empty)
        canonical: paid               # a PaymentStatus symbol
        allow_from: []                # optional: extra legal predecessors of `canonical`
    fulfillment_status:               # raw fulfillment status -> canonical fulfillment_status
      - id: shopify.fulfillment_status.unfulfilled
        values: [null, unfulfilled]
        canonical: unfulfilled

Validation (a `MappingError` names the file and the offending entry):
- `canonical` and `allow_from` must name canonical states of that dimension (the Avro enums);
- entry ids are unique, and each raw value is covered by at most one entry per field;
- `allow_from` may not make a cancellable fulfillment state reachable from one that is not
  (cancellation must stay one-way; see `shopstream.processors.orders.transitions`).

Look-ups: a raw value covered by an entry maps to it; `None` not covered means "no information";
any other uncovered value is unmapped and the lifecycle rejects the event (it goes to review).
"""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopstream.schemas.models import FulfillmentStatus, PaymentStatus
from shopstream.yamlmodel import load_yaml_model, validate_model

from .transitions import CANCELLABLE_FULFILLMENT, StateGraph, base_graph, one_way_violations

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
ENTRY_ID = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$"


class MappingError(ValueError):
    """A status mapping file is missing or invalid."""


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ENTRY_ID)
    values: tuple[str | None, ...] = Field(min_length=1)
    note: str | None = None


class PaymentEntry(_Entry):
    """Raw payment status value(s) -> one canonical payment_status."""

    canonical: PaymentStatus
    allow_from: tuple[PaymentStatus, ...] = ()


class FulfillmentEntry(_Entry):
    """Raw fulfillment status value(s) -> one canonical fulfillment_status."""

    canonical: FulfillmentStatus
    allow_from: tuple[FulfillmentStatus, ...] = ()


class StatusMapping(BaseModel):
    """A validated status mapping of one source system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(pattern=SOURCE_NAME.pattern)
    financial_status: tuple[PaymentEntry, ...] = ()
    fulfillment_status: tuple[FulfillmentEntry, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> StatusMapping:
        ids: set[str] = set()
        for entry in (*self.financial_status, *self.fulfillment_status):
            if entry.id in ids:
                raise ValueError(f"entry id {entry.id!r} is used twice")
            ids.add(entry.id)
        for field, entries in (("financial_status", self.financial_status),
                               ("fulfillment_status", self.fulfillment_status)):
            covered: dict[str | None, str] = {}
            for entry in entries:
                for value in entry.values:
                    if value in covered:
                        raise ValueError(f"{field} value {value!r} is covered by both "
                                         f"{covered[value]!r} and {entry.id!r}")
                    covered[value] = entry.id
        violations = one_way_violations(self.fulfillment_graph, CANCELLABLE_FULFILLMENT)
        if violations:
            culprits = sorted({e.id for e in self.fulfillment_status if e.allow_from})
            raise ValueError(
                f"allow_from in {culprits} would let an order move from {violations[0][0]!r} back to "
                f"{violations[0][1]!r}: cancellation eligibility must stay one-way")
        return self

    @cached_property
    def payment_graph(self) -> StateGraph:
        """The core payment moves plus this mapping's `allow_from` additions."""
        return base_graph("payment_status").with_moves(
            (src, e.canonical) for e in self.financial_status for src in e.allow_from)

    @cached_property
    def fulfillment_graph(self) -> StateGraph:
        """The core fulfillment moves plus this mapping's `allow_from` additions."""
        return base_graph("fulfillment_status").with_moves(
            (src, e.canonical) for e in self.fulfillment_status for src in e.allow_from)

    def payment_entry(self, value: str | None) -> PaymentEntry | None:
        """The entry covering a raw payment status, or None when no entry covers it."""
        return next((e for e in self.financial_status if value in e.values), None)

    def fulfillment_entry(self, value: str | None) -> FulfillmentEntry | None:
        """The entry covering a raw fulfillment status, or None when no entry covers it."""
        return next((e for e in self.fulfillment_status if value in e.values), None)


def parse_mapping(data: Any, origin: str = "<mapping>") -> StatusMapping:
    """Validate already-parsed mapping data; `origin` names it in error messages."""
    return validate_model(StatusMapping, data, MappingError, "status mapping", origin, show_input=True)


def load_mapping_file(path: Path | str) -> StatusMapping:
    """Read and validate one mapping file."""
    return load_yaml_model(path, StatusMapping, MappingError, "status mapping", show_input=True)


def mappings_dir() -> Path:
    """Where the shipped mappings live (`topology/mappings/`, package data of shopstream.topology)."""
    return Path(str(resources.files("shopstream.topology").joinpath("mappings")))


def available_sources() -> list[str]:
    """Source systems that have a shipped status mapping."""
    return sorted(p.stem for p in mappings_dir().glob("*.yaml"))


def load_mapping(source: str, extra_dir: str | Path | None = None) -> StatusMapping:
    """The status mapping of a source system, e.g. `load_mapping("shopify")`.

    `extra_dir` (SHOPSTREAM_MAPPINGS_DIR) is searched first: an operator adds or corrects a source's
    mapping there without a new release, then replays what was parked for lack of it.
    """
    if not SOURCE_NAME.match(source):
        raise MappingError(f"{source!r} is not a source system name")
    path = mappings_dir() / f"{source}.yaml"
    if extra_dir and (Path(extra_dir) / f"{source}.yaml").is_file():
        path = Path(extra_dir) / f"{source}.yaml"
    if not path.is_file():
        raise MappingError(f"no status mapping for source {source!r} "
                           f"(have: {', '.join(available_sources()) or 'none'}; expected {path})")
    mapping = load_mapping_file(path)
    if mapping.source != source:
        raise MappingError(f"{path}: declares source {mapping.source!r}, expected {source!r}")
    return mapping
