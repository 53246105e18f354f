"""The catalog core: mastership, quality work items, price approvals, promotions, decisions (pure)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shopstream.connectors.shopify import ShopifyConnector, sign
from shopstream.processors.catalog.core import (
    Context,
    advance,
    apply_deleted,
    apply_promotion,
    apply_upsert,
    decide,
    due,
)
from shopstream.processors.catalog.rules import load_mastership, load_rules
from shopstream.schemas.models import (
    EventMeta,
    Money,
    ProductAttribute,
    ProductDeleted,
    ProductImage,
    ProductUpserted,
    PromotionScheduled,
    ReviewItem,
    UpdatePrice,
    WorkItemDecided,
)
from tests.unit.catalog_fixtures import SHOPIFY_PRODUCT

CTX = Context(load_rules(), load_mastership())
T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
LONG = "Warmer Pullover aus reiner Merinowolle, weich, atmungsaktiv und bei 30 Grad waschbar."


def meta(source: str, at: datetime, event_type: str = "ProductUpserted") -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid4()), event_type=event_type, occurred_at=at, recorded_at=at, source=source)


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def pim(at: datetime = T0, **changes: Any) -> ProductUpserted:
    """A complete PIM product (ecommerce channel only, accessories family: no axes)."""
    fields: dict[str, Any] = dict(
        sku="BELT-1", title="Ledergürtel mit Stahlschnalle", description=LONG, family="accessories",
        slug="ledergurtel", price=eur("40.00"), cost=None, channels=["marketplace"],
        attributes=[ProductAttribute(code="material", value="leather")],
        images=[ProductImage(url="https://x/b.jpg", width=1000, height=1000, format="jpeg", alt="Gürtel")])
    fields.update(changes)
    return ProductUpserted(meta=meta("pim", at), updated_at=at, **fields)


def outputs_of(outcome: Any, kind: type) -> list[Any]:
    return [record for _, _, record in outcome.outputs if isinstance(record, kind)]


def test_a_real_shaped_shopify_product_gets_a_quality_document() -> None:
    body = json.dumps(SHOPIFY_PRODUCT).encode()
    headers = {"X-Shopify-Topic": "products/update", "X-Shopify-Hmac-Sha256": sign("s", body)}
    first = ShopifyConnector("s").translate(headers, body, T0)[0].record
    outcome = apply_upsert(None, first, CTX, T0)
    doc = outcome.state["quality"]
    assert doc["sku"] == "SWE-MER-S-NAV" and doc["family"] == "apparel"
    de = doc["channels"]["ecommerce"]["de_DE"]
    assert de["missing"] == ["material", "color"] and de["completeness"] == 60
    assert {f["check"] for f in doc["channels"]["ecommerce"]["en_GB"]["failed"]} >= {"translations"}
    [item] = outputs_of(outcome, ReviewItem)
    assert item.kind == "catalog_incomplete" and item.details["queue"] == "catalog"
    assert item.details["subject_type"] == "product" and item.details["subject_id"] == "SWE-MER-S-NAV"
    assert outputs_of(outcome, UpdatePrice) == []  # the shop's own price is a fact, not a command
    assert outcome.state["shop_price"] == {"amount": "89.0000", "currency": "EUR"}


def test_removing_a_required_attribute_opens_an_item_and_fixing_it_resolves_it() -> None:
    s = apply_upsert(None, pim(), CTX, T0).state
    assert s["quality"]["complete"] and s["catalog_item"] is None
    # The PIM sends the product's whole value set: `material` is no longer in it. (An empty list would mean
    # "not carried" and change nothing.)
    other = [ProductAttribute(code="color", value="black")]
    broken = apply_upsert(s, pim(T0 + timedelta(minutes=1), attributes=other), CTX, T0)
    de = broken.state["quality"]["channels"]["marketplace"]["de_DE"]
    assert de["completeness"] < s["quality"]["channels"]["marketplace"]["de_DE"]["completeness"]
    assert de["missing"] == ["material"]
    [item] = outputs_of(broken, ReviewItem)
    assert "required-attributes" in item.reason and broken.state["catalog_item"]["id"] == item.meta.event_id
    # The same failure again opens nothing new.
    again = apply_upsert(broken.state, pim(T0 + timedelta(minutes=2), attributes=other, title="Ledergürtel, Stahl"),
                         CTX, T0)
    assert outputs_of(again, ReviewItem) == []
    fixed = apply_upsert(again.state, pim(T0 + timedelta(minutes=3)), CTX, T0)
    [closed] = outputs_of(fixed, WorkItemDecided)
    assert closed.item_id == item.meta.event_id and closed.decided_by == "shopstream.catalog"
    assert fixed.state["catalog_item"] is None and fixed.state["complete_at"]


def test_mastership_a_non_master_change_is_flagged_not_applied() -> None:
    s = apply_upsert(None, pim(), CTX, T0).state
    shop = ProductUpserted(meta=meta("shopify", T0), sku="BELT-1", title="Cheap belt", updated_at=T0 + timedelta(1),
                           price=eur("40.00"))
    outcome = apply_upsert(s, shop, CTX, T0)
    assert outcome.state["product"]["title"] == "Ledergürtel mit Stahlschnalle"
    [change] = [c for c in outcome.state["changes"] if c["field"] == "title" and c["who"] == "shopify"]
    assert not change["applied"] and change["reason"].startswith("not master")
    # ...but the shop may fill what it created while no master wrote it
    own = apply_upsert(None, shop, CTX, T0).state
    assert own["product"]["title"] == "Cheap belt" and own["writers"]["title"] == "shopify"


def test_duplicates_and_older_events_change_nothing() -> None:
    event = pim()
    s = apply_upsert(None, event, CTX, T0).state
    assert not apply_upsert(s, event, CTX, T0).changed
    assert not apply_upsert(s, pim(T0 - timedelta(minutes=1), title="Older title from the PIM"), CTX, T0).changed


def test_price_in_policy_goes_straight_to_the_shop() -> None:
    s = apply_upsert(None, pim(), CTX, T0)
    [first] = outputs_of(s, UpdatePrice)
    assert first.reason == "in_policy" and first.price.amount == Decimal("40.00")
    moved = apply_upsert(s.state, pim(T0 + timedelta(minutes=1), price=eur("44.00")), CTX, T0)
    [cmd] = outputs_of(moved, UpdatePrice)
    assert cmd.previous_price is not None and cmd.previous_price.amount == Decimal("40.00")


def test_a_60_percent_cut_waits_for_approval_and_approval_sends_exactly_one_command() -> None:
    s = apply_upsert(None, pim(), CTX, T0).state
    cut = apply_upsert(s, pim(T0 + timedelta(minutes=1), price=eur("16.00")), CTX, T0)
    assert outputs_of(cut, UpdatePrice) == []
    [item] = outputs_of(cut, ReviewItem)
    assert item.kind == "price_change" and item.details["queue"] == "pricing"
    assert item.details["rule_ids"] == "price.change-beyond-threshold" and item.details["change_pct"] == "60.00"
    decision = WorkItemDecided(meta=meta("api", T0, "WorkItemDecided"), item_id=item.meta.event_id,
                               subject_type="product", subject_id="BELT-1", decision="approve", decided_by="alice",
                               decided_at=T0, note="clearance")
    approved = decide(cut.state, decision, CTX, T0)
    [cmd] = outputs_of(approved, UpdatePrice)
    assert cmd.reason == "approved" and cmd.approved_by == "alice" and cmd.work_item_id == item.meta.event_id
    assert cmd.price.amount == Decimal("16.00") and approved.state["pending_price"] is None
    assert not decide(approved.state, decision, CTX, T0).changed  # the same decision again: nothing


def test_rejected_and_unrelated_decisions() -> None:
    s = apply_upsert(None, pim(), CTX, T0).state
    cut = apply_upsert(s, pim(T0 + timedelta(minutes=1), price=eur("0")), CTX, T0)
    [item] = outputs_of(cut, ReviewItem)
    assert set(item.details["rule_ids"].split(",")) == {"price.zero", "price.change-beyond-threshold"}
    other = WorkItemDecided(meta=meta("api", T0, "WorkItemDecided"), item_id="nope", subject_type="product",
                            subject_id="BELT-1", decision="approve", decided_by="bob", decided_at=T0)
    assert not decide(cut.state, other, CTX, T0).changed
    rejected = decide(cut.state, other.model_copy(update={"item_id": item.meta.event_id, "decision": "reject"}),
                      CTX, T0)
    assert outputs_of(rejected, UpdatePrice) == [] and rejected.state["shop_price"]["amount"] == "40.00"


def test_below_cost_needs_approval() -> None:
    s = apply_upsert(None, pim(cost=eur("30.00")), CTX, T0).state
    below = apply_upsert(s, pim(T0 + timedelta(minutes=1), price=eur("29.00"), cost=eur("30.00")), CTX, T0)
    assert outputs_of(below, ReviewItem)[0].details["rule_ids"] == "price.below-cost"


def test_promotion_changes_the_price_at_its_start_and_restores_it_at_its_end() -> None:
    s = apply_upsert(None, pim(), CTX, T0).state
    start, end = T0 + timedelta(days=1), T0 + timedelta(days=3)
    promo = PromotionScheduled(meta=meta("pim", T0, "PromotionScheduled"), promotion_id="XMAS", sku="BELT-1",
                               price=eur("34.00"), starts_at=start, ends_at=end)
    scheduled = apply_promotion(s, promo, CTX, T0)
    assert scheduled.outputs == [] and scheduled.state["promotions"][0]["status"] == "scheduled"
    assert not due(scheduled.state, T0) and not advance(scheduled.state, T0).changed
    started = advance(scheduled.state, start)
    [on] = outputs_of(started, UpdatePrice)
    assert on.reason == "promotion_start" and on.price.amount == Decimal("34.00") and on.promotion_id == "XMAS"
    ended = advance(started.state, end)
    [off] = outputs_of(ended, UpdatePrice)
    assert off.reason == "promotion_end" and off.price.amount == Decimal("40.00")
    assert not advance(ended.state, end + timedelta(days=1)).changed


def test_a_deep_promotion_waits_for_approval() -> None:
    s = apply_upsert(None, pim(cost=eur("30.00")), CTX, T0).state
    promo = PromotionScheduled(meta=meta("pim", T0, "PromotionScheduled"), promotion_id="DEEP", sku="BELT-1",
                               price=eur("15.00"), starts_at=T0, ends_at=T0 + timedelta(days=1))
    pending = apply_promotion(s, promo, CTX, T0)
    [item] = outputs_of(pending, ReviewItem)
    assert set(item.details["rule_ids"].split(",")) == {"promotion.discount-beyond-limit",
                                                         "promotion.margin-below-floor"}
    assert not advance(pending.state, T0 + timedelta(hours=1)).changed  # not approved: never starts
    decision = WorkItemDecided(meta=meta("api", T0, "WorkItemDecided"), item_id=item.meta.event_id,
                               subject_type="product", subject_id="BELT-1", decision="approve", decided_by="alice",
                               decided_at=T0)
    approved = decide(pending.state, decision, CTX, T0)
    assert outputs_of(advance(approved.state, T0 + timedelta(hours=1)), UpdatePrice)[0].price.amount == Decimal("15")


def test_deleted_marks_the_product_and_keeps_its_log() -> None:
    s = apply_upsert(None, pim(), CTX, T0).state
    gone = ProductDeleted(meta=meta("pim", T0, "ProductDeleted"), sku="BELT-1", deleted_at=T0 + timedelta(1))
    out = apply_deleted(s, gone, CTX, T0)
    assert out.state["deleted"] and out.state["changes"][-1]["field"] == "deleted"
    assert not apply_deleted(out.state, gone, CTX, T0).changed


def test_a_product_item_lands_in_its_queue_with_the_product_as_subject() -> None:
    from shopstream.views.work_items import item_document

    s = apply_upsert(None, pim(), CTX, T0).state
    [item] = outputs_of(apply_upsert(s, pim(T0 + timedelta(minutes=1), price=eur("10.00")), CTX, T0), ReviewItem)
    doc = item_document(item)
    assert (doc["queue"], doc["subject_type"], doc["subject_id"]) == ("pricing", "product", "BELT-1")
    assert doc["rule_ids"] == ["price.change-beyond-threshold"] and doc["evidence"]["new_price"] == "10.00"


def test_the_worker_publishes_the_state_as_a_quality_document_and_counts_complete_channels() -> None:
    from shopstream.processors.catalog.worker import _channels, quality_record

    state = apply_upsert(None, pim(cost=eur("30.00")), CTX, T0).state
    record = quality_record(state, T0)
    doc = json.loads(record.document)
    assert record.sku == "BELT-1" and record.version == state["version"] and record.complete
    assert doc["shop_price"] == {"amount": "40.00", "currency": "EUR"} and doc["changes"][0]["field"] == "title"
    assert '"version":' not in record.document  # the view adds the one version the guard reads
    assert _channels(state) == {"marketplace": True}
    broken = apply_upsert(state, pim(T0 + timedelta(minutes=1), images=[
        ProductImage(url="https://x/s.gif", width=10, height=10, format="gif", alt="x")]), CTX, T0).state
    assert _channels(broken) == {"marketplace": False}
