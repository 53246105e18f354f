"""Catalog checks as data: each check with a passing and a failing product, completeness monotone (property)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopstream.processors.catalog.checks import completeness, quality, run_checks, value
from shopstream.processors.catalog.rules import CatalogRulesError, load_mastership, load_rules

RULES = load_rules()
LONG_DE = "Warmer Pullover aus reiner Merinowolle, weich, atmungsaktiv und bei 30 Grad waschbar."
LONG_EN = "Warm sweater knitted from pure merino wool, soft, breathable and washable at 30 degrees."


def good() -> dict[str, Any]:
    """A product that passes every shipped check in every channel and locale."""
    return {
        "sku": "SWE-S", "title": "Merino-Pullover mit Rundhals", "description": LONG_DE, "brand": "Nordic Knit",
        "family": "apparel", "slug": "merino-pullover", "price": {"amount": "89.00", "currency": "EUR"},
        "attributes": [{"code": "name", "value": "Merino crew-neck sweater", "locale": "en_GB", "channel": None},
                       {"code": "description", "value": LONG_EN, "locale": "en_GB", "channel": None},
                       {"code": "material", "value": "wool", "locale": None, "channel": None},
                       {"code": "color", "value": "navy", "locale": None, "channel": None}],
        "images": [{"url": "https://x/a.jpg", "width": 1200, "height": 1500, "format": "jpeg", "alt": "front"}],
        "variants": [{"sku": "SWE-S", "options": {"Size": "S", "Color": "navy"},
                      "price": {"amount": "89.00", "currency": "EUR"}, "track_stock": True},
                     {"sku": "SWE-M", "options": {"Size": "M", "Color": "navy"},
                      "price": {"amount": "89.00", "currency": "EUR"}, "track_stock": True}],
    }


def failed(product: dict[str, Any], check: str, channel: str = "ecommerce", locale: str = "de_DE") -> str:
    results = {r.check_id: r for r in run_checks(product, channel, locale, RULES)}
    return results[check].message


def test_a_good_product_passes_everything_everywhere() -> None:
    doc = quality("SWE-S", good(), RULES)
    assert doc["complete"] and doc["score"] == 100 and doc["blocking_failed"] == []
    assert set(doc["channels"]) == {"ecommerce", "marketplace"}
    assert set(doc["channels"]["ecommerce"]) == {"de_DE", "en_GB"}


def test_required_attributes() -> None:
    product = good()
    product["attributes"] = [a for a in product["attributes"] if a["code"] != "material"]
    assert failed(good(), "required-attributes") == ""
    assert failed(product, "required-attributes") == "missing: material"
    assert completeness(product, "ecommerce", "de_DE", RULES) == (80, ["material"])


def test_title_and_description_length() -> None:
    assert failed({**good(), "title": "Pulli"}, "title-length") == "name: 5 characters, at least 10"
    assert "at least 50" in failed({**good(), "description": "<p>Kurz.</p>"}, "description-length")
    assert failed(good(), "meta-description-length") == ""  # optional when absent
    meta = [*good()["attributes"], {"code": "meta_description", "value": "zu kurz", "locale": "de_DE"}]
    assert "at least 50" in failed({**good(), "attributes": meta}, "meta-description-length")


@pytest.mark.parametrize(("image", "expected"), [
    ({"width": 400, "height": 400}, "400x400 below 800x800"),
    ({"format": "gif"}, "format gif not in"),
    ({"width": 3000, "height": 1000}, "aspect ratio 3.00"),
    ({"alt": ""}, "no alt text"),
    ({"width": None}, "size unknown"),
])
def test_image_standards(image: dict[str, Any], expected: str) -> None:
    product = good()
    product["images"] = [{**product["images"][0], **image}]
    assert expected in failed(product, "images")
    assert "0 image(s), at least 1" in failed({**good(), "images": []}, "images")


def test_variant_consistency() -> None:
    product = good()
    assert failed(product, "variants") == ""
    product["variants"][1]["options"] = {"Size": "S", "Color": "navy"}
    assert "SWE-M: same size/color as SWE-S" in failed(product, "variants")
    product["variants"][1] = {"sku": None, "options": {"Size": "L"}, "price": None, "track_stock": False}
    message = failed(product, "variants")
    assert "no color" in message and "no SKU" in message and "no price" in message and "stock not tracked" in message


def test_translations_present_and_not_copies() -> None:
    assert failed(good(), "translations", locale="en_GB") == ""
    assert failed(good(), "translations", locale="de_DE") == ""  # the source locale itself
    copied = good()
    copied["attributes"][0]["value"] = copied["title"]
    assert "name: en_GB text is the de_DE text" in failed(copied, "translations", locale="en_GB")
    missing = {**good(), "attributes": good()["attributes"][2:]}
    assert "description: no en_GB text" in failed(missing, "translations", locale="en_GB")


def test_slug_and_forbidden_terms() -> None:
    assert "not lower-case" in failed({**good(), "slug": "Merino_Pullover"}, "slug")
    assert failed({**good(), "slug": None}, "slug") == "no slug"
    assert "'gratis'" in failed({**good(), "description": LONG_DE + " Versand GRATIS!"}, "forbidden-terms")


def test_values_prefer_the_exact_locale_then_the_product_fields() -> None:
    product = good()
    assert value(product, "name", "ecommerce", "en_GB", RULES) == "Merino crew-neck sweater"
    assert value(product, "name", "ecommerce", "de_DE", RULES) == "Merino-Pullover mit Rundhals"
    assert value({"title": "x"}, "name", "ecommerce", "en_GB", RULES) is None  # no fallback to another language


ATTRS = ["name", "description", "brand", "material", "color"]


@given(present=st.sets(st.sampled_from(ATTRS)), extra=st.sampled_from(ATTRS))
def test_completeness_is_monotone_in_the_attributes_present(present: set[str], extra: str) -> None:
    def product(codes: set[str]) -> dict[str, Any]:
        return {"family": "apparel", "attributes": [{"code": c, "value": "v"} for c in codes]}

    for channel, locale in [("ecommerce", "de_DE"), ("ecommerce", "en_GB")]:
        before, _ = completeness(product(present), channel, locale, RULES)
        after, _ = completeness(product(present | {extra}), channel, locale, RULES)
        assert after >= before
    assert completeness(product(set(ATTRS)), "ecommerce", "de_DE", RULES)[0] == 100


def test_invalid_rules_files_are_refused(tmp_path: Any) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text("version: x\nchannels: {web: {locales: [de_DE], source_locale: en_GB}}\nfamilies: {default: {}}\n"
                   "checks: [{id: a, kind: nope}]\n")
    with pytest.raises(CatalogRulesError, match=r"source_locale|kind"):
        load_rules(bad)
    bad.write_text("version: x\nsources: [pim]\nmasters: {title: [shop]}\n")
    with pytest.raises(CatalogRulesError, match="unknown source"):
        load_mastership(bad)


def test_suggestions_name_a_text_in_the_wrong_language_and_a_contradiction() -> None:
    from shopstream.processors.catalog.suggestions import guess_language, suggestions

    assert guess_language(LONG_DE, RULES.suggestions.stopwords, 3)[0] == "de"
    assert guess_language("Pullover", RULES.suggestions.stopwords, 3) == (None, 0)
    assert suggestions(good(), RULES) == []
    product = good()
    product["attributes"][1]["value"] = LONG_DE.replace("Merinowolle", "Merinowolle und der Baumwolle") + " mit dem"
    product["attributes"][2]["value"] = "wool"
    kinds = {(s["kind"], s["locale"]) for s in suggestions(product, RULES)}
    assert ("language", "en_GB") in kinds
    contradiction = good()
    contradiction["description"] = LONG_DE.replace("reiner Merinowolle", "Baumwolle")
    [hint] = [s for s in suggestions(contradiction, RULES) if s["kind"] == "contradiction"]
    assert hint["evidence"] == "text names baumwolle; material is wool"
    assert quality("SWE-S", contradiction, RULES)["complete"]  # a suggestion never blocks
