"""The shops' documented API limits, as data and arithmetic: leaky buckets, call-limit headers, Retry-After. Pure.

Shopify (https://shopify.dev/docs/api/usage/rate-limits):
  GraphQL Admin  a bucket of cost points per app and shop (1000 on standard plans, restored at 50/s;
                 higher on Plus). A request needs room for its *requested* cost before it runs; the
                 difference to the actual cost is refunded. Every response reports
                 `extensions.cost.throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}`;
                 a request without room is answered HTTP 200 with `errors[].extensions.code == "THROTTLED"`.
  REST Admin     a bucket of 40 requests leaking 2/s (80 and 4/s on Plus); every response carries
                 `X-Shopify-Shop-Api-Call-Limit: <used>/<size>`; beyond it: HTTP 429 with `Retry-After`
                 (seconds).
WooCommerce      no built-in limit in the REST API; hosts and security plugins impose one, so the rate
                 (requests per second) is configuration; `/products/batch` takes up to 100 updates.

`LeakyBucket` models the remote bucket from what the shop reports, so the client waits *before* it
would be throttled instead of collecting rejections: `wait_s(cost, now)` is how long until `cost` fits.
The shop's own figures always win over the local estimate (`observe`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class LeakyBucket:
    """A leaky bucket of `capacity` units that regains `rate` units per second (mutable model)."""

    capacity: float
    rate: float
    available: float
    at: float = 0.0

    @classmethod
    def full(cls, capacity: float, rate: float, now: float = 0.0) -> LeakyBucket:
        """A bucket with all its room available."""
        return cls(capacity=capacity, rate=rate, available=capacity, at=now)

    def level(self, now: float) -> float:
        """Room available at `now`."""
        return min(self.capacity, self.available + max(0.0, now - self.at) * self.rate)

    def wait_s(self, cost: float, now: float) -> float:
        """Seconds until `cost` fits (0 when it fits now); a cost above the capacity waits for a full bucket."""
        need = min(cost, self.capacity) - self.level(now)
        if need <= -1e-9:
            return 0.0
        # a hair more than exact: arriving at exactly the cost is rounding away from a THROTTLED answer
        return (need + 1e-6) / self.rate if self.rate > 0 else float("inf")

    def spend(self, cost: float, now: float) -> None:
        """Take `cost` out (a request was sent)."""
        self.available = self.level(now) - cost
        self.at = now

    def observe(self, available: float, now: float, capacity: float | None = None, rate: float | None = None) -> None:
        """The shop reported its bucket: believe it (the plan may differ from the configuration)."""
        if capacity is not None and capacity > 0:
            self.capacity = capacity
        if rate is not None and rate > 0:
            self.rate = rate
        self.available = min(self.capacity, available)
        self.at = now


def graphql_throttle_status(body: Any) -> tuple[float, float, float] | None:
    """(currentlyAvailable, maximumAvailable, restoreRate) from a GraphQL response body, if present."""
    try:
        status = body["extensions"]["cost"]["throttleStatus"]
        return (float(status["currentlyAvailable"]), float(status["maximumAvailable"]),
                float(status["restoreRate"]))
    except (KeyError, TypeError, ValueError):
        return None


def graphql_costs(body: Any) -> tuple[float | None, float | None]:
    """(requestedQueryCost, actualQueryCost) from a GraphQL response body (None where absent)."""
    try:
        cost = body["extensions"]["cost"]
    except (KeyError, TypeError):
        return None, None
    requested, actual = cost.get("requestedQueryCost"), cost.get("actualQueryCost")
    return (float(requested) if requested is not None else None, float(actual) if actual is not None else None)


def is_throttled(body: Any) -> bool:
    """Whether a GraphQL response says THROTTLED (HTTP 200, errors[].extensions.code or message)."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return False
    for error in errors:
        if not isinstance(error, dict):
            continue
        code = (error.get("extensions") or {}).get("code") if isinstance(error.get("extensions"), dict) else None
        if code == "THROTTLED" or error.get("message") == "Throttled":
            return True
    return False


def call_limit(header: str | None) -> tuple[int, int] | None:
    """`X-Shopify-Shop-Api-Call-Limit: 32/40` as (used, size); None when absent or malformed."""
    if not header or "/" not in header:
        return None
    used, _, size = header.partition("/")
    try:
        return int(used.strip()), int(size.strip())
    except ValueError:
        return None


def retry_after_s(header: str | None, default_s: float = 2.0) -> float:
    """`Retry-After` in seconds (Shopify sends e.g. `2.0`); the default when absent or an HTTP date."""
    if header is None:
        return default_s
    try:
        value = float(header.strip())
    except ValueError:
        return default_s
    return value if value >= 0 else default_s
