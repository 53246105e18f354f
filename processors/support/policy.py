"""The automation policy as data: what the machine may do alone (`topology/rules/automation.yaml`, pure but for reads).

Per intent: `reply` mode (`auto` from `min_confidence`, `suggest`, `off`) and optionally an order `action`
(`suggest` or `off`). The loader refuses `auto` for any action that changes an order or sends money, so
the default "a person approves every change" cannot be configured away by a typo. `decide` returns what
happens to one draft, and why, with the policy version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopstream.yamlmodel import load_yaml_model

from .dataset import INTENTS

DEFAULT_POLICY_PATH = Path(__file__).resolve().parents[2] / "topology" / "rules" / "automation.yaml"
#: Actions that change an order or move money: never automatic.
GUARDED_ACTIONS = frozenset({"CancelOrder", "UpdateShippingAddress", "IssueRefund"})
Mode = Literal["auto", "suggest", "off"]


class PolicyError(ValueError):
    """An automation policy that cannot be used; the message names the file and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _yaml_off(value: object) -> object:
    # YAML 1.1 reads a bare `off` as false; the file means the mode "off".
    return "off" if value is False else value


class ActionSpec(_Strict):
    name: Literal["CancelOrder", "UpdateShippingAddress", "IssueRefund"]
    mode: Mode = "suggest"

    _off = field_validator("mode", mode="before")(_yaml_off)

    @model_validator(mode="after")
    def _never_auto(self) -> ActionSpec:
        if self.mode == "auto" and self.name in GUARDED_ACTIONS:
            raise ValueError(f"{self.name} changes an order or moves money: it can be suggest or off, never auto")
        return self


class IntentPolicy(_Strict):
    reply: Mode = "off"
    min_confidence: float | None = Field(None, gt=0, le=1)
    action: ActionSpec | None = None

    _off = field_validator("reply", mode="before")(_yaml_off)

    @model_validator(mode="after")
    def _threshold(self) -> IntentPolicy:
        if self.reply == "auto" and self.min_confidence is None:
            raise ValueError("reply: auto needs min_confidence")
        return self


class AutomationPolicy(_Strict):
    """A validated automation policy."""

    version: str = Field(min_length=1)
    default: IntentPolicy = Field(default_factory=IntentPolicy)
    intents: dict[str, IntentPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> AutomationPolicy:
        unknown = sorted(set(self.intents) - set(INTENTS))
        if unknown:
            raise ValueError(f"unknown intents {unknown} (known: {', '.join(INTENTS)})")
        return self

    def for_intent(self, intent: str) -> IntentPolicy:
        """The intent's policy, or the default."""
        return self.intents.get(intent, self.default)


@dataclass(frozen=True)
class Decision:
    """What happens to a draft: sent alone, or held for a person (with the reason), and the order action."""

    send: bool  # False: no draft at all (mode off)
    requires_approval: bool
    action: str | None  # the order action offered (always needs approval), if the policy allows it
    reason: str
    policy_version: str


def decide(policy: AutomationPolicy, intent: str, confidence: float, offered_action: str | None) -> Decision:
    """Apply the policy to a draft of `intent` at `confidence` that offers `offered_action`."""
    rule = policy.for_intent(intent)
    action = offered_action if rule.action is not None and rule.action.name == offered_action \
        and rule.action.mode != "off" else None
    if rule.reply == "off":
        return Decision(False, True, None, f"policy: {intent} replies are off", policy.version)
    if action is not None:
        return Decision(True, True, action, f"policy: {action} needs a person's approval", policy.version)
    if rule.reply == "suggest":
        return Decision(True, True, None, f"policy: {intent} replies are suggested to a person", policy.version)
    threshold = rule.min_confidence or 1.0
    if confidence >= threshold:
        return Decision(True, False, None, f"policy: auto from confidence {threshold:.2f}", policy.version)
    return Decision(True, True, None, f"policy: confidence {confidence:.2f} below {threshold:.2f} for auto",
                    policy.version)


def load_policy(path: Path | str | None = None) -> AutomationPolicy:
    """The automation policy (default: the shipped one), validated."""
    return load_yaml_model(path or DEFAULT_POLICY_PATH, AutomationPolicy, PolicyError, "automation policy")
