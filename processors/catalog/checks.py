"""Product data quality: the checks of `topology/rules/catalog.yaml` per channel and locale, and the scores (pure).

A product is a plain dict (the catalog state's `product`, see `state.py`). Values are read per channel
and locale (`value`): an attribute for exactly that locale and channel wins, then that locale for
every channel, then every locale for that channel, then the product's own fields (`title` for `name`,
`description`, `brand`, `category`, `slug`, `barcode`) — which count as the source locale's text for
localizable attributes, so a shop product in one language is incomplete in the channel's other locales.

Per channel and locale the quality document names every failed check (id, blocking, message) and two
figures: **completeness** (Akeneo's model: required attributes of the family that are filled, in %, so
adding an attribute never lowers it) and **score** (checks passed, in %); `suggestions` are content hints
(`suggestions.py`), never blocking. The checks across products (unique slugs, near-duplicate texts,
bundles) are in `crossref.py` and run only when the caller passes the index of the other products.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .rules import CROSS_KINDS, CatalogRules, Check

if TYPE_CHECKING:
    from .crossref import CatalogIndex, Entry

_FIELD_OF = {"name": "title", "title": "title", "description": "description", "brand": "brand",
             "category": "category", "slug": "slug", "barcode": "barcode", "ean": "barcode", "family": "family"}
_TAGS = re.compile(r"<[^>]+>")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SPACE = re.compile(r"\s+")

Product = Mapping[str, Any]


@dataclass(frozen=True)
class Result:
    """One check's outcome for one channel and locale."""

    check_id: str
    passed: bool
    blocking: bool
    message: str = ""


def plain_text(text: str) -> str:
    """Text without HTML tags and with collapsed whitespace (what a length or term check reads)."""
    return _SPACE.sub(" ", _TAGS.sub(" ", text)).strip()


def value(product: Product, code: str, channel: str, locale: str, rules: CatalogRules) -> str | None:
    """The attribute `code` of the product for `channel` and `locale` (see the module docstring); None: absent."""
    best: tuple[int, str] | None = None
    for attr in product.get("attributes") or ():
        if attr.get("code") != code or attr.get("value") in (None, ""):
            continue
        loc, chan = attr.get("locale"), attr.get("channel")
        if loc not in (None, locale) or chan not in (None, channel):
            continue
        rank = (0 if loc == locale else 2) + (0 if chan == channel else 1)
        if best is None or rank < best[0]:
            best = (rank, str(attr["value"]))
    if best is not None:
        return best[1]
    field = _FIELD_OF.get(code)
    if field is None or (code in rules.localizable and locale != rules.channels[channel].source_locale):
        return None
    found = product.get(field)
    return str(found) if found not in (None, "") else None


def explicit(product: Product, code: str, channel: str, locale: str) -> str | None:
    """A value given for exactly this locale (for the translation check); None when only a fallback exists."""
    for attr in product.get("attributes") or ():
        if attr.get("code") == code and attr.get("locale") == locale and attr.get("channel") in (None, channel) \
                and attr.get("value") not in (None, ""):
            return str(attr["value"])
    return None


def completeness(product: Product, channel: str, locale: str, rules: CatalogRules) -> tuple[int, list[str]]:
    """(percent of the family's required attributes filled, the missing ones)."""
    required = rules.family(product.get("family")).required
    missing = [code for code in required if value(product, code, channel, locale, rules) is None]
    if not required:
        return 100, []
    return (len(required) - len(missing)) * 100 // len(required), missing


def _required(check: Check, product: Product, channel: str, locale: str, rules: CatalogRules) -> str:
    _, missing = completeness(product, channel, locale, rules)
    return f"missing: {', '.join(missing)}" if missing else ""


def _text_length(check: Check, product: Product, channel: str, locale: str, rules: CatalogRules) -> str:
    assert check.attribute is not None
    text = value(product, check.attribute, channel, locale, rules)
    if text is None:
        return "" if check.optional else f"{check.attribute}: missing"
    length = len(plain_text(text))
    if check.min is not None and length < check.min:
        return f"{check.attribute}: {length} characters, at least {check.min}"
    if check.max is not None and length > check.max:
        return f"{check.attribute}: {length} characters, at most {check.max}"
    return ""


def _images(check: Check, product: Product, channel: str, locale: str, rules: CatalogRules) -> str:
    images = list(product.get("images") or ())
    problems = []
    for i, image in enumerate(images, start=1):
        width, height, fmt = image.get("width"), image.get("height"), image.get("format")
        if check.formats and fmt not in check.formats:
            problems.append(f"image {i}: format {fmt or 'unknown'} not in {', '.join(check.formats)}")
        if width is None or height is None:
            problems.append(f"image {i}: size unknown")
        else:
            if width < check.min_width or height < check.min_height:
                problems.append(f"image {i}: {width}x{height} below {check.min_width}x{check.min_height}")
            ratio = width / height if height else 0.0
            if (check.min_aspect and ratio < check.min_aspect) or (check.max_aspect and ratio > check.max_aspect):
                problems.append(f"image {i}: aspect ratio {ratio:.2f} outside {check.min_aspect}-{check.max_aspect}")
        if check.alt_required and not (image.get("alt") or "").strip():
            problems.append(f"image {i}: no alt text")
    if len(images) < check.min_count:
        problems.insert(0, f"{len(images)} image(s), at least {check.min_count}")
    return "; ".join(problems)


def _variants(check: Check, product: Product, channel: str, locale: str, rules: CatalogRules) -> str:
    axes = [a.lower() for a in rules.family(product.get("family")).axes]
    variants = list(product.get("variants") or ()) or [
        {"sku": product.get("sku"), "options": product.get("options") or {}, "price": product.get("price"),
         "track_stock": True}]
    problems: list[str] = []
    seen: dict[tuple[Any, ...], str] = {}
    for i, v in enumerate(variants, start=1):
        label = v.get("sku") or f"variant {i}"
        options = {str(k).lower(): val for k, val in (v.get("options") or {}).items()}
        missing = [a for a in axes if not options.get(a)]
        if missing:
            problems.append(f"{label}: no {', '.join(missing)}")
        if not v.get("sku"):
            problems.append(f"variant {i}: no SKU")
        if v.get("price") is None:
            problems.append(f"{label}: no price")
        if not v.get("track_stock", True):
            problems.append(f"{label}: stock not tracked")
        combo = tuple(options.get(a) for a in axes)
        if axes and not missing and combo in seen:
            problems.append(f"{label}: same {'/'.join(axes)} as {seen[combo]}")
        seen.setdefault(combo, label)
    return "; ".join(problems)


def _translations(check: Check, product: Product, channel: str, locale: str, rules: CatalogRules) -> str:
    source = rules.channels[channel].source_locale
    if locale == source:
        return ""
    problems = []
    for code in check.attributes:
        translated = explicit(product, code, channel, locale)
        original = value(product, code, channel, source, rules)
        if translated is None:
            problems.append(f"{code}: no {locale} text")
        elif original is not None and plain_text(translated).lower() == plain_text(original).lower():
            problems.append(f"{code}: {locale} text is the {source} text")
    return "; ".join(problems)


def _slug(check: Check, product: Product, channel: str, locale: str, rules: CatalogRules) -> str:
    slug = value(product, "slug", channel, locale, rules)
    if slug is None:
        return "no slug"
    return "" if _SLUG.match(slug) else f"slug {slug!r} is not lower-case letters, digits and single hyphens"


def _forbidden(check: Check, product: Product, channel: str, locale: str, rules: CatalogRules) -> str:
    found: list[str] = []
    for code in check.attributes or ["name", "description"]:
        text = plain_text(value(product, code, channel, locale, rules) or "").lower()
        found.extend(f"{code}: {term!r}" for term in check.terms if term.lower() in text)
    return "; ".join(found)


CHECKS: dict[str, Callable[[Check, Product, str, str, CatalogRules], str]] = {
    "required_attributes": _required, "text_length": _text_length, "images": _images,
    "variant_consistency": _variants, "translations": _translations, "slug": _slug, "forbidden_terms": _forbidden,
}


def run_checks(product: Product, channel: str, locale: str, rules: CatalogRules,
               index: CatalogIndex | None = None, sku: str = "", entry: Entry | None = None) -> list[Result]:
    """Every check of the rules for one channel and locale, in file order; the cross-product ones
    (`crossref.py`) only with an index of the other products (`entry`: the product as the index sees it,
    computed here when not given)."""
    from .crossref import cross_results  # it reads values through this module

    if index is not None and entry is None:
        entry = index.entry_of(sku, product)
    results = []
    for check in rules.checks:
        if check.kind in CROSS_KINDS:
            if index is None or entry is None:
                continue
            message = cross_results(check, sku, entry, channel, locale, product, index)
        else:
            message = CHECKS[check.kind](check, product, channel, locale, rules)
        results.append(Result(check.id, not message, check.blocking, message))
    return results


def targets(product: Product, rules: CatalogRules) -> list[tuple[str, str]]:
    """The (channel, locale) pairs a product is checked for: its channels (all when it names none)."""
    named = [c for c in product.get("channels") or () if c in rules.channels]
    return [(c, loc) for c in (named or list(rules.channels)) for loc in rules.channels[c].locales]


def quality(sku: str, product: Product, rules: CatalogRules, index: CatalogIndex | None = None) -> dict[str, Any]:
    """The quality document of a product: per channel and locale completeness, score and failed checks
    (with `index`, the cross-product checks too)."""
    channels: dict[str, dict[str, Any]] = {}
    blocking: set[str] = set()
    scores = []
    entry = index.entry_of(sku, product) if index is not None else None  # once: it hashes every text
    for channel, locale in targets(product, rules):
        results = run_checks(product, channel, locale, rules, index, sku, entry)
        pct, missing = completeness(product, channel, locale, rules)
        score = sum(r.passed for r in results) * 100 // len(results) if results else 100
        scores.append(score)
        failed = [{"check": r.check_id, "blocking": r.blocking, "message": r.message} for r in results if not r.passed]
        blocking.update(f"{r.check_id}@{channel}/{locale}" for r in results if not r.passed and r.blocking)
        channels.setdefault(channel, {})[locale] = {"completeness": pct, "missing": missing, "score": score,
                                                    "failed": failed}
    from .suggestions import suggestions  # it reads values through this module

    return {"sku": sku, "family": product.get("family"), "rules_version": rules.version,
            "score": min(scores) if scores else 100, "complete": not blocking,
            "blocking_failed": sorted(blocking), "channels": channels, "suggestions": suggestions(product, rules)}
