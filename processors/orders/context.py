"""What the canonical order core needs besides the record and the event: mappings, policies, locations. Pure.

`Context.from_files` reads the shipped policies (I/O, for adapters); the core only ever sees the
built value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .mapping import StatusMapping
from .policy import OrdersPolicy, ReturnsPolicy, load_orders_policy, load_returns_policy


@dataclass(frozen=True)
class Context:
    """What `apply` needs besides the record and the event: status mappings and policies.

    `mapping_for(source)` returns the status mapping of a shop source system (the adapter passes its
    caching loader; a missing mapping raises `MappingError`, which the adapter parks on the DLQ).
    """

    mapping_for: Callable[[str], StatusMapping]
    policy: OrdersPolicy = field(default_factory=OrdersPolicy)
    returns_policy: ReturnsPolicy = field(default_factory=ReturnsPolicy)
    stock_locations: frozenset[str] = frozenset()  # ERP location codes a ship may name (reservations)

    @classmethod
    def from_files(cls, mapping_for: Callable[[str], StatusMapping], orders_policy: Path | str | None = None,
                   returns_policy: Path | str | None = None) -> Context:
        """A context with the policies read from their files (default: the shipped ones; I/O, for adapters).

        The stock locations are the inventory policy's online locations (topology/inventory.yaml),
        the ones the ATP worker sums."""
        from shopstream.processors.inventory.config import load_inventory_config

        return cls(mapping_for=mapping_for, policy=load_orders_policy(orders_policy),
                   returns_policy=load_returns_policy(returns_policy),
                   stock_locations=frozenset(load_inventory_config().online_locations))
