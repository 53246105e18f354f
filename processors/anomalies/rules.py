"""Anomaly detectors and thresholds as data: `topology/rules/anomalies.yaml` loaded into validated models (pure
but for the file read).

Two families of detectors (field `type`):

- windowed (`rate`, `count`): a value per event-time window (1h or 1d) and subject, compared with a robust
  baseline of the same subject's earlier windows (median and MAD, see `stats`); an alert needs the
  minimum volume, a deviation beyond `mad_factor` scaled MADs AND beyond the absolute/relative floors;
- per event (`stock_drift`, `stock_impossible`, `repeated_oversold`, `price`): a check on each fact.

Errors name the file, the line and the reason: `anomalies.yaml:14: detectors.2.window: ...`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopstream.topology import parse_duration_ms
from shopstream.yamlmodel import parse_located, read_text

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "topology" / "rules" / "anomalies.yaml"

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

Severity = Literal["info", "warning", "critical"]
Mode = Literal["on", "shadow", "off"]
#: rate measures: numerator / denominator per window
RateMeasure = Literal["cancellation_rate", "return_rate", "payment_failure_rate"]
#: count measures: a sum per window
CountMeasure = Literal["orders", "refunds", "refund_amount"]
Per = Literal["overall", "sku", "category", "gateway", "method"]
#: which subjects each measure can be split by
PER_OF: dict[str, frozenset[str]] = {
    "cancellation_rate": frozenset({"overall", "sku", "category"}),
    "return_rate": frozenset({"overall", "sku", "category"}),
    "payment_failure_rate": frozenset({"overall", "gateway", "method"}),
    "orders": frozenset({"overall", "sku", "category"}),
    "refunds": frozenset({"overall", "gateway"}),
    "refund_amount": frozenset({"overall", "gateway"}),
}


class AnomalyRulesError(ValueError):
    """The anomalies file is missing or invalid (the message names file, line and reason)."""


def _duration(value: Any) -> int:
    millis = parse_duration_ms(value)
    if millis <= 0:
        raise ValueError(f"expected a positive duration such as 1h, got {value!r}")
    return millis


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Base(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    description: str = ""
    severity: Severity = "warning"
    mode: Mode = "on"
    #: an open alert is resolved after this long without an abnormal observation (event time)
    resolve_after_ms: int = HOUR_MS

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `on` / `off` as a boolean
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for name in ("resolve_after", "within", "window"):
                if name in data:
                    data[f"{name}_ms"] = _duration(data.pop(name))
        return data


class Baseline(_Strict):
    """Which earlier windows form the baseline."""

    windows: int = Field(default=14, ge=3, le=2000)
    min_windows: int = Field(default=3, ge=2)
    #: only windows at the same hour of day (order rates follow the day)
    same_hour: bool = False
    #: windows below this volume do not enter the baseline (their rate is noise)
    min_volume: int = Field(default=5, ge=1)


class Threshold(_Strict):
    """How far from the baseline is abnormal: all three must hold."""

    mad_factor: float = Field(default=4.0, gt=0)
    min_delta: float = Field(default=0.0, ge=0)
    min_ratio: float = Field(default=0.0, ge=0)


class WindowedDetector(_Base):
    """A value per window and subject against its baseline (`rate` or `count`)."""

    type: Literal["rate", "count"]
    measure: RateMeasure | CountMeasure
    per: Per = "overall"
    window_ms: int = HOUR_MS
    direction: Literal["up", "down", "both"] = "up"
    #: kind used for a `down` deviation when direction is both (e.g. order_rate_drop vs order_rate_spike)
    kind_down: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    #: rate: the window's denominator; count: the observed value (up) or the baseline median (down)
    min_volume: float = Field(default=20, ge=0)
    baseline: Baseline = Baseline()
    threshold: Threshold = Threshold()

    @model_validator(mode="after")
    def _consistent(self) -> WindowedDetector:
        if self.window_ms not in (HOUR_MS, DAY_MS):
            raise ValueError("window must be 1h or 1d")
        rate = self.measure in ("cancellation_rate", "return_rate", "payment_failure_rate")
        if rate != (self.type == "rate"):
            raise ValueError(f"measure {self.measure} is not a {self.type} measure")
        if self.per not in PER_OF[self.measure]:
            raise ValueError(f"measure {self.measure} cannot be split per {self.per} "
                             f"(one of {', '.join(sorted(PER_OF[self.measure]))})")
        if self.baseline.min_windows > self.baseline.windows:
            raise ValueError("baseline.min_windows exceeds baseline.windows")
        if self.baseline.same_hour and self.window_ms != HOUR_MS:
            raise ValueError("baseline.same_hour needs window 1h")
        return self


class StockDriftDetector(_Base):
    """On-hand fell between two ERP snapshots by more than the orders and shipments in between explain."""

    type: Literal["stock_drift"]
    min_units: int = Field(default=5, ge=1)
    min_ratio: float = Field(default=0.1, ge=0)


class StockImpossibleDetector(_Base):
    """An ERP figure that cannot be true: negative on-hand, or beyond `max_on_hand`."""

    type: Literal["stock_impossible"]
    max_on_hand: int = Field(default=10_000_000, ge=1)


class RepeatedOversoldDetector(_Base):
    """A SKU oversold (ATP available below zero) `count` times within `within`."""

    type: Literal["repeated_oversold"]
    count: int = Field(default=3, ge=2)
    within_ms: int = DAY_MS


class PriceDetector(_Base):
    """A product price that is zero, below cost (when a cost is known) or changed beyond `max_change_ratio`."""

    type: Literal["price"]
    check: Literal["zero", "below_cost", "change"]
    max_change_ratio: float = Field(default=0.5, gt=0)


Detector = Annotated[WindowedDetector | StockDriftDetector | StockImpossibleDetector | RepeatedOversoldDetector
                     | PriceDetector, Field(discriminator="type")]


class AnomalyRules(_Strict):
    """The whole file: version, lateness, memory and the detectors."""

    version: str = Field(min_length=1, max_length=64)
    #: events later than this behind the newest event time are not counted in closed windows
    lateness_ms: int = 10 * 60_000
    #: how long an order is remembered to attribute its cancellation, return or refund
    order_memory_ms: int = 45 * DAY_MS
    #: order ids kept as evidence per alert
    evidence_orders: int = Field(default=20, ge=0, le=200)
    detectors: list[Detector]

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for name in ("lateness", "order_memory"):
                if name in data:
                    data[f"{name}_ms"] = _duration(data.pop(name))
            if isinstance(data.get("version"), int | float) and not isinstance(data.get("version"), bool):
                data["version"] = str(data["version"])
        return data

    @model_validator(mode="after")
    def _unique(self) -> AnomalyRules:
        seen: set[str] = set()
        for detector in self.detectors:
            if detector.id in seen:
                raise ValueError(f"duplicate detector id {detector.id!r}")
            seen.add(detector.id)
        return self

    def windowed(self) -> list[WindowedDetector]:
        """The windowed detectors that are not off."""
        return [d for d in self.detectors if isinstance(d, WindowedDetector) and d.mode != "off"]

    def of_type(self, kind: type[_Base]) -> list[Any]:
        """The detectors of one class that are not off."""
        return [d for d in self.detectors if isinstance(d, kind) and d.mode != "off"]


def _loc_for_line(loc: Sequence[str | int]) -> list[str | int]:
    # pydantic adds the union tag and renames durations (`window_ms`): map back to the YAML keys
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and part in {"rate", "count", "stock_drift", "stock_impossible",
                                               "repeated_oversold", "price"} and out and isinstance(out[-1], int):
            continue
        out.append(part.removesuffix("_ms") if isinstance(part, str) else part)
    return out


def parse_rules(text: str, origin: str) -> AnomalyRules:
    """The rules in `text`; `AnomalyRulesError` naming origin, line and reason otherwise."""
    return parse_located(text, origin, AnomalyRules, AnomalyRulesError, "anomaly rules", yaml_path=_loc_for_line)


def load_rules(path: Path | str | None = None) -> AnomalyRules:
    """Read and validate an anomalies file (default: the shipped one); `AnomalyRulesError` otherwise."""
    path = Path(path) if path is not None else DEFAULT_PATH
    return parse_rules(read_text(path, AnomalyRulesError, "anomaly rules"), str(path))
