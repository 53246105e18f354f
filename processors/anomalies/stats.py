"""Robust baselines: median and MAD over a subject's earlier windows (pure).

Why median/MAD and not an EWMA with variance: an anomaly that lasts a few windows drags an EWMA's mean
and inflates its variance, so the detector goes blind exactly while the problem persists and stays
desensitised long after; the median ignores up to half of the history being abnormal, and the MAD is
not inflated by a single huge spike. Both are exact functions of the kept window values (no floating
state that depends on the order of updates), so a replay computes bit-identical baselines. The cost is
keeping the last N window values per subject instead of two numbers, bounded by `baseline.windows`.

The MAD is scaled by 1.4826 so that `mad_factor` reads as "standard deviations" for normal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MAD_SCALE = 1.4826


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def mad(values: Sequence[float], centre: float) -> float:
    """The median absolute deviation from `centre`, scaled to a standard deviation (x1.4826)."""
    return MAD_SCALE * median([abs(v - centre) for v in values])


@dataclass(frozen=True)
class Verdict:
    """How an observation compares with its baseline."""

    abnormal: bool
    direction: Literal["up", "down"]
    observed: float
    baseline: float
    spread: float
    limit: float


def judge(observed: float, history: Sequence[float], *, mad_factor: float, min_delta: float, min_ratio: float,
          direction: Literal["up", "down", "both"]) -> Verdict:
    """Whether `observed` deviates from the median of `history` in `direction` beyond all three floors.

    Abnormal when |observed - median| > mad_factor x MAD, >= min_delta and >= min_ratio x median. The
    absolute and relative floors matter when the history is flat (MAD 0): without them, one more
    cancellation than usual would be "infinitely" abnormal."""
    centre = median(history)
    spread = mad(history, centre)
    delta = observed - centre
    side: Literal["up", "down"] = "up" if delta >= 0 else "down"
    needed = max(mad_factor * spread, min_delta, min_ratio * abs(centre))
    allowed = direction in (side, "both")
    abnormal = allowed and abs(delta) > mad_factor * spread and abs(delta) >= needed and delta != 0
    limit = centre + needed if side == "up" else centre - needed
    return Verdict(abnormal, side, observed, centre, spread, limit)
