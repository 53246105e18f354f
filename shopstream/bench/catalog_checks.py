"""`shopstream bench catalog-checks`: the catalog's quality checks in-process, with and without the checks
across products (`processors/catalog/crossref.py`).

Per run, N generated products (two locales of text, unique slugs, every tenth description another's with
one of its 40 words changed: a Jaccard similarity of about 0.85) are checked three ways, each timed on its own:
- **baseline**: `checks.quality` without the index (the per-product checks only);
- **index build**: `CatalogIndex.put` of every product (what a worker's restore adds per SKU);
- **with index**: `checks.quality` with the filled index (unique slug, near-duplicate texts, bundles).
It prints products/s of each and the ratio of the medians (with index / baseline), plus how many
products the near-duplicate check flagged (a copy and its original both are; fewer than the number of
copies is a wrong result and exits 1).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from shopstream.bench.common import BenchError, median, repeat
from shopstream.processors.catalog.checks import quality
from shopstream.processors.catalog.crossref import CatalogIndex
from shopstream.processors.catalog.rules import load_rules

WORDS = ("warm", "weich", "atmungsaktiv", "pullover", "merino", "wolle", "baumwolle", "leinen", "jacke", "hose",
         "hemd", "gürtel", "leder", "schnalle", "stahl", "robust", "leicht", "wasserdicht", "membran", "sohle",
         "wandern", "stadt", "büro", "reise", "winter", "sommer", "klassisch", "modern", "gestrickt", "gewebt",
         "genäht", "portugal", "italien", "deutschland", "naht", "kragen", "ärmel", "saum", "tasche", "knopf",
         "reißverschluss", "farbe", "grau", "blau", "schwarz", "braun", "grün", "rot", "größe", "passform",
         "schmal", "weit", "lang", "kurz", "pflege", "waschbar", "grad")


@dataclass(frozen=True)
class Run:
    products: int
    baseline_s: float
    build_s: float
    indexed_s: float
    copies: int
    found: int

    def rate(self, seconds: float) -> float:
        return self.products / seconds if seconds else float("inf")


def products(count: int, seed: int) -> list[dict[str, Any]]:
    """Generated products; every tenth description is another's with one word changed."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(count):
        if i % 10 == 9:
            words = out[i - 5]["description"].split()
            words[rnd.randrange(len(words))] = "geändert"
            text = " ".join(words)
        else:
            text = " ".join(rnd.choice(WORDS) for _ in range(40))
        out.append({
            "sku": f"B-{i}", "product_id": f"p{i}", "title": f"Produkt {i} {rnd.choice(WORDS)}", "description": text,
            "brand": "Bench", "family": "default", "slug": f"produkt-{i}", "channels": ["ecommerce"],
            "price": {"amount": "20.00", "currency": "EUR"},
            "attributes": [{"code": "description", "value": text[::-1], "locale": "en_GB", "channel": None},
                           {"code": "name", "value": f"Product {i}", "locale": "en_GB", "channel": None}],
            "images": [{"url": "https://x/a.jpg", "width": 1000, "height": 1000, "format": "jpeg", "alt": "a"}]})
    return out


def one_run(count: int, seed: int) -> Run:
    rules = load_rules()
    items = products(count, seed)
    started = time.perf_counter()
    for p in items:
        quality(p["sku"], p, rules)
    baseline = time.perf_counter() - started
    index = CatalogIndex(rules)
    started = time.perf_counter()
    for p in items:
        index.put(p["sku"], p)
    build = time.perf_counter() - started
    found = 0
    started = time.perf_counter()
    for p in items:
        doc = quality(p["sku"], p, rules, index)
        failed = doc["channels"]["ecommerce"]["de_DE"]["failed"]
        found += any(f["check"] == "description-near-duplicate" for f in failed)
    indexed = time.perf_counter() - started
    copies = count // 10
    return Run(count, baseline, build, indexed, copies, found)


def run_catalog_checks_bench(count: int, runs: int) -> int:
    """Print each run and the medians; 1 when the index misses most near copies (a wrong result)."""
    print(f"catalog-checks: {count} products per run, {runs} runs", flush=True)
    results = repeat(runs, lambda n: one_run(count, n), lambda n, r: (
        f"run {n}: baseline {r.rate(r.baseline_s):,.0f} products/s, index build {r.rate(r.build_s):,.0f}/s, "
        f"with index {r.rate(r.indexed_s):,.0f}/s; near copies {r.copies}, flagged {r.found} products"))
    base = median(results, lambda r: r.rate(r.baseline_s))
    build = median(results, lambda r: r.rate(r.build_s))
    indexed = median(results, lambda r: r.rate(r.indexed_s))
    print(f"median: baseline {base:,.0f} products/s, index build {build:,.0f}/s, with index {indexed:,.0f}/s "
          f"(with index / baseline: {indexed / base:.2f})")
    if any(r.found < r.copies for r in results):  # a copy and its original both count: 2 x copies expected
        raise BenchError("the index flagged fewer products than there are near copies")
    return 0
