"""Content QA suggestions (pure): hints for a person, never a change and never blocking.

- `language`: a text field whose words look like another language than its locale's (a German
  description under `en_GB`). The guess counts stop words per language (`suggestions.stopwords` in the
  rules file); it speaks only with at least `min_hits` stop words and a lead of twice the runner-up.
- `contradiction`: the text names a value of an attribute (`suggestions.vocabulary`: attribute → known
  values, e.g. colours, materials) that differs from the attribute's own value (the text says "cotton",
  `material` says wool) — and does not name the attribute's value itself.
Each suggestion carries its evidence (the words seen). Near-duplicate descriptions and duplicate titles
across products are checks (non-blocking, with the other SKU as evidence): `crossref.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .checks import plain_text, targets, value
from .rules import CatalogRules

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def guess_language(text: str, stopwords: Mapping[str, list[str]], min_hits: int) -> tuple[str | None, int]:
    """(the language the text's stop words point to or None, its hit count)."""
    words = [w.lower() for w in _WORD.findall(text)]
    counts = {lang: sum(1 for w in words if w in set(stops)) for lang, stops in stopwords.items()}
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] < min_hits:
        return None, 0
    if len(ranked) > 1 and ranked[0][1] < 2 * ranked[1][1]:
        return None, ranked[0][1]
    return ranked[0][0], ranked[0][1]


def suggestions(product: Mapping[str, Any], rules: CatalogRules) -> list[dict[str, str]]:
    """Every suggestion for the product over its channels and locales (deduplicated)."""
    config = rules.suggestions
    found: dict[tuple[str, str, str], dict[str, str]] = {}
    for channel, locale in targets(product, rules):
        language = locale.split("_", 1)[0].lower()
        for code in config.text_attributes:
            text = value(product, code, channel, locale, rules)
            if not text:
                continue
            plain = plain_text(text)
            guessed, hits = guess_language(plain, config.stopwords, config.min_hits)
            if guessed is not None and guessed != language and language in config.stopwords:
                found[("language", code, locale)] = {
                    "kind": "language", "field": code, "locale": locale,
                    "evidence": f"{hits} {guessed} stop words in the {locale} {code}"}
            words = {w.lower() for w in _WORD.findall(plain)}
            for attribute, vocabulary in config.vocabulary.items():
                own = (value(product, attribute, channel, locale, rules) or "").lower()
                named = sorted(v for v in vocabulary if v.lower() in words and v.lower() != own)
                if own and named and own not in words:
                    found[("contradiction", f"{code}/{attribute}", locale)] = {
                        "kind": "contradiction", "field": code, "locale": locale,
                        "evidence": f"text names {', '.join(named)}; {attribute} is {own}"}
    return list(found.values())
