"""Checks across products: unique slugs per channel, near-duplicate descriptions (one-permutation MinHash +
LSH), bundles of known SKUs with a sane price — each with passing and failing products — and the event clock
of the promotion timer."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shopstream.processors.catalog import clock, core
from shopstream.processors.catalog.checks import quality, run_checks
from shopstream.processors.catalog.crossref import CatalogIndex, components, minhash, shingles, similarity
from shopstream.processors.catalog.rules import CatalogRulesError, load_mastership, load_rules
from shopstream.schemas.models import (
    EventMeta,
    Money,
    ProductDeleted,
    ProductUpserted,
    PromotionScheduled,
    WorkItemDecided,
)
from tests.unit.test_catalog_checks import good

RULES = load_rules()
T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
TEXT = ("Warmer Pullover aus reiner Merinowolle, weich, atmungsaktiv und bei 30 Grad waschbar. Gestrickt in "
        "Portugal aus Garn von Schafen aus Neuseeland, mit Rippbündchen an Saum und Ärmeln und einem klassischen "
        "Rundhalsausschnitt, der unter jedem Hemd gut aussieht.")
OTHER = ("Robuste Wanderschuhe aus geöltem Nubukleder mit Vibram-Sohle und wasserdichter Membran, für lange "
         "Touren im Mittelgebirge und Schotterwege bei jedem Wetter, mit gepolstertem Schaft und Schnürhaken.")


def item(sku: str, product_id: str, **changes: Any) -> dict[str, Any]:
    product = copy.deepcopy(good())
    product.update(sku=sku, product_id=product_id, **changes)
    return product


def failures(product: dict[str, Any], index: CatalogIndex, check: str, channel: str = "ecommerce",
             locale: str = "de_DE") -> str:
    results = {r.check_id: r for r in run_checks(product, channel, locale, RULES, index, product["sku"])}
    return results[check].message


def test_shingles_and_signatures() -> None:
    assert shingles("<p>Ein  warmer Pullover</p> aus Wolle", 3) == {"ein warmer pullover", "warmer pullover aus",
                                                                    "pullover aus wolle"}
    assert shingles("kurz", 3) == {"kurz"} and shingles("", 3) == set()
    same, changed, other = (minhash(shingles(t, 3), 32) for t in (TEXT, TEXT.replace("Portugal", "Spanien"), OTHER))
    assert same == minhash(shingles(TEXT, 3), 32) and len(same) == 32  # deterministic: same on every worker
    assert similarity(same, same) == 1.0
    assert similarity(same, changed) >= 0.7  # three of 38 shingles changed: Jaccard 0.85
    assert similarity(same, other) <= 0.2
    assert similarity(same, minhash(set(), 32)) == 0.0


def test_a_slug_taken_by_another_product_fails_but_not_one_shared_by_variants() -> None:
    index = CatalogIndex(RULES)
    index.put("SWE-S", item("SWE-S", "p1"))
    assert failures(item("SWE-M", "p1"), index, "slug-unique") == ""  # a variant of the same product
    taken = failures(item("JKT-1", "p2"), index, "slug-unique")
    assert taken == "slug 'merino-pullover' is also the slug of SWE-S"
    assert failures(item("JKT-1", "p2", slug="merino-jacke"), index, "slug-unique") == ""
    index.put("SWE-S", item("SWE-S", "p1"), deleted=True)  # a deleted product frees its slug
    assert failures(item("JKT-1", "p2"), index, "slug-unique") == ""


def test_a_near_duplicate_description_names_the_other_product_and_a_different_one_passes() -> None:
    index = CatalogIndex(RULES)
    index.put("SWE-S", item("SWE-S", "p1", description=TEXT))
    copied = failures(item("JKT-1", "p2", slug="jacke", description=TEXT.replace("Portugal", "Spanien")), index,
                      "description-near-duplicate")
    assert copied.startswith("description: ") and copied.endswith("similar to SWE-S")
    assert failures(item("JKT-1", "p2", slug="jacke", description=OTHER), index, "description-near-duplicate") == ""
    assert failures(item("SWE-M", "p1", description=TEXT), index, "description-near-duplicate") == ""  # variant
    index.remove("SWE-S")
    assert failures(item("JKT-1", "p2", slug="jacke", description=TEXT), index, "description-near-duplicate") == ""


def bundle(components_text: str, price: str = "100.00") -> dict[str, Any]:
    product = item("SET-1", "set", slug="set-1", description=OTHER, price={"amount": price, "currency": "EUR"})
    product["attributes"] = [*product["attributes"], {"code": "components", "value": components_text}]
    return product


@pytest.mark.parametrize(("listed", "price", "expected"), [
    ("A:2, B", "100.00", ""),                       # 2 x 40 + 30 = 110: ratio 0.91
    ("A:2, B", "110.00", ""),                       # exactly the sum: allowed
    ("A:2, B", "120.00", "price 120.00 is 1.09 x the components' 110.00 (allowed 0.5-1.0)"),
    ("A:2, B", "50.00", "price 50.00 is 0.45 x the components' 110.00 (allowed 0.5-1.0)"),
    ("A, NOPE", "100.00", "NOPE: unknown SKU"),
    ("A, GONE", "100.00", "GONE: deleted"),
    ("A, FREE", "100.00", "FREE: no price"),
    ("A, USD", "100.00", "USD: priced in USD, the bundle in EUR"),
    ("A, SET-1", "100.00", "SET-1: a bundle cannot contain itself"),
    ("A:0", "100.00", "components: component A: quantity 0 below 1"),
    ("A,,B", "100.00", "components: empty component in 'A,,B'"),
])
def test_bundles_list_known_live_components_and_cost_a_sane_share_of_them(listed: str, price: str,
                                                                        expected: str) -> None:
    index = CatalogIndex(RULES)
    for sku, amount, currency in (("A", "40.00", "EUR"), ("B", "30.00", "EUR"), ("GONE", "5.00", "EUR"),
                                  ("USD", "5.00", "USD")):
        index.put(sku, {"sku": sku, "product_id": sku, "price": {"amount": amount, "currency": currency}},
                  deleted=sku == "GONE")
    index.put("FREE", {"sku": "FREE", "product_id": "FREE"})
    assert failures(bundle(listed, price), index, "bundle") == expected


def test_a_product_without_components_is_no_bundle_and_without_an_index_no_cross_check_runs() -> None:
    index = CatalogIndex(RULES)
    assert failures(item("SWE-S", "p1"), index, "bundle") == ""
    alone = {r.check_id for r in run_checks(item("SWE-S", "p1"), "ecommerce", "de_DE", RULES)}
    assert alone.isdisjoint({"slug-unique", "description-near-duplicate", "bundle"})
    assert components(None) is None and components(" A : 3 ,B") == [("A", 3), ("B", 1)]


def test_a_blocking_bundle_failure_makes_the_product_incomplete() -> None:
    index = CatalogIndex(RULES)
    doc = quality("SET-1", bundle("A, NOPE"), RULES, index)
    assert "bundle@ecommerce/de_DE" in doc["blocking_failed"] and doc["complete"] is False
    failed = doc["channels"]["ecommerce"]["de_DE"]["failed"]
    assert {"check": "bundle", "blocking": True, "message": "A: unknown SKU; NOPE: unknown SKU"} in failed


def test_invalid_near_duplicate_settings_are_refused(tmp_path: Any) -> None:
    text = (load_rules.__globals__["DEFAULT_RULES"]).read_text()
    bad = tmp_path / "rules.yaml"
    bad.write_text(text.replace("bands: 8", "bands: 5"))
    with pytest.raises(CatalogRulesError, match="bands 5 must divide permutations 32"):
        load_rules(bad)
    bad.write_text(text.replace("threshold: 0.8,", ""))
    with pytest.raises(CatalogRulesError, match="near_duplicate needs `attribute` and `threshold`"):
        load_rules(bad)


def _meta(kind: str, at: datetime) -> EventMeta:
    return EventMeta(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{at.isoformat()}")), event_type=kind,
                     occurred_at=at, recorded_at=at, source="pim")


def test_the_event_clock_reads_each_records_own_time_and_never_goes_back() -> None:
    upsert = ProductUpserted(meta=_meta("ProductUpserted", T0), sku="A", title="a",
                             updated_at=T0 + timedelta(minutes=1))
    deleted = ProductDeleted(meta=_meta("ProductDeleted", T0), sku="A", deleted_at=T0 + timedelta(minutes=2))
    promo = PromotionScheduled(meta=_meta("PromotionScheduled", T0 + timedelta(minutes=3)), sku="A",
                               promotion_id="P", price=Money(amount=Decimal(1), currency="EUR"),
                               starts_at=T0, ends_at=T0 + timedelta(hours=1))
    decided = WorkItemDecided(meta=_meta("WorkItemDecided", T0), item_id="i", subject_type="product",
                              subject_id="A", decision="approve", decided_by="x",
                              decided_at=T0 + timedelta(minutes=4))
    assert [clock.event_time(e) - T0 for e in (upsert, deleted, promo, decided)] == \
        [timedelta(minutes=m) for m in (1, 2, 3, 4)]
    first = clock.advanced(None, T0)
    assert first == {"at": T0.isoformat()} and clock.clock_at(first) == T0
    assert clock.advanced(first, T0) is None and clock.advanced(first, T0 - timedelta(seconds=1)) is None
    assert clock.advanced(first, T0 + timedelta(seconds=1)) == {"at": (T0 + timedelta(seconds=1)).isoformat()}
    assert clock.is_live(None) and clock.is_live(clock.LIVE_LAG_MS) and not clock.is_live(clock.LIVE_LAG_MS + 1)


def test_a_promotion_moves_at_event_time_the_same_way_however_late_it_is_replayed() -> None:
    """The timer's decisions depend on the records' times only: a history replayed a year later moves the
    promotion between the same two records, with identical commands."""
    ctx = core.Context(RULES, load_mastership())

    def history() -> list[tuple[datetime, Any]]:
        return [(T0, ProductUpserted(meta=_meta("ProductUpserted", T0), sku="A", title="a", updated_at=T0,
                                     price=Money(amount=Decimal("40.00"), currency="EUR"))),
                (T0, PromotionScheduled(meta=_meta("PromotionScheduled", T0), sku="A", promotion_id="P",
                                        price=Money(amount=Decimal("36.00"), currency="EUR"),
                                        starts_at=T0 + timedelta(hours=1), ends_at=T0 + timedelta(hours=2)))]

    def run(wall: datetime, later: list[datetime]) -> list[tuple[str, str]]:
        state: dict[str, Any] | None = None
        mark: dict[str, str] | None = None
        sent: list[tuple[str, str]] = []
        events = history() + [(at, ProductUpserted(meta=_meta("ProductUpserted", at), sku="A", updated_at=at,
                                                   title=f"t{at.hour}")) for at in later]
        for at, event in events:
            moved = clock.advanced(mark, clock.event_time(event))
            if moved is not None:
                mark = moved
                if state is not None and core.due(state, clock.clock_at(mark) or at):
                    outcome = core.advance(state, clock.clock_at(mark) or at)
                    state = outcome.state or state
                    sent += [(str(r.meta.event_id), r.reason) for _, _, r in outcome.outputs]
            apply = core.apply_upsert if isinstance(event, ProductUpserted) else core.apply_promotion
            outcome = apply(state, event, ctx, wall)  # type: ignore[operator]
            state = outcome.state or state
            sent += [(str(r.meta.event_id), getattr(r, "reason", "")) for _, _, r in outcome.outputs
                     if type(r).__name__ == "UpdatePrice"]
        return sent

    live = run(T0, [T0 + timedelta(minutes=90), T0 + timedelta(hours=3)])
    replay = run(T0 + timedelta(days=365), [T0 + timedelta(minutes=90), T0 + timedelta(hours=3)])
    assert [reason for _, reason in live] == ["in_policy", "promotion_start", "promotion_end"]
    assert live == replay  # the same commands with the same ids
    quiet = run(T0 + timedelta(days=365), [])  # no later record: event time never reached the start
    assert [reason for _, reason in quiet] == ["in_policy"]


def test_a_title_the_same_as_another_products_fails_and_a_different_one_passes() -> None:
    index = CatalogIndex(RULES)
    index.put("SWE-S", item("SWE-S", "p1"))
    same = failures(item("JKT-1", "p2", slug="jacke", title="<b>Merino-Pullover</b> mit  Rundhals"), index,
                    "title-duplicate")
    assert same == "name: 1.00 similar to SWE-S"
    assert failures(item("JKT-1", "p2", slug="jacke", title="Merino-Pullover mit V-Ausschnitt"), index,
                    "title-duplicate") == ""


def test_the_timer_visits_a_partition_at_the_earliest_start_or_end_of_its_promotions() -> None:
    from shopstream.processors.catalog.worker import _next_move

    def promo(status: str, starts: int, ends: int) -> dict[str, str]:
        return {"status": status, "starts_at": (T0 + timedelta(hours=starts)).isoformat(),
                "ends_at": (T0 + timedelta(hours=ends)).isoformat()}

    both = {"promotions": [promo("scheduled", 2, 5), promo("active", 0, 3), promo("pending", 1, 2),
                           promo("ended", 0, 1)]}
    assert _next_move(both) == T0 + timedelta(hours=2)  # the scheduled one's start, before the active one's end
    assert _next_move({"promotions": [promo("active", 0, 3)]}) == T0 + timedelta(hours=3)
    assert _next_move({"promotions": [promo("pending", 1, 2), promo("rejected", 1, 2)]}) is None
    assert _next_move(None) is None
