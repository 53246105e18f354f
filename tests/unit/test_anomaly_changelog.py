"""The anomaly engine's state as changelog records (processors/anomalies/changelog.py): a store that receives
only what the engine recorded as changed (values cut at each batch's end, tombstones for what is gone)
holds exactly the engine's state, pruning included; every record stays small with 200,000 SKUs and
200,000 seen events; a batch writes what its facts touched, not the whole state; the layout before
(core + 32 buckets) is read and moved over."""

from __future__ import annotations

import json
import zlib
from typing import Any

from shopstream.processors.anomalies.changelog import (
    MISSING,
    assemble,
    decode_key,
    encode_key,
    encode_value,
    keys,
    value_of,
)
from shopstream.processors.anomalies.engine import Engine
from shopstream.processors.anomalies.facts import Fact
from shopstream.processors.anomalies.records import decode_fact, encode_fact
from shopstream.processors.anomalies.rules import load_rules
from tests.unit.anomaly_history import DAY, HOUR, T0, Ids, hour_of_orders

RULES = load_rules()
LIMIT = 64 * 1024


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _flush(engine: Engine, store: dict[bytes, Any]) -> int:
    """What the worker does at a batch's end: write each changed key's value, or a tombstone; how many."""
    changed = engine.take_changes()
    for key in changed:
        raw = encode_key(key)
        if value_of(engine.state, key) is MISSING:
            store.pop(raw, None)
        else:
            store[raw] = json.loads(encode_value(engine.state, key))
    return len(changed)


def _full(engine: Engine) -> dict[bytes, Any]:
    """Every record of the state, as a full rewrite would write them."""
    return {encode_key(key): json.loads(encode_value(engine.state, key)) for key in keys(engine.state)}


def mixed_history(days: int, location: str = "W|2") -> list[Fact]:
    """Every kind of fact, for `days`: orders of two SKUs (some cancelled), shipments, deliveries, returns,
    refunds, payments, tickets, ERP snapshots and adjustments, ATP levels going negative, prices and
    categories; each day one cancellation read before its order, and one whose order never comes."""
    ids = Ids()
    facts: list[Fact] = []
    for h in range(days * 24):
        start = T0 + h * HOUR
        hour = hour_of_orders(ids, start, "A", 5, 1) + hour_of_orders(ids, start + 7, "B", 2, 0, gateway="paypal")
        facts += hour
        placed = [f for f in hour if f.type == "order"]
        for n, order in enumerate(placed[1:3]):
            facts.append(Fact("dispatched", ids.next(), order.at_ms + 2 * HOUR, order_id=order.order_id,
                              lines=order.lines))
            facts.append(Fact("delivered", ids.next(), order.at_ms + 20 * HOUR, order_id=order.order_id,
                              lines=order.lines))
            facts.append(Fact("payment_ok" if n else "payment_failed", ids.next(), order.at_ms + 1000,
                              order_id=order.order_id, gateway="stripe", method="card"))
        if h % 3 == 0:
            order = placed[-1]
            facts.append(Fact("return", ids.next(), order.at_ms + 30 * HOUR, order_id=order.order_id,
                              lines=order.lines))
            facts.append(Fact("refund", ids.next(), order.at_ms + 40 * HOUR, order_id=order.order_id,
                              gateway="paypal", amount=12.5))
            facts.append(Fact("ticket", ids.next(), start + 900_000, order_id=order.order_id))
        if h % 6 == 0:
            facts.append(Fact("stock_snapshot", ids.next(), start + 1_800_000, sku="A", location="W1",
                              value=1000 - h))
            facts.append(Fact("stock_adjusted", ids.next(), start + 1_000_000, sku="B", location="W1", value=-2))
            facts.append(Fact("goods_received", ids.next(), start + 1_100_000, sku="B", location="W1", value=5))
            facts.append(Fact("stock_snapshot", ids.next(), start + 1_900_000, sku="B", location=location,
                              value=-1 if h % 12 == 0 else 50))
        facts.append(Fact("atp", ids.next(), start + 600_000, sku="A", value=-1 if h % 2 else 3))
        if h % 8 == 0:
            facts.append(Fact("product", ids.next(), start + 5, sku="B", category="belts",
                              amount=10.0 if h % 16 else 30.0))
        if h % 24 == 0:
            facts.append(Fact("cancel", ids.next(), start + 100, order_id=f"never-{h}"))
    facts.sort(key=lambda f: f.at_ms)
    # each day a cancellation is read before its order (another topic, another speed): it waits as an orphan
    for d in range(days):
        i = next(i for i, f in enumerate(facts) if f.type == "cancel" and f.at_ms >= T0 + d * DAY
                 and not f.order_id.startswith("never"))
        j = max(k for k in range(i) if facts[k].type == "order" and facts[k].order_id == facts[i].order_id)
        facts.insert(i + 25, facts.pop(j))
    return facts


def test_a_store_of_the_changed_keys_holds_exactly_the_state_pruning_included() -> None:
    """Batches of odd sizes, a tick between some; after each, the store (what the changelog keeps after
    compaction) equals the state's full set of records: nothing missing, nothing forgotten left behind."""
    facts = mixed_history(days=47)  # past KPI pruning (35 d) and the order memory (45 d)
    engine = Engine(RULES)
    store: dict[bytes, Any] = {}
    seen_orphan = seen_tombstone = False
    for n, start in enumerate(range(0, len(facts), 37)):
        for fact in facts[start:start + 37]:
            engine.apply(fact)
        seen_orphan = seen_orphan or bool(engine.state["orphans"])
        if n % 5 == 0:
            engine.advance(engine.state["max_at"] + 5 * 60_000)  # a tick: the wall clock a little ahead
        before = set(store)
        _flush(engine, store)
        seen_tombstone = seen_tombstone or bool(before - set(store))
        if n % 40 == 0:
            assert store == _full(engine)
    assert store == _full(engine)
    assert assemble(store.items()).state == _json(engine.state)
    assert assemble(store.items()).rewrite == set()
    state = engine.state
    # what this history was meant to exercise
    assert seen_orphan and seen_tombstone and state["late"] > 0
    assert state["alerts"] and any(st["hist"] for st in state["win"].values())
    assert len(state["kpis"]["hours"]) <= 35 * 24 + 1 and min(map(int, state["kpis"]["hours"])) > T0
    assert "never-0" not in state["orphans"] and "never-24" not in state["orphans"]  # forgotten after 45 d
    assert "never-1056" in state["orphans"]
    assert state["skus"]["B"]["category"] == "belts" and "W|2" in state["skus"]["B"]["snaps"]
    assert any(k.startswith(b"samples:") for k in store) and any(k.startswith(b"moves:") for k in store)
    assert all(len(json.dumps(v)) < LIMIT for v in store.values())


def test_assembling_records_restores_an_engine_that_goes_on_like_the_original() -> None:
    facts = mixed_history(days=10)
    half = len(facts) // 2
    original = Engine(RULES)
    for fact in facts[:half]:
        original.apply(fact)
    restored = Engine(RULES, assemble(_full(original).items()).state)
    rest_original = [c for f in facts[half:] for c in original.apply(f)]
    rest_restored = [c for f in facts[half:] for c in restored.apply(f)]
    assert rest_restored == rest_original and rest_original
    assert _json(restored.state) == _json(original.state)


def test_keys_round_trip_whatever_a_sku_or_subject_holds() -> None:
    for key in [("core",), ("seen", "e:1"), ("orders", "o|1"), ("sku", "A|B:c"), ("moves", "3600000", "x|y"),
                ("cell", "cancellation-rate-sku-hour", "3600000", "sku:a|b"), ("hist", "d", "sku:|"),
                ("alert", "stock-drift|sku:a|b"), ("kpi", "3600000"), ("samples", "3600000", "lead")]:
        assert decode_key(encode_key(key)) == key


def _big_engine(skus: int) -> Engine:
    """`skus` SKUs through ERP snapshots (every seventh impossible), one event each: as many seen ids."""
    engine = Engine(RULES)
    for i in range(skus):
        engine.apply(Fact("stock_snapshot", f"{i:08d}-7d0e-4f7e-8f7a-616e6f6d616c", T0 + i, sku=f"SKU-{i:07d}",
                          location="W1", value=-1 if i % 7 == 0 else 5))
    return engine


def test_atp_levels_of_skus_never_oversold_write_no_per_sku_or_event_records() -> None:
    """A stock export's levels are mostly >= 0: they need no entry and no seen id (deduplicated by time)."""
    engine = Engine(RULES)
    for i in range(10_000):
        engine.apply(Fact("atp", f"a{i}", T0 + i, sku=f"SKU-{i:05d}", value=i % 50))
    changed = engine.take_changes()
    assert not engine.state["skus"] and not engine.state["seen"]
    assert all(key[0] in ("core", "kpi") for key in changed), sorted(changed)[:5]
    # once oversold a SKU is tracked, and a level older than its newest changes nothing (a re-delivery)
    engine.apply(Fact("atp", "neg", T0 + 20_000, sku="SKU-00001", value=-2))
    assert engine.state["skus"]["SKU-00001"]["oversold"]["neg"] is True
    before = engine.snapshot()
    engine.apply(Fact("atp", "a1", T0 + 1, sku="SKU-00001", value=1))
    assert engine.snapshot() == before


def test_atp_levels_sharing_a_time_re_delivered_after_a_crash_count_one_episode() -> None:
    """Levels of a SKU share `updated_at` (the newest event time); their version orders them. Stage 1
    re-sends a run of facts after a crash: the re-sent levels change nothing (no second episode)."""
    engine = Engine(RULES)
    run = [Fact("atp", f"l{v}", T0, sku="SKU-1", value=value, version=v) for v, value in ((1, 1), (2, -2), (3, 4))]
    for fact in run:
        engine.apply(fact)
    once = engine.snapshot()
    assert once["skus"]["SKU-1"]["oversold"]["times"] == [T0]
    for _ in range(4):
        for fact in run:
            engine.apply(fact)
    assert engine.snapshot() == once


def test_no_record_exceeds_64_kib_with_200000_skus_and_200000_events_and_a_batch_writes_what_it_touched() -> None:
    engine = _big_engine(200_000)
    state = engine.state
    assert len(state["skus"]) == 200_000 and len(state["seen"]) == 200_000
    changed = engine.take_changes()
    assert len(changed) == 1 + 2 * 200_000 + len(state["alerts"]) + len(state["kpis"]["hours"])
    sizes = [len(encode_value(state, key)) for key in changed]
    assert max(sizes) < 2048, max(sizes)  # the largest is `core`: small and bounded by the rules
    assert len(encode_value(state, ("core",))) < 4096

    # a batch of 1,000 facts (orders of existing SKUs, ATP levels, snapshots) writes about as many keys
    ids = Ids("next-")
    batch: list[Fact] = []
    at = T0 + 200_000
    for i in range(250):
        sku = f"SKU-{i * 37:07d}"
        batch += [Fact("order", ids.next(), at + i, order_id=f"o{i}", lines=((sku, 1),)),
                  Fact("atp", ids.next(), at + i, sku=sku, value=-1),
                  Fact("stock_snapshot", ids.next(), at + i, sku=sku, location="W1", value=10),
                  Fact("dispatched", ids.next(), at + i + 1, order_id=f"o{i}", lines=((sku, 1),))]
    for fact in batch:
        engine.apply(fact)
    changed = engine.take_changes()
    written = sum(len(encode_value(state, k)) for k in changed if value_of(state, k) is not MISSING)
    assert len(changed) <= 6 * len(batch), len(changed)
    assert written < 600 * len(batch), written  # a few hundred bytes a fact, not the 200,000 SKUs' state


def test_the_layout_before_is_read_and_moved_over() -> None:
    """The state as the old layout stored it (core with the per-SKU maps, 32 buckets of seen ids and of
    orders) assembles to the same state, with every key to write and the old buckets to delete."""
    engine = Engine(RULES)
    for fact in mixed_history(days=3, location="W2"):  # the old layout's "sku|location" keys were ambiguous
        engine.apply(fact)
    state = _json(engine.state)
    old = {k: v for k, v in state.items() if k not in ("seen", "orders", "skus", "moves")}
    skus = state["skus"]
    old["categories"] = {s: e["category"] for s, e in skus.items() if "category" in e}
    old["stock"] = {
        "moves": {s: [m for h in sorted(c, key=int) for m in c[h]] for s, c in state["moves"].items()},
        "snaps": {f"{s}|{loc}": v for s, e in skus.items() for loc, v in e.get("snaps", {}).items()},
        "oversold": {s: e["oversold"] for s, e in skus.items() if "oversold" in e},
        "prices": {s: e["price"] for s, e in skus.items() if "price" in e}}
    records: list[tuple[bytes, Any]] = [(b"core", old)]
    for part in ("seen", "orders"):
        for n in range(32):
            bucket = {k: v for k, v in state[part].items() if zlib.crc32(k.encode()) % 32 == n}
            records.append((f"{part}:{n:02d}".encode(), bucket))
    assembled = assemble(records)
    assert assembled.state == state
    assert set(keys(assembled.state)) <= assembled.rewrite
    assert {("seen", f"{n:02d}") for n in range(32)} <= assembled.rewrite
    assert all(value_of(assembled.state, ("orders", f"{n:02d}")) is MISSING for n in range(32))


def test_facts_round_trip_through_their_records() -> None:
    for fact in mixed_history(days=1):
        assert decode_fact(encode_fact(fact)) == fact
