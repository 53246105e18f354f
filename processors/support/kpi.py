"""Support KPIs: what is counted where, and the stats document built from the counts (pure).

Counted by the support worker in Redis HyperLogLogs (`PFADD` of the ticket key or order id), so a
record read twice after a crash or a replay is not counted twice, and memory stays bounded (~12 kB per
counter; counts are estimates within about 1 %):

    {prefix}support:kpi:orders                 every order placed (OrderPlaced)
    {prefix}support:kpi:tickets[:<intent>]     every ticket created
    {prefix}support:kpi:self_service[:<intent>]  tickets answered by an automatic reply
    {prefix}support:kpi:suggested[:<intent>]   tickets with a draft waiting for a person

First response of automatic replies: seconds from the ticket's creation to our reply, per ticket in the
hash `{prefix}support:kpi:first_response` (replies a person approves are answered in the helpdesk; their
time is not seen here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import median

from .dataset import INTENTS

KINDS = ("tickets", "self_service", "suggested")


def kpi_key(prefix: str, kind: str, intent: str | None = None) -> str:
    """The Redis key of one counter."""
    return f"{prefix}support:kpi:{kind}" + (f":{intent}" if intent else "")


def first_response_key(prefix: str) -> str:
    """The hash of first-response seconds per automatically answered ticket."""
    return f"{prefix}support:kpi:first_response"


def all_keys(prefix: str) -> list[tuple[str, str | None, str]]:
    """(kind, intent or None, key) of every counter the stats read; orders first."""
    keys: list[tuple[str, str | None, str]] = [("orders", None, kpi_key(prefix, "orders"))]
    for kind in KINDS:
        keys.append((kind, None, kpi_key(prefix, kind)))
        keys.extend((kind, intent, kpi_key(prefix, kind, intent)) for intent in INTENTS)
    return keys


def stats(counts: Mapping[tuple[str, str | None], int], first_response_s: Sequence[float]) -> dict[str, object]:
    """The `GET /v1/support/stats` document from the counters."""
    orders = counts.get(("orders", None), 0)
    tickets = counts.get(("tickets", None), 0)

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    per_intent = {}
    for intent in INTENTS:
        n = counts.get(("tickets", intent), 0)
        if n:
            auto = counts.get(("self_service", intent), 0)
            per_intent[intent] = {"tickets": n, "self_service": auto, "self_service_share": share(auto, n),
                                  "suggested": counts.get(("suggested", intent), 0)}
    return {
        "orders": orders, "tickets": tickets,
        "tickets_per_100_orders": round(100 * tickets / orders, 2) if orders else None,
        "self_service_share": share(counts.get(("self_service", None), 0), tickets),
        "suggested": counts.get(("suggested", None), 0),
        "first_response_s": {"automatic_replies": len(first_response_s),
                             "median": round(median(first_response_s), 3) if first_response_s else None},
        "per_intent": per_intent,
    }
