"""SIGKILL the catalog worker mid-stream, restart it: its outputs are exactly the pure core's, by id and content.

Input: 120 SKUs, six ProductUpserted each from the PIM (a first price, text changes, a small price step that
goes straight to the shop, a cut that needs approval, a third of the SKUs first without images and
attributes then completed), fed round by round from a paced thread, plus some events delivered twice. The
real `shopstream worker catalog` is SIGKILLed once it has published the first round's quality documents and
a third of the feed is out; records go on arriving while it is down, and it is started again.

The oracle is the pure catalog core (`core.apply_upsert` with the shipped rules, mastership and a catalog
index) applied to each SKU's events in feed order. The worker's contract (its module docstring) is at
least once with derived ids: a record redelivered after the crash may re-emit an output, as a duplicate of
the same id. So at the end the ids of the quality documents on `catalog.quality`, the work items on
`review.queue`, the catalog's own decisions on `review.decisions` and the UpdatePrice commands on
`commands.shop` are exactly the oracle's, and every record of an id is the oracle's record (wall-clock
times aside: `now` stamps the meta, `decided_at` and a document's `complete_at`).
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from shopstream.config import Settings
from shopstream.processors.catalog import core
from shopstream.processors.catalog.crossref import CatalogIndex
from shopstream.processors.catalog.records import SOURCE
from shopstream.processors.catalog.rules import load_mastership, load_rules
from shopstream.processors.catalog.worker import quality_record
from shopstream.schemas.models import ProductAttribute, ProductImage, ProductUpserted
from shopstream.serde import AvroSerde, make_registry_client
from shopstream.topology import apply as apply_topology
from shopstream.topology import load_topology
from tests.integration.test_catalog_worker import Topics, product
from tests.kafka_write import Feed, Record, produce_all
from tests.workers import sigkill_mid_feed, start_worker, stop, wait_for

pytestmark = pytest.mark.broker

SKUS = [f"CRASH-{n:03d}" for n in range(120)]
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
WORDS = ("leder", "stahl", "schnalle", "robust", "weich", "breit", "schmal", "klassisch", "modern", "braun",
         "schwarz", "natur", "vegetabil", "gegerbt", "handgenäht", "italienisch", "matt", "glänzend",
         "verstellbar", "zeitlos", "elegant", "sportlich", "bequem", "langlebig", "pflegeleicht", "nachhaltig",
         "gewachst", "geprägt", "vintage", "urban", "schlicht", "edel", "kräftig", "fein")
OUTPUTS = ("catalog.quality", "review.queue", "review.decisions", "commands.shop")


def _events(rng: random.Random, n: int, sku: str) -> list[ProductUpserted]:
    """A SKU's six upserts; every text unique to it (the checks across products must pass whatever the order)."""
    def text(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words)) + f" Modell {sku}."

    first: dict[str, Any] = dict(title=f"Gürtel {sku}", slug=f"guertel-{n}", description=text(14))
    if n % 3 == 0:
        first.update(attributes=[], images=[])  # incomplete until the fourth upsert
    at = [T0 + timedelta(minutes=m) for m in range(6)]
    return [product(sku, at[0], "40.00", **first),
            product(sku, at[1], "40.00", **{**first, "description": text(16)}),
            product(sku, at[2], "42.00", **{**first, "description": text(16)}),
            product(sku, at[3], "15.00", title=f"Gürtel {sku}", slug=f"guertel-{n}", description=text(15),
                    attributes=[ProductAttribute(code="material", value="leather")],
                    images=[ProductImage(url=f"https://x/{n}.jpg", width=1000, height=1000, format="jpeg",
                                         alt=sku)]),
            product(sku, at[4], "15.00", title=f"Ledergürtel {sku}", slug=f"guertel-{n}", description=text(15)),
            product(sku, at[5], "16.00", title=f"Ledergürtel {sku}", slug=f"guertel-{n}", description=text(15))]


def _normal(record: BaseModel) -> str:
    """A record's JSON without what `now` stamps on it (the meta's times, decided_at, complete_at)."""
    data: dict[str, Any] = record.model_dump(mode="json")
    data["meta"].pop("occurred_at"), data["meta"].pop("recorded_at")
    data.pop("decided_at", None)
    if "document" in data:
        document = json.loads(data["document"])
        document.pop("complete_at")
        data["document"] = document
    return json.dumps(data, sort_keys=True)


def _oracle(events: dict[str, list[ProductUpserted]]) -> dict[str, dict[str, str]]:
    """Per output topic: record id -> normalised record, from the pure core over each SKU's events in order."""
    rules = load_rules(None)
    ctx = core.Context(rules, load_mastership(None), CatalogIndex(rules))
    assert ctx.catalog is not None
    out: dict[str, dict[str, str]] = {topic: {} for topic in OUTPUTS}
    now = datetime.now(UTC)
    for sku, upserts in events.items():
        state: dict[str, Any] | None = None
        for event in upserts:
            outcome = core.apply_upsert(state, event, ctx, now)
            if outcome.state is None:
                continue
            state = outcome.state
            ctx.catalog.put(sku, state["product"])
            records = [*outcome.outputs, ("catalog.quality", sku, quality_record(state, now))]
            for topic, _key, record in records:
                out[topic][str(record.meta.event_id)] = _normal(record)
    return out


def test_sigkill_mid_stream_then_restart_publishes_what_the_core_says(settings: Settings, tmp_path: Path) -> None:
    apply_topology(load_topology(), settings.kafka_client_config(), prefix=settings.topic_prefix)
    serde = AvroSerde(make_registry_client(settings.schema_registry_url))
    rng = random.Random(30)
    topic = settings.topic("catalog.products")
    # As the worker reads them: through Avro (a price comes back with the schema's scale, 40.00 -> 40.0000).
    events = {sku: [serde.decode(serde.encode(topic, e)) for e in _events(rng, n, sku)] for n, sku in enumerate(SKUS)}
    expected = _oracle(events)
    rounds: list[list[Record]] = []
    for r in range(6):
        records = [(topic, sku.encode(), serde.encode(topic, events[sku][r])) for sku in SKUS]
        rng.shuffle(records)
        again = [rng.choice(rounds[-1]) for _ in range(len(records) // 8)] if rounds else []
        rounds.append(records + again)  # some of the last round's events delivered again
    produce_all(settings, rounds[0])  # round 1 waits on the topic: the worker shows it works before the feed
    feed = Feed(settings, [r for records in rounds[1:] for r in records], seconds=8.0)
    topics, log = Topics(settings), tmp_path / "worker.log"

    def published(logical: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for record in topics.read(logical, BaseModel):
            if record.meta.source == SOURCE:
                found.setdefault(str(record.meta.event_id), set()).add(_normal(record))
        return found

    worker = start_worker("catalog", settings, log)
    try:
        wait_for(lambda: len(published("catalog.quality")) >= len(SKUS) // 2, 90, log, "the first quality documents")
        sigkill_mid_feed(worker, feed, log)
        at_kill = len(published("catalog.quality"))
        time.sleep(1.0)  # records go on arriving while it is down
        worker = start_worker("catalog", settings, log)
        feed.join()
        wait_for(lambda: published("catalog.quality").keys() == expected["catalog.quality"].keys(), 90, log,
                 "every quality document")
        time.sleep(1.0)  # anything still on its way
        got = {logical: published(logical) for logical in OUTPUTS}
        assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        stop(worker)

    assert 0 < at_kill < len(expected["catalog.quality"])
    for logical in OUTPUTS:
        missing = expected[logical].keys() - got[logical].keys()
        extra = got[logical].keys() - expected[logical].keys()
        assert not missing and not extra, f"{logical}: {len(missing)} missing, {len(extra)} not the oracle's"
        differ = [i for i, e in expected[logical].items() if got[logical][i] != {e}]
        assert not differ, f"{logical}: {len(differ)} unlike the oracle, e.g. {got[logical][differ[0]]} " \
                           f"against {expected[logical][differ[0]]}"
