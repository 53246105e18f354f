"""Price and promotion policy (pure): which changes go straight to the shop and which need a person.

A price change (a master source's new price against the price the shop has) needs approval when:
- `price.zero`: the new price is 0 (`pricing.zero_price`);
- `price.below-cost`: the new price is below the product's cost (`pricing.below_cost`, when a cost is known);
- `price.change-beyond-threshold`: it moves more than `pricing.max_change_pct` % from the last price.
A promotion (a temporary price between a start and an end) needs approval when:
- `promotion.discount-beyond-limit`: its discount against the base price is above `promotion_max_discount_pct` %;
- `promotion.margin-below-floor`: its margin over cost is below `promotion_min_margin_pct` % of the
  promotional price (when a cost is known), or it is below cost;
- `price.zero`: the promotional price is 0.
Every verdict names its rule ids and the figures it saw (evidence, strings) for the work item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .rules import Pricing

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class PriceVerdict:
    """Whether a person must approve, why (rule ids) and the figures seen."""

    rule_ids: tuple[str, ...]
    evidence: dict[str, str] = field(default_factory=dict)

    @property
    def needs_approval(self) -> bool:
        """True when a rule fired."""
        return bool(self.rule_ids)


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    return (part * HUNDRED / whole).quantize(Decimal("0.01"))


def price_change(new: Decimal, last: Decimal | None, cost: Decimal | None, policy: Pricing) -> PriceVerdict:
    """The verdict on changing the shop's price from `last` (None: none yet) to `new`."""
    rules: list[str] = []
    evidence = {"new_price": str(new), "last_price": str(last) if last is not None else "",
                "cost": str(cost) if cost is not None else ""}
    if policy.zero_price and new == 0:
        rules.append("price.zero")
    if policy.below_cost and cost is not None and new < cost:
        rules.append("price.below-cost")
    if last is not None and last > 0:
        change = _pct(abs(new - last), last)
        evidence["change_pct"] = str(change)
        if change > policy.max_change_pct:
            rules.append("price.change-beyond-threshold")
    return PriceVerdict(tuple(rules), evidence)


def promotion(price: Decimal, base: Decimal | None, cost: Decimal | None, policy: Pricing) -> PriceVerdict:
    """The verdict on a promotional `price` against the `base` price it replaces for a while."""
    rules: list[str] = []
    evidence = {"promotion_price": str(price), "base_price": str(base) if base is not None else "",
                "cost": str(cost) if cost is not None else ""}
    if price == 0:
        rules.append("price.zero")
    if base is not None and base > 0:
        discount = _pct(base - price, base)
        evidence["discount_pct"] = str(discount)
        if discount > policy.promotion_max_discount_pct:
            rules.append("promotion.discount-beyond-limit")
    if cost is not None and price > 0:
        margin = _pct(price - cost, price)
        evidence["margin_pct"] = str(margin)
        if margin < policy.promotion_min_margin_pct:
            rules.append("promotion.margin-below-floor")
    elif cost is not None and cost > 0:
        rules.append("promotion.margin-below-floor")
    return PriceVerdict(tuple(rules), evidence)
