"""The catalog rules file (`topology/rules/catalog.yaml`) and the mastership file (`topology/catalog.yaml`), validated.

Pure but for reading the files. Unknown keys, unknown check kinds, duplicate check ids, a channel whose
source locale is not one of its locales, bad bounds: `CatalogRulesError` naming the file and the field.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopstream.yamlmodel import load_yaml_model

TOPOLOGY = Path(__file__).resolve().parents[2] / "topology"
DEFAULT_RULES = TOPOLOGY / "rules" / "catalog.yaml"
DEFAULT_MASTERSHIP = TOPOLOGY / "catalog.yaml"

CheckKind = Literal["required_attributes", "text_length", "images", "variant_consistency", "translations", "slug",
                    "forbidden_terms", "unique_slug", "near_duplicate", "bundle"]
#: The kinds that compare a product with the others (`crossref.py`).
CROSS_KINDS = frozenset({"unique_slug", "near_duplicate", "bundle"})


class CatalogRulesError(ValueError):
    """A catalog rules or mastership file is invalid (the message names file and field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channel(_Strict):
    locales: list[str] = Field(min_length=1)
    source_locale: str

    @model_validator(mode="after")
    def _source_in_locales(self) -> Channel:
        if self.source_locale not in self.locales:
            raise ValueError(f"source_locale {self.source_locale!r} is not one of locales {self.locales}")
        return self


class Family(_Strict):
    required: list[str] = Field(default_factory=list)
    axes: list[str] = Field(default_factory=list)


class Check(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    kind: CheckKind
    description: str = ""
    blocking: bool = False
    attribute: str | None = None
    attributes: list[str] = Field(default_factory=list)
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=1)
    optional: bool = False  # text_length: an absent value passes
    min_count: int = Field(default=0, ge=0)
    min_width: int = Field(default=0, ge=0)
    min_height: int = Field(default=0, ge=0)
    formats: list[str] = Field(default_factory=list)
    min_aspect: float | None = Field(default=None, gt=0)
    max_aspect: float | None = Field(default=None, gt=0)
    alt_required: bool = False
    terms: list[str] = Field(default_factory=list)
    threshold: float | None = Field(default=None, gt=0, le=1)  # near_duplicate: estimated Jaccard similarity
    min_price_ratio: Decimal | None = Field(default=None, ge=0)  # bundle: price / sum of the components' prices
    max_price_ratio: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _fits_kind(self) -> Check:
        if self.kind == "near_duplicate" and (not self.attribute or self.threshold is None):
            raise ValueError("near_duplicate needs `attribute` and `threshold`")
        if self.min_price_ratio is not None and self.max_price_ratio is not None \
                and self.min_price_ratio > self.max_price_ratio:
            raise ValueError(f"min_price_ratio {self.min_price_ratio} > max_price_ratio {self.max_price_ratio}")
        if self.kind == "text_length" and not self.attribute:
            raise ValueError("text_length needs `attribute`")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        if self.kind == "forbidden_terms" and not self.terms:
            raise ValueError("forbidden_terms needs `terms`")
        return self


class Pricing(_Strict):
    max_change_pct: Decimal = Field(default=Decimal(30), gt=0)
    below_cost: bool = True
    zero_price: bool = True
    promotion_min_margin_pct: Decimal = Decimal(0)
    promotion_max_discount_pct: Decimal = Field(default=Decimal(100), gt=0, le=100)


class Suggestions(_Strict):
    """Content QA hints (suggestions only): stop words per language, attribute vocabularies."""

    text_attributes: list[str] = Field(default_factory=lambda: ["name", "description"])
    min_hits: int = Field(default=3, ge=1)
    stopwords: dict[str, list[str]] = Field(default_factory=dict)
    vocabulary: dict[str, list[str]] = Field(default_factory=dict)


class NearDuplicates(_Strict):
    """MinHash/LSH parameters of the near-duplicate checks (`crossref.py`)."""

    shingle_words: int = Field(default=3, ge=1, le=10)
    permutations: int = Field(default=32, ge=1, le=256)
    bands: int = Field(default=8, ge=1)

    @model_validator(mode="after")
    def _bands_divide(self) -> NearDuplicates:
        if self.permutations % self.bands:
            raise ValueError(f"bands {self.bands} must divide permutations {self.permutations}")
        return self


class CatalogRules(_Strict):
    """The whole rules file."""

    version: str = Field(min_length=1)
    channels: dict[str, Channel] = Field(min_length=1)
    localizable: list[str] = Field(default_factory=list)
    families: dict[str, Family] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)
    pricing: Pricing = Pricing()
    suggestions: Suggestions = Suggestions()
    near_duplicates: NearDuplicates = NearDuplicates()

    @model_validator(mode="after")
    def _unique_ids(self) -> CatalogRules:
        ids = [c.id for c in self.checks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate check ids: {', '.join(duplicates)}")
        if "default" not in self.families:
            raise ValueError("families: a `default` family is required (products without or with an unknown family)")
        return self

    def family(self, name: str | None) -> Family:
        """The family's requirements (the default family for none or an unknown one)."""
        return self.families.get(name or "", self.families["default"])


class Mastership(_Strict):
    """Which source may change which product field (`topology/catalog.yaml`)."""

    version: str = Field(min_length=1)
    sources: list[str] = Field(min_length=1)
    masters: dict[str, list[str]] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_sources(self) -> Mastership:
        known = set(self.sources)
        for field, sources in self.masters.items():
            unknown = sorted(set(sources) - known)
            if unknown:
                raise ValueError(f"masters.{field}: unknown source(s) {', '.join(unknown)} (known: {sorted(known)})")
        return self

    def source_of(self, wire_source: str) -> str:
        """The mastership name of an event's `meta.source`."""
        return self.aliases.get(wire_source, wire_source)

    def may_write(self, field: str, source: str, current_writer: str | None) -> bool:
        """True when `source` may change `field`: a master, or anyone while no master has written it."""
        masters = self.masters.get(field)
        if not masters or source in masters:
            return True
        return current_writer is None or (current_writer not in masters and current_writer == source)


def load_rules(path: Path | str | None = None) -> CatalogRules:
    """The catalog rules file (default: the shipped one)."""
    return load_yaml_model(path or DEFAULT_RULES, CatalogRules, CatalogRulesError, "catalog rules")


def load_mastership(path: Path | str | None = None) -> Mastership:
    """The mastership file (default: the shipped one)."""
    return load_yaml_model(path or DEFAULT_MASTERSHIP, Mastership, CatalogRulesError, "catalog mastership")
