"""The orders processor's policies as data: `topology/orders_policy.yaml` and `topology/returns_policy.yaml`.

Both files are validated into frozen models (unknown keys, missing grades or alert kinds, fractions
outside [0, 1] or with more than 4 decimal places, bad durations are errors naming the file); reading
them is the only I/O here and happens once, in the adapter. The pure core
(`shopstream.processors.orders.canonical`) only ever sees the validated `OrdersPolicy` /
`ReturnsPolicy`. The files' own comments explain every key.

orders_policy.yaml::

    parking: {max_events_per_order: 50, expire_after: 24h}
    holds: {payment_risk_levels: [highest]}
    review: {await_verdict: false}
    invoicing: {on_shipment: false, on_shipment_gateways: [invoice], prices_include_tax: true,
                default_tax_rate: 0.19, shipping_tax_rate: null}
    alerts: {over_capture: warning, double_capture: critical, currency_mismatch: warning,
             refund_exceeds_capture: critical, chargeback: warning}

returns_policy.yaml::

    window_days: 30
    non_returnable_skus: [GIFT-CARD]
    refund_fraction: {as_new: 1, good: 1, damaged: 0.5, unsellable: 0}
    refund_shipping: false
    restock_location: default
    label: {carrier: dhl, service: retoure, ship_to: {...address...}, default_unit_grams: 500}

Fractions are exact decimals: a YAML number is read through its text (`0.1` is Decimal("0.1"), never
the binary float), and a string such as "0.25" is accepted too.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from shopstream.schemas.models import ConditionGrade, Severity
from shopstream.topology import parse_duration_ms
from shopstream.yamlmodel import load_yaml_model

#: Anomaly kinds the reconciliation raises (each needs a severity in orders_policy.yaml).
ANOMALY_KINDS: tuple[str, ...] = ("over_capture", "double_capture", "currency_mismatch",
                                  "refund_exceeds_capture", "chargeback")
CONDITION_GRADES: tuple[str, ...] = get_args(ConditionGrade)


class PolicyError(ValueError):
    """A policy file is missing or invalid."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Parking(_Frozen):
    """How long and how many events wait for an order that has not arrived yet."""

    max_events_per_order: PositiveInt = 50
    expire_after: timedelta = timedelta(hours=24)

    @field_validator("expire_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, timedelta):
            return value
        try:
            millis = parse_duration_ms(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if millis <= 0:
            raise ValueError(f"expire_after must be a positive duration, got {value!r}")
        return timedelta(milliseconds=millis)


class Holds(_Frozen):
    """What puts an order on hold besides a chargeback."""

    payment_risk_levels: frozenset[str] = frozenset({"highest"})


class ReviewGate(_Frozen):
    """Whether a new order waits for the review rules' verdict (OrderReviewed) before it may be released."""

    await_verdict: bool = False


def _default_alerts() -> dict[str, Severity]:
    return {"over_capture": "warning", "double_capture": "critical", "currency_mismatch": "warning",
            "refund_exceeds_capture": "critical", "chargeback": "warning"}


class Invoicing(_Frozen):
    """When an order is invoiced and how its tax is computed where the shop does not itemise it."""

    on_shipment: bool = False
    on_shipment_gateways: frozenset[str] = frozenset()
    prices_include_tax: bool = True
    default_tax_rate: Decimal = Decimal("0.19")
    shipping_tax_rate: Decimal | None = None

    @field_validator("default_tax_rate", "shipping_tax_rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return None if value is None else _fraction(value)

    def per_shipment(self, gateway: str | None) -> bool:
        """Whether an order paid through `gateway` gets one invoice per shipment (invoice on shipment)."""
        return self.on_shipment or (gateway is not None and gateway in self.on_shipment_gateways)


class OrdersPolicy(_Frozen):
    """A validated orders policy (parking, holds, review gate, invoicing, alert severities)."""

    parking: Parking = Parking()
    holds: Holds = Holds()
    review: ReviewGate = ReviewGate()
    invoicing: Invoicing = Invoicing()
    alerts: dict[str, Severity] = Field(default_factory=_default_alerts)

    @field_validator("alerts")
    @classmethod
    def _every_kind(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        missing = sorted(set(ANOMALY_KINDS) - set(value))
        unknown = sorted(set(value) - set(ANOMALY_KINDS))
        if missing or unknown:
            problems = (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else "")
            raise ValueError(f"alerts must give a severity for exactly {', '.join(ANOMALY_KINDS)}{problems}")
        return value

    def severity(self, kind: str) -> Severity:
        """The severity of an anomaly kind."""
        return self.alerts[kind]


def _fraction(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"expected a decimal between 0 and 1, got {value!r}")
    try:
        number = Decimal(str(value))  # through the text: 0.1 stays 0.1
    except (InvalidOperation, ValueError):
        raise ValueError(f"expected a decimal between 0 and 1, got {value!r}") from None
    if not number.is_finite() or not Decimal(0) <= number <= Decimal(1):
        raise ValueError(f"expected a decimal between 0 and 1, got {value!r}")
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise ValueError(f"at most 4 decimal places, got {value!r}")
    return number


def _default_fractions() -> dict[ConditionGrade, Decimal]:
    return {"as_new": Decimal(1), "good": Decimal(1), "damaged": Decimal("0.5"), "unsellable": Decimal(0)}


class PolicyAddress(_Frozen):
    """A postal address in a policy file (the returns warehouse)."""

    name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    region: str | None = None
    country_code: str | None = None
    phone: str | None = None


class ReturnLabelPolicy(_Frozen):
    """What a return label is bought with: carrier, service, the warehouse, a unit weight fallback."""

    carrier: str | None = None
    service: str | None = None
    ship_to: PolicyAddress | None = None
    default_unit_grams: int = Field(default=500, ge=0)


class ReturnsPolicy(_Frozen):
    """A validated returns policy (window, non-returnable SKUs, refund per grade, shipping, restock, label)."""

    window_days: int = Field(default=30, ge=0)
    non_returnable_skus: frozenset[str] = frozenset()
    refund_fraction: dict[ConditionGrade, Decimal] = Field(default_factory=_default_fractions)
    refund_shipping: bool = False
    restock_location: str = Field(default="default", min_length=1)
    label: ReturnLabelPolicy = ReturnLabelPolicy()

    @field_validator("refund_fraction", mode="before")
    @classmethod
    def _fractions(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        missing = sorted(set(CONDITION_GRADES) - set(value))
        if missing:
            raise ValueError(f"refund_fraction must list every condition grade; missing {missing}")
        return {grade: _fraction(v) if grade in CONDITION_GRADES else v for grade, v in value.items()}

    @property
    def window(self) -> timedelta:
        """The return window as a duration."""
        return timedelta(days=self.window_days)

    def fraction(self, grade: ConditionGrade) -> Decimal:
        """The share of the unit price refunded for a unit of this grade."""
        return self.refund_fraction[grade]


def _topology_file(name: str) -> Path:
    return Path(str(resources.files("shopstream.topology").joinpath(name)))


def default_orders_policy_path() -> Path:
    """The shipped `topology/orders_policy.yaml`."""
    return _topology_file("orders_policy.yaml")


def default_returns_policy_path() -> Path:
    """The shipped `topology/returns_policy.yaml`."""
    return _topology_file("returns_policy.yaml")


def load_orders_policy(path: Path | str | None = None) -> OrdersPolicy:
    """Read and validate the orders policy (default: the shipped file)."""
    return load_yaml_model(path or default_orders_policy_path(), OrdersPolicy, PolicyError, "orders policy",
                           empty_is_defaults=True)


def load_returns_policy(path: Path | str | None = None) -> ReturnsPolicy:
    """Read and validate the returns policy (default: the shipped file)."""
    return load_yaml_model(path or default_returns_policy_path(), ReturnsPolicy, PolicyError, "returns policy",
                           empty_is_defaults=True)
