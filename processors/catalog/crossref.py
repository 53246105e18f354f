"""Checks across products (pure): unique slugs per channel, near-duplicate texts, bundles of known SKUs.

They need every other product, so they read a `CatalogIndex`: per SKU what the cross-product checks
compare (slug and text signature per channel and locale, price, components, deleted), kept by the
catalog worker over the SKUs it owns (`worker.py`: rebuilt on restore, updated as states change).
Without an index (a lone product) these checks are not run at all, never passed by default.

Two SKUs are one product when they carry the same non-empty `product_id` (a shop's variants share the
handle and the description): such SKUs never count against each other.

- `unique_slug`: no other product has the same slug in the channel and locale (the holders are named).
- `near_duplicate`: the attribute's text (HTML stripped, lower case) is cut into `shingle_words`-word
  shingles; a one-permutation MinHash signature of `permutations` bins (`minhash`) estimates the Jaccard
  similarity of two shingle sets (the share of equal bins), and LSH — `bands` bands of `permutations / bands` rows,
  two texts are candidates when one band is equal — finds the candidates without comparing every pair.
  A candidate at or above the check's `threshold` is a finding, with the other SKU and the similarity
  as evidence. Parameters in `topology/rules/catalog.yaml` (`near_duplicates`; the check's
  `threshold`). With 8 bands of 4 rows a pair at similarity 0.8 is a candidate with probability
  1 - (1 - 0.8^4)^8 ≈ 0.98, one at 0.5 with 0.40 (and then fails the threshold).
- `bundle`: a product whose `attribute` (default `components`) lists SKUs — `SKU` or `SKU:quantity`,
  comma-separated — is a bundle: each component is a known, not deleted SKU other than the bundle, and
  the bundle's price is between `min_price_ratio` and `max_price_ratio` times the sum of its components'
  prices (same currency; a component without a price fails the check, naming it).

A finding reflects the index when the product was checked: a product that takes an existing slug is
flagged, the first holder is not (until its own next change); a component that arrives after its bundle
clears the bundle's finding at the bundle's next change.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .checks import plain_text, targets, value
from .rules import CatalogRules, Check, NearDuplicates

_WORD = re.compile(r"\w+", re.UNICODE)
_MASK = (1 << 64) - 1
_DENSIFY = 0x9E3779B97F4A7C15  # an odd constant: a borrowed value differs by how far it was borrowed


def shingles(text: str, words: int) -> set[str]:
    """The text's `words`-word shingles (HTML stripped, lower case); a shorter text is one shingle."""
    tokens = _WORD.findall(plain_text(text).lower())
    if len(tokens) <= words:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i:i + words]) for i in range(len(tokens) - words + 1)}


def minhash(items: set[str], size: int) -> array[int]:
    """The one-permutation MinHash signature of a shingle set (empty set: empty signature).

    Each shingle is hashed once (blake2b, 64 bits); the hash's residue mod `size` picks a bin and the
    bin keeps its smallest quotient. An empty bin takes the value of the next filled bin to its right
    (circularly) plus a distance term, so two equal sets still fill equal bins (Shrivastava & Li's
    densification). Cost: one hash per shingle, not one per shingle and permutation."""
    if not items:
        return array("Q")
    empty = _MASK
    bins = [empty] * size
    for item in items:
        h = int.from_bytes(hashlib.blake2b(item.encode(), digest_size=8).digest(), "big")
        slot, rest = h % size, h // size
        if rest < bins[slot]:
            bins[slot] = rest
    if empty in bins:  # right to left, twice round: each empty bin finds its next filled one
        out, nearest = list(bins), None
        for i in range(2 * size - 1, -1, -1):
            slot = i % size
            if bins[slot] != empty:
                nearest = i
            elif nearest is not None and i < size:
                out[slot] = (bins[nearest % size] + (nearest - i) * _DENSIFY) & _MASK
        bins = out
    return array("Q", bins)


def similarity(first: array[int], second: array[int]) -> float:
    """The estimated Jaccard similarity of two signatures (0 when either is empty)."""
    if not first or len(first) != len(second):
        return 0.0
    return sum(x == y for x, y in zip(first, second, strict=True)) / len(first)


def bands(signature: array[int], count: int) -> list[tuple[int, bytes]]:
    """The LSH band keys of a signature."""
    if not signature:
        return []
    rows = len(signature) // count
    return [(i, signature[i * rows:(i + 1) * rows].tobytes()) for i in range(count)]


def components(text: str | None) -> list[tuple[str, int]] | None:
    """`SKU[:quantity], ...` as (SKU, quantity) pairs; None: no list; ValueError: a bad entry."""
    if not text or not text.strip():
        return None
    found = []
    for part in text.split(","):
        sku, _, qty = part.strip().partition(":")
        if not sku.strip():
            raise ValueError(f"empty component in {text!r}")
        quantity = int(qty) if qty.strip() else 1
        if quantity < 1:
            raise ValueError(f"component {sku.strip()}: quantity {quantity} below 1")
        found.append((sku.strip(), quantity))
    return found


@dataclass
class Entry:
    """What the index keeps of one SKU."""

    product_id: str | None
    deleted: bool
    price: tuple[Decimal, str] | None
    slugs: dict[tuple[str, str], str] = field(default_factory=dict)  # (channel, locale) -> slug
    signatures: dict[tuple[str, str, str], array[int]] = field(default_factory=dict)  # (attribute, channel, locale)


class CatalogIndex:
    """The products the cross-product checks compare with (mutable; the worker keeps it current)."""

    def __init__(self, rules: CatalogRules) -> None:
        self.rules = rules
        self.config: NearDuplicates = rules.near_duplicates
        self._text_attributes = sorted({c.attribute for c in rules.checks
                                        if c.kind == "near_duplicate" and c.attribute})
        self.entries: dict[str, Entry] = {}
        self._slugs: dict[tuple[str, str, str], set[str]] = {}  # (channel, locale, slug) -> SKUs
        self._bands: dict[tuple[str, str, str, int, bytes], set[str]] = {}  # (attr, channel, locale, band, key)
        self._last: tuple[str, Mapping[str, Any], Entry] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def entry_of(self, sku: str, product: Mapping[str, Any], deleted: bool = False) -> Entry:
        """What the index would keep of the product (also what a check compares with).

        The last one computed is remembered with the product object it came from: the worker checks a
        product and then puts the same (unchanged) dict, which then hashes its texts once, not twice."""
        last = self._last
        if last is not None and last[0] == sku and last[1] is product and last[2].deleted == deleted:
            return last[2]
        entry = self._compute(product, deleted)
        self._last = (sku, product, entry)
        return entry

    def _compute(self, product: Mapping[str, Any], deleted: bool) -> Entry:
        entry = Entry(product.get("product_id") or None, deleted, _price(product.get("price")))
        cache: dict[str, array[int]] = {}
        for channel, locale in targets(product, self.rules):
            slug = value(product, "slug", channel, locale, self.rules)
            if slug:
                entry.slugs[(channel, locale)] = slug
            for attribute in self._text_attributes:
                text = value(product, attribute, channel, locale, self.rules)
                if text:
                    if text not in cache:
                        cache[text] = minhash(shingles(text, self.config.shingle_words), self.config.permutations)
                    entry.signatures[(attribute, channel, locale)] = cache[text]
        return entry

    def put(self, sku: str, product: Mapping[str, Any], deleted: bool = False) -> None:
        """Add or replace the SKU (a deleted one is kept: a bundle's component must not be deleted)."""
        self.remove(sku)
        entry = self.entry_of(sku, product, deleted)
        self.entries[sku] = entry
        if deleted:
            return
        for (channel, locale), slug in entry.slugs.items():
            self._slugs.setdefault((channel, locale, slug), set()).add(sku)
        for (attribute, channel, locale), signature in entry.signatures.items():
            for band in bands(signature, self.config.bands):
                self._bands.setdefault((attribute, channel, locale, *band), set()).add(sku)

    def remove(self, sku: str) -> None:
        """Forget the SKU."""
        entry = self.entries.pop(sku, None)
        if entry is None or entry.deleted:
            return
        for (channel, locale), slug in entry.slugs.items():
            _discard(self._slugs, (channel, locale, slug), sku)
        for (attribute, channel, locale), signature in entry.signatures.items():
            for band in bands(signature, self.config.bands):
                _discard(self._bands, (attribute, channel, locale, *band), sku)

    def _others(self, sku: str, product_id: str | None, skus: set[str]) -> list[str]:
        return sorted(s for s in skus if s != sku and not (product_id and self.entries[s].product_id == product_id))

    def same_slug(self, sku: str, entry: Entry, channel: str, locale: str) -> list[str]:
        """Other products' SKUs with the entry's slug in the channel and locale."""
        slug = entry.slugs.get((channel, locale))
        return self._others(sku, entry.product_id, self._slugs.get((channel, locale, slug), set())) if slug else []

    def near(self, sku: str, entry: Entry, attribute: str, channel: str, locale: str,
             threshold: float) -> list[tuple[str, float]]:
        """Other products whose text is at least `threshold` similar, most similar first."""
        signature = entry.signatures.get((attribute, channel, locale))
        if not signature:
            return []
        candidates: set[str] = set()
        for band in bands(signature, self.config.bands):
            candidates |= self._bands.get((attribute, channel, locale, *band), set())
        found = []
        for other in self._others(sku, entry.product_id, candidates):
            score = similarity(signature, self.entries[other].signatures.get((attribute, channel, locale),
                                                                             array("Q")))
            if score >= threshold:
                found.append((other, score))
        return sorted(found, key=lambda pair: (-pair[1], pair[0]))


def _discard(index: dict[Any, set[str]], key: Any, sku: str) -> None:
    holders = index.get(key)
    if holders is not None:
        holders.discard(sku)
        if not holders:
            del index[key]


def _price(price: Any) -> tuple[Decimal, str] | None:
    if not isinstance(price, Mapping):
        return None
    try:
        return Decimal(str(price["amount"])), str(price["currency"])
    except (KeyError, InvalidOperation):
        return None


def _unique_slug(check: Check, sku: str, entry: Entry, channel: str, locale: str, product: Mapping[str, Any],
                 index: CatalogIndex) -> str:
    holders = index.same_slug(sku, entry, channel, locale)
    if not holders:
        return ""
    shown = ", ".join(holders[:5]) + (f" and {len(holders) - 5} more" if len(holders) > 5 else "")
    return f"slug {entry.slugs[(channel, locale)]!r} is also the slug of {shown}"


def _near_duplicate(check: Check, sku: str, entry: Entry, channel: str, locale: str, product: Mapping[str, Any],
                    index: CatalogIndex) -> str:
    assert check.attribute is not None and check.threshold is not None
    found = index.near(sku, entry, check.attribute, channel, locale, check.threshold)
    return "; ".join(f"{check.attribute}: {score:.2f} similar to {other}" for other, score in found[:3])


def _bundle(check: Check, sku: str, entry: Entry, channel: str, locale: str, product: Mapping[str, Any],
            index: CatalogIndex) -> str:
    try:
        parts = components(value(product, check.attribute or "components", channel, locale, index.rules))
    except ValueError as exc:
        return f"components: {exc}"
    if parts is None:
        return ""  # not a bundle
    problems: list[str] = []
    total, currency, priced = Decimal(0), entry.price[1] if entry.price else None, True
    for component, quantity in parts:
        other = index.entries.get(component)
        if component == sku:
            problems.append(f"{component}: a bundle cannot contain itself")
            priced = False
        elif other is None:
            problems.append(f"{component}: unknown SKU")
            priced = False
        elif other.deleted:
            problems.append(f"{component}: deleted")
            priced = False
        elif other.price is None:
            problems.append(f"{component}: no price")
            priced = False
        elif currency is not None and other.price[1] != currency:
            problems.append(f"{component}: priced in {other.price[1]}, the bundle in {currency}")
            priced = False
        else:
            total += other.price[0] * quantity
    if entry.price is None:
        problems.append("the bundle has no price")
    elif priced and total > 0:
        ratio = entry.price[0] / total
        low, high = check.min_price_ratio, check.max_price_ratio
        if (low is not None and ratio < low) or (high is not None and ratio > high):
            problems.append(f"price {entry.price[0]} is {ratio:.2f} x the components' {total} "
                            f"(allowed {low if low is not None else 0}-{high if high is not None else 'any'})")
    return "; ".join(problems)


CROSS_CHECKS = {"unique_slug": _unique_slug, "near_duplicate": _near_duplicate, "bundle": _bundle}


def cross_results(check: Check, sku: str, entry: Entry, channel: str, locale: str, product: Mapping[str, Any],
                  index: CatalogIndex) -> str:
    """The failure message of one cross-product check ('' when it passes)."""
    return CROSS_CHECKS[check.kind](check, sku, entry, channel, locale, product, index)
