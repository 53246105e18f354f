"""The catalog core (pure): one state per SKU — product, who wrote which field, quality, prices, promotions.

Entry points, each `(state | None, input, Context, now) -> Outcome` (new state, records to publish):
- `apply_upsert(ProductUpserted)`: a duplicate event id, or an event older than the last one applied from
  the same source, changes nothing. Each field the event carries (None and empty lists mean "not carried")
  that differs from the state is applied when the source may write it (`Mastership.may_write`: a master,
  or the creator while no master wrote it), else recorded as rejected ("not master") — either way one
  entry on the product's change log (who, what, old, new, when, applied). Then:
  * **price**: a shop source's price is what the shop shows (`shop_price`), never a command. A master
    source's new price different from `shop_price` is checked by `pricing.price_change`: in policy →
    `UpdatePrice` (reason `in_policy`) on `commands.shop`; else a work item (queue `pricing`, kind
    `price_change`) and the change waits (`pending_price`, a newer change replaces it); no command.
  * **quality**: `checks.quality` per channel and locale (with `Context.catalog`, also the checks across
    products: unique slug, near-duplicate texts, bundles — `crossref.py`). A failing blocking check opens one work item
    (queue `catalog`, kind `catalog_incomplete`) naming the failed checks, unless one is open for the same
    checks; once every blocking check passes the open item is resolved (a WorkItemDecided by
    `shopstream.catalog`). `first_seen_at` / `complete_at` give the time to a complete product (KPI).
- `apply_deleted(ProductDeleted)`: marks the product deleted (its state and change log are kept).
- `apply_promotion(PromotionScheduled)`: `pricing.promotion` decides; in policy → scheduled, else a work
  item (queue `pricing`, kind `promotion`) and it waits for approval.
- `decide(WorkItemDecided)`: only for the SKU's open items (anything else: no change). A pending price
  approved → `UpdatePrice` (reason `approved`, with the item and the person), rejected → dropped; a
  promotion approved → scheduled, rejected → dropped; a catalog item decided by a person → its failures
  accepted (no new item for the same checks).
- `advance(now)`: the promotion timer — a scheduled promotion whose start has come sets its price
  (`promotion_start`), an active one whose end has come restores the price it replaced (`promotion_end`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from shopstream.schemas.models import Money, ProductDeleted, ProductUpserted, PromotionScheduled, WorkItemDecided
from shopstream.topology import names

from . import pricing, records
from .checks import quality
from .crossref import CatalogIndex
from .rules import CatalogRules, Mastership

SHOP_SOURCES = frozenset({"shopify", "woocommerce"})
#: Product fields taken from ProductUpserted (all but meta, sku and the bookkeeping fields).
FIELDS = ("title", "description", "family", "category", "brand", "barcode", "slug", "price", "cost",
          "compare_at_price", "weight_grams", "active", "product_id", "options", "variants", "attributes", "images",
          "channels", "tags")
MAX_CHANGES, MAX_SEEN = 200, 64


@dataclass(frozen=True)
class Context:
    """The data the core decides with."""

    rules: CatalogRules
    mastership: Mastership
    #: The other products, for the cross-product checks (`crossref.py`); None: those checks are not run.
    catalog: CatalogIndex | None = None


@dataclass
class Outcome:
    """The new state (None: unchanged) and what to publish, as (logical topic, key, record)."""

    state: dict[str, Any] | None
    outputs: list[tuple[str, str, BaseModel]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when the state must be stored."""
        return self.state is not None


def new_state(sku: str) -> dict[str, Any]:
    """The state of a SKU never seen."""
    return {"sku": sku, "product": {}, "writers": {}, "source_times": {}, "seen": [], "version": 0, "deleted": False,
            "quality": None, "catalog_item": None, "accepted": [], "shop_price": None, "pending_price": None,
            "promotions": [], "changes": [], "first_seen_at": None, "complete_at": None}


def _plain(value: Any) -> Any:
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, BaseModel):
        return {k: _plain(v) for k, v in value.model_dump().items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    return value


def _log(state: dict[str, Any], at: datetime, who: str, what: str, old: Any, new: Any, applied: bool,
         reason: str = "") -> None:
    state["changes"] = [*state["changes"], {"at": at.isoformat(), "who": who, "field": what, "old": old, "new": new,
                                            "applied": applied, "reason": reason}][-MAX_CHANGES:]


def _amount(price: dict[str, Any] | None) -> Decimal | None:
    return Decimal(price["amount"]) if price else None


def _copy(state: dict[str, Any] | None, sku: str) -> dict[str, Any]:
    base = state if state is not None else new_state(sku)
    return {**base, "product": dict(base["product"]), "writers": dict(base["writers"]),
            "source_times": dict(base["source_times"])}


def apply_upsert(state: dict[str, Any] | None, event: ProductUpserted, ctx: Context, now: datetime) -> Outcome:
    """Apply a ProductUpserted (see the module docstring)."""
    eid, sku = str(event.meta.event_id), event.sku
    if state is not None and eid in state["seen"]:
        return Outcome(None)
    source = ctx.mastership.source_of(event.meta.source)
    last = state["source_times"].get(source) if state is not None else None
    if last is not None and event.updated_at.isoformat() < last:
        return Outcome(None)  # an older event of the same source: a newer one was applied already
    s = _copy(state, sku)
    s["seen"], s["deleted"] = [*s["seen"], eid][-MAX_SEEN:], False
    s["source_times"][source] = event.updated_at.isoformat()
    s["first_seen_at"] = s["first_seen_at"] or event.updated_at.isoformat()
    s.setdefault("created_by", source)
    outputs: list[tuple[str, str, BaseModel]] = []
    who = f"{event.meta.source}"
    for name in FIELDS:
        new = _plain(getattr(event, name))
        if new is None or new == [] or new == {}:
            continue
        old = s["product"].get(name)
        if name == "price" and source in SHOP_SOURCES and new != s["shop_price"]:
            s["shop_price"] = new  # the shop shows it: a fact, whoever is master of the catalog price
        if new == old:
            continue
        if not ctx.mastership.may_write(name, source, s["writers"].get(name)):
            masters = ", ".join(ctx.mastership.masters.get(name, []))
            _log(s, event.updated_at, who, name, old, new, False, f"not master (masters: {masters})")
            continue
        s["product"][name], s["writers"][name] = new, source
        _log(s, event.updated_at, who, name, old, new, True)
        if name == "price" and source not in SHOP_SOURCES:
            outputs += _price_change(s, new, event, ctx, now)
    s["product"]["sku"] = sku
    outputs += _quality(s, ctx, now, eid)
    s["version"] += 1
    return Outcome(s, outputs)


def _price_change(s: dict[str, Any], new: dict[str, Any], event: ProductUpserted, ctx: Context,
                  now: datetime) -> list[tuple[str, str, BaseModel]]:
    sku, eid, version = s["sku"], str(event.meta.event_id), ctx.rules.version
    if new == s["shop_price"]:
        s["pending_price"] = None  # the shop has it already: nothing to approve any more
        return []
    verdict = pricing.price_change(Decimal(new["amount"]), _amount(s["shop_price"]),
                                   _amount(s["product"].get("cost")), ctx.rules.pricing)
    if not verdict.needs_approval:
        command = records.update_price(sku, new, s["shop_price"], "in_policy", now, eid, version=version, cause=eid)
        s["shop_price"], s["pending_price"] = new, None
        return [(names.COMMANDS_SHOP, sku, command)]
    old = s["shop_price"]["amount"] if s["shop_price"] else "none"
    item = records.work_item(sku, "price_change", "pricing", f"price of {sku}: {old} -> {new['amount']} "
                             f"{new['currency']} needs approval ({', '.join(verdict.rule_ids)})",
                             list(verdict.rule_ids), version, verdict.evidence, now, eid, eid)
    s["pending_price"] = {"item_id": str(item.meta.event_id), "price": new, "rule_ids": list(verdict.rule_ids),
                          "requested_by": event.meta.source, "requested_at": event.updated_at.isoformat()}
    return [(names.REVIEW_QUEUE, sku, item)]


def _quality(s: dict[str, Any], ctx: Context, now: datetime, cause: str) -> list[tuple[str, str, BaseModel]]:
    sku, doc = s["sku"], quality(s["sku"], s["product"], ctx.rules, ctx.catalog)
    s["quality"] = doc
    failing, item = doc["blocking_failed"], s["catalog_item"]
    if not failing:
        s["complete_at"] = s["complete_at"] or now.isoformat()
        s["accepted"] = []
        if item is None:
            return []
        s["catalog_item"] = None
        return [(names.REVIEW_DECISIONS, sku, records.resolved(sku, item["id"], "catalog_incomplete",
                                                               "resolved: every blocking check passes", now))]
    if (item is not None and item["checks"] == failing) or set(failing) <= set(s["accepted"]):
        return []
    evidence = {f"{c['check']}@{ch}/{loc}": c["message"][:500] for ch, locs in doc["channels"].items()
                for loc, res in locs.items() for c in res["failed"] if c["blocking"]}
    checks = sorted({f.split("@", 1)[0] for f in failing})
    new = records.work_item(sku, "catalog_incomplete", "catalog", f"product {sku} fails blocking checks: "
                            f"{', '.join(checks)}", checks, ctx.rules.version, evidence, now,
                            ",".join(failing), cause)
    out: list[tuple[str, str, BaseModel]] = [(names.REVIEW_QUEUE, sku, new)]
    if item is not None:  # the failures changed: the old item is superseded by the new one
        out.append((names.REVIEW_DECISIONS, sku, records.resolved(sku, item["id"], "catalog_incomplete",
                                                                  "superseded by a newer item", now)))
    s["catalog_item"] = {"id": str(new.meta.event_id), "checks": failing}
    return out


def apply_deleted(state: dict[str, Any] | None, event: ProductDeleted, ctx: Context, now: datetime) -> Outcome:
    """Mark the SKU deleted (a duplicate changes nothing)."""
    eid = str(event.meta.event_id)
    if state is not None and (eid in state["seen"] or state["deleted"]):
        return Outcome(None)
    s = _copy(state, event.sku)
    s["seen"], s["deleted"] = [*s["seen"], eid][-MAX_SEEN:], True
    _log(s, event.deleted_at, event.meta.source, "deleted", False, True, True)
    s["version"] += 1
    return Outcome(s)


def apply_promotion(state: dict[str, Any] | None, event: PromotionScheduled, ctx: Context, now: datetime) -> Outcome:
    """Schedule a promotion, or queue it for approval (see the module docstring)."""
    eid, sku = str(event.meta.event_id), event.sku
    if state is not None and (eid in state["seen"] or any(p["id"] == event.promotion_id for p in state["promotions"])):
        return Outcome(None)
    s = _copy(state, sku)
    s["seen"] = [*s["seen"], eid][-MAX_SEEN:]
    price = _plain(event.price)
    base = s["shop_price"] or s["product"].get("price")
    verdict = pricing.promotion(Decimal(price["amount"]), _amount(base), _amount(s["product"].get("cost")),
                                ctx.rules.pricing)
    promo = {"id": event.promotion_id, "price": price, "starts_at": event.starts_at.isoformat(),
             "ends_at": event.ends_at.isoformat(), "status": "scheduled", "item_id": None, "base_price": None,
             "rule_ids": list(verdict.rule_ids)}
    outputs: list[tuple[str, str, BaseModel]] = []
    if verdict.needs_approval:
        why = f"{price['amount']} {price['currency']} needs approval ({', '.join(verdict.rule_ids)})"
        item = records.work_item(sku, "promotion", "pricing", f"promotion {event.promotion_id} on {sku}: {why}",
                                 list(verdict.rule_ids), ctx.rules.version,
                                 {**verdict.evidence, "promotion_id": event.promotion_id,
                                  "starts_at": promo["starts_at"], "ends_at": promo["ends_at"]}, now, eid, eid)
        promo["status"], promo["item_id"] = "pending", str(item.meta.event_id)
        outputs.append((names.REVIEW_QUEUE, sku, item))
    s["promotions"] = [*s["promotions"], promo]
    _log(s, event.meta.occurred_at, event.meta.source, f"promotion:{event.promotion_id}", None, price, True,
         promo["status"])
    s["version"] += 1
    return Outcome(s, outputs)


def decide(state: dict[str, Any] | None, event: WorkItemDecided, ctx: Context, now: datetime) -> Outcome:
    """Apply a person's decision on one of the SKU's open items (see the module docstring)."""
    if state is None or event.decided_by == records.SOURCE:
        return Outcome(None)
    s, item_id, who = _copy(state, state["sku"]), event.item_id, event.decided_by
    approve, sku = event.decision == "approve", state["sku"]
    pending = s["pending_price"]
    if pending is not None and pending["item_id"] == item_id:
        s["pending_price"] = None
        _log(s, event.decided_at, f"user:{who}", "price", s["shop_price"], pending["price"], approve,
             f"{event.decision}: {event.note or ''}".strip())
        s["version"] += 1
        if not approve:
            return Outcome(s)
        command = records.update_price(sku, pending["price"], s["shop_price"], "approved", now, item_id,
                                       rule_ids=pending["rule_ids"], version=ctx.rules.version, work_item_id=item_id,
                                       approved_by=who, cause=str(event.meta.event_id))
        s["shop_price"] = pending["price"]
        return Outcome(s, [(names.COMMANDS_SHOP, sku, command)])
    for promo in s["promotions"]:
        if promo["item_id"] == item_id and promo["status"] == "pending":
            s["promotions"] = [{**p, "status": ("scheduled" if approve else "rejected")} if p is promo else p
                               for p in s["promotions"]]
            _log(s, event.decided_at, f"user:{who}", f"promotion:{promo['id']}", "pending",
                 "scheduled" if approve else "rejected", approve, event.note or "")
            s["version"] += 1
            return Outcome(s)
    item = s["catalog_item"]
    if item is not None and item["id"] == item_id:
        s["catalog_item"], s["accepted"] = None, list(item["checks"]) if approve else []
        _log(s, event.decided_at, f"user:{who}", "quality", item["checks"], event.decision, approve, event.note or "")
        s["version"] += 1
        return Outcome(s)
    return Outcome(None)


def advance(state: dict[str, Any], now: datetime) -> Outcome:
    """Start and end promotions whose time has come (the promotion timer)."""
    s, sku, moved = _copy(state, state["sku"]), state["sku"], False
    outputs: list[tuple[str, str, BaseModel]] = []
    promotions = []
    for promo in s["promotions"]:
        p = dict(promo)
        starts, ends = datetime.fromisoformat(p["starts_at"]), datetime.fromisoformat(p["ends_at"])
        if p["status"] == "scheduled" and now >= ends:
            p["status"], moved = "ended", True
        elif p["status"] == "scheduled" and now >= starts:
            p["base_price"], p["status"], moved = s["shop_price"] or s["product"].get("price"), "active", True
            outputs.append((names.COMMANDS_SHOP, sku, records.update_price(
                sku, p["price"], p["base_price"], "promotion_start", starts, f"{p['id']}:start",
                promotion_id=p["id"], rule_ids=p["rule_ids"])))
            s["shop_price"] = p["price"]
        if p["status"] == "active" and now >= ends:
            p["status"], moved = "ended", True
            if p["base_price"] is not None:
                outputs.append((names.COMMANDS_SHOP, sku, records.update_price(
                    sku, p["base_price"], p["price"], "promotion_end", ends, f"{p['id']}:end", promotion_id=p["id"])))
                s["shop_price"] = p["base_price"]
        promotions.append(p)
    if not moved:
        return Outcome(None)
    s["promotions"] = promotions
    s["version"] += 1
    return Outcome(s, outputs)


def due(state: dict[str, Any], now: datetime) -> bool:
    """True when `advance(now)` would move a promotion (so a timer visits only those SKUs)."""
    return any((p["status"] == "scheduled" and now >= datetime.fromisoformat(p["starts_at"]))
               or (p["status"] == "active" and now >= datetime.fromisoformat(p["ends_at"]))
               for p in state["promotions"])
