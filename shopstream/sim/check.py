"""The end of a run: what the system shows (read API and output topics), judged against the oracle."""

from __future__ import annotations

import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from shopstream.serde import AvroSerde, make_registry_client
from shopstream.sim.faces import Faces, api_get, read_topic
from shopstream.sim.oracle import Oracle
from shopstream.sim.plan import Plan
from shopstream.sim.verdict import Row, Verdict
from shopstream.topology import CONNECTORS_DLQ, load_topology
from shopstream.views.batch import MAX_BATCH

COMMAND_TOPICS = ("commands.fulfillment", "commands.erp", "commands.payments", "commands.shop")


@dataclass
class Observed:
    """What the stack showed at the end of the run."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # order id -> GET /v1/orders/{id} (or {})
    absent: dict[str, int] = field(default_factory=dict)  # forged order id -> HTTP status
    atp: dict[str, dict[str, Any]] = field(default_factory=dict)
    # type -> key -> distinct commands (event ids): the contract is one command per id, and a receiver
    # dedupes a re-emission after a crash, which carries the same id (README, "Commands a receiver can act on")
    commands: dict[str, Counter[str]] = field(default_factory=dict)
    recopied: Counter[str] = field(default_factory=Counter)  # type -> records that repeated an id already seen
    alerts: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, subject, severity)
    parked: Counter[str] = field(default_factory=Counter)  # marker -> records on connectors.dlq
    other_dlq: Counter[str] = field(default_factory=Counter)  # DLQ topic -> records keyed by the run's ids
    first_state: dict[str, float] = field(default_factory=dict)  # order id -> epoch s of its first orders.state
    atp_series: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # SKU -> (epoch s, available)


def atp_levels(faces: Faces, skus: list[str]) -> dict[str, dict[str, Any]]:
    """ATP documents of `skus` from the read API (100 per request)."""
    return _batch_get(faces, "/v1/atp", "sku", skus)


def _order_docs(faces: Faces, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Order documents of `ids` from the read API, 100 per request ({} where unknown or refused). One
    request per order made the settle check itself the bottleneck: 30,000 GETs per poll at 100 orders/s
    for 5 min, so `--settle` ran out while the check was still reading."""
    return {oid: {} for oid in ids} | _batch_get(faces, "/v1/orders", "order_id", ids)


def _batch_get(faces: Faces, path: str, param: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The documents a batch endpoint knows of `ids` (`MAX_BATCH` per request), by their `param` field."""
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), MAX_BATCH):
        code, body = api_get(faces, f"{path}?{urllib.parse.urlencode([(param, v) for v in ids[i:i + MAX_BATCH]])}")
        if code == 200:
            found.update({doc[param]: doc for doc in body.get("items", [])})
    return found


def _order_misses(oracle: Oracle, docs: dict[str, dict[str, Any]], row: Row | None = None) -> int:
    misses = 0
    for oid, want in oracle.orders.items():
        doc = docs.get(oid) or {}
        for key, value in want.items():
            got = doc.get(key)
            ok = (got == []) if key == "hold_reasons" else got == value
            if not ok:
                misses += 1
                if row is not None:
                    row.miss(f"order {oid}: {key} {got!r}, expected {value or []!r}")
                break
    return misses


def _atp_misses(oracle: Oracle, atp: dict[str, dict[str, Any]], row: Row | None = None) -> int:
    misses = 0
    for sku, want in oracle.atp.items():
        got = (atp.get(sku) or {}).get("available")
        if got != want:
            misses += 1
            if row is not None:
                row.miss(f"{sku}: available {got}, expected {want}")
    return misses


def settled(faces: Faces, oracle: Oracle) -> bool:
    """Whether the read API already agrees with the oracle on every order and SKU (cheap, polled)."""
    return (_atp_misses(oracle, atp_levels(faces, list(oracle.atp))) == 0
            and _order_misses(oracle, _order_docs(faces, list(oracle.orders))) == 0)


def observe(faces: Faces, plan: Plan) -> Observed:
    """Read the read API and the output topics for everything of this run."""
    seen = Observed()
    seen.orders = _order_docs(faces, [o.order_id for o in plan.orders])
    for oid in plan.badsig_orders:
        seen.absent[oid] = api_get(faces, f"/v1/orders/{oid}")[0]
    skus = [s.sku for s in plan.world.skus]
    seen.atp = atp_levels(faces, skus)
    ours = {o.order_id for o in plan.orders} | set(skus)
    topology = {t.name: t for t in load_topology().topics}
    serde = AvroSerde(make_registry_client(faces.registry))
    ids: set[str] = set()
    for name in COMMAND_TOPICS:
        for msg in read_topic(faces, name, topology[name].partitions):
            key = (msg.key() or b"").decode(errors="replace")
            if key in ours:
                command: Any = serde.decode(msg.value())
                kind = type(command).__name__
                if command.meta.event_id in ids:
                    seen.recopied[kind] += 1
                    continue
                ids.add(command.meta.event_id)
                seen.commands.setdefault(kind, Counter())[key] += 1
    for msg in read_topic(faces, "alerts.anomalies", topology["alerts.anomalies"].partitions):
        key = (msg.key() or b"").decode(errors="replace")
        if key.split(":", 1)[-1] in ours:
            alert: Any = serde.decode(msg.value())
            seen.alerts.append((alert.kind, alert.subject, alert.severity))
    markers = set(plan.malformed)
    for msg in read_topic(faces, CONNECTORS_DLQ, topology[CONNECTORS_DLQ].partitions):
        value = msg.value() or b""
        # Quoted, so marker -1 does not also count the bodies of -10, -11, …
        seen.parked.update(m for m in markers if f'"{m}"'.encode() in value)
    for name, topic in topology.items():
        if name.endswith(".dlq") and name != CONNECTORS_DLQ:
            seen.other_dlq[name] = sum(1 for m in read_topic(faces, name, topic.partitions, idle_s=0.3)
                                       if (m.key() or b"").decode(errors="replace") in ours)
    for msg in read_topic(faces, "orders.state", topology["orders.state"].partitions):
        key = (msg.key() or b"").decode(errors="replace")
        if key in ours:
            ts = msg.timestamp()[1] / 1000
            seen.first_state[key] = min(ts, seen.first_state.get(key, ts))
    top = [s.sku for s in plan.world.skus[:4]]
    for msg in read_topic(faces, "inventory.atp", topology["inventory.atp"].partitions):
        key = (msg.key() or b"").decode(errors="replace")
        if key in top:
            level: Any = serde.decode(msg.value())
            seen.atp_series.setdefault(key, []).append((msg.timestamp()[1] / 1000, level.available))
    for series in seen.atp_series.values():
        series.sort()
    return seen


def judge(plan: Plan, oracle: Oracle, seen: Observed, decided: dict[str, dict[str, Any]], wrong: Row) -> Verdict:
    """One row per check; every mismatch counted with a few examples."""
    verdict = Verdict(rows=[wrong])
    orders = Row("orders: canonical status", len(oracle.orders))
    _order_misses(oracle, seen.orders, orders)
    holds = Row("holds: rules fired and decided", len(oracle.holds))
    for oid, reasons in oracle.holds.items():
        item = decided.get(oid)
        if item is None:
            holds.miss(f"order {oid}: no review_hold item decided (expected {', '.join(reasons)})")
        elif sorted(item.get("hold_reasons") or []) != sorted(reasons):
            holds.miss(f"order {oid}: item holds {item.get('hold_reasons')}, expected {list(reasons)}")
    unexpected = [oid for oid in decided if oid not in oracle.holds]
    for oid in unexpected:
        holds.miss(f"order {oid}: held by review, the rules as documented do not hold it")
    atp = Row("ATP: available per SKU", len(oracle.atp))
    _atp_misses(oracle, seen.atp, atp)
    verdict.rows += [orders, holds, atp]
    for kind, ids in sorted(oracle.once.items()):
        copies = seen.recopied[kind]
        row = Row(f"commands: {kind} exactly once", len(ids),
                  note=f"{copies} re-emitted with the same id (deduped by id)" if copies else "")
        for oid in sorted(ids):
            count = seen.commands.get(kind, Counter())[oid]
            if count != 1:
                row.miss(f"order {oid}: {count} {kind}")
        verdict.rows.append(row)
    for kind, ids in sorted(oracle.at_most_once.items()):
        row = Row(f"commands: {kind} at most once (shipped orders)", len(ids))
        for oid in sorted(ids):
            count = seen.commands.get(kind, Counter())[oid]
            if count > 1:
                row.miss(f"order {oid}: {count} {kind}")
        verdict.rows.append(row)
    for kind, ids in sorted(oracle.never.items()):
        row = Row(f"commands: no {kind}", len(ids))
        for oid in sorted(ids):
            if seen.commands.get(kind, Counter())[oid]:
                row.miss(f"order {oid}: {seen.commands[kind][oid]} {kind}, expected none")
        verdict.rows.append(row)
    parked = Row("DLQ: malformed bodies parked on connectors.dlq", len(oracle.parked),
                 note=f"expected {len(oracle.parked)}, found {sum(1 for m in oracle.parked if seen.parked[m])}")
    for marker in sorted(oracle.parked):
        if seen.parked[marker] != 1:
            parked.miss(f"{marker}: {seen.parked[marker]} records")
    others = Row("DLQ: nothing else parked for this run", len(seen.other_dlq),
                 note=f"found {sum(seen.other_dlq.values())}")
    for name, count in seen.other_dlq.items():
        if count:
            others.miss(f"{name}: {count} records")
    forged = Row("bad signatures: nothing published", len(oracle.absent_orders))
    for oid, status in seen.absent.items():
        if status != 404:
            forged.miss(f"forged order {oid}: GET answered {status}, expected 404")
    verdict.rows += [parked, others, forged]
    return verdict


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def stats(plan: Plan, timeline: Any, seen: Observed) -> dict[str, Any]:
    """Figures for the report: latencies (create accepted -> first orders.state), rates, orders by status."""
    latencies = [(timeline.created[o], seen.first_state[o] - timeline.created[o])
                 for o in timeline.created if o in seen.first_state]
    lat = [max(0.0, d) for _, d in latencies]
    by_status = Counter((doc or {}).get("status", "missing") for doc in seen.orders.values())
    span = max((t for t, *_ in timeline.sent), default=timeline.started) - timeline.started
    buckets: dict[int, list[float]] = defaultdict(list)
    for at, d in latencies:
        buckets[int((at - timeline.started) // 10) * 10].append(max(0.0, d) * 1000)
    planned_span = max((s.at for s in plan.steps), default=0.0)
    return {
        "orders": len(plan.orders), "deliveries": len(timeline.sent),
        "deliveries_per_s": round(len(timeline.sent) / span, 1) if span > 0 else 0.0,
        # The offered rate and how far behind it the deliveries went out: a stack slower than the plan
        # shows here, not as a lower "deliveries_per_s" alone.
        "planned_deliveries_per_s": round(len(plan.steps) / planned_span, 1) if planned_span > 0 else 0.0,
        "send_late_s": {"p50": round(_pct(timeline.late, 0.5), 2), "p99": round(_pct(timeline.late, 0.99), 2),
                        "max": round(max(timeline.late, default=0.0), 2)},
        "latency_ms": {"p50": round(_pct(lat, 0.5) * 1000), "p95": round(_pct(lat, 0.95) * 1000),
                       "p99": round(_pct(lat, 0.99) * 1000), "max": round(max(lat, default=0) * 1000),
                       "samples": len(lat)},
        "latency_over_time": [{"t": t, "p50": _pct(v, 0.5), "p95": _pct(v, 0.95), "p99": _pct(v, 0.99)}
                              for t, v in sorted(buckets.items())],
        "orders_by_status": dict(by_status.most_common()),
        "commands_by_type": {k: sum(v.values()) for k, v in sorted(seen.commands.items())},
        "alerts_by_kind": dict(Counter(kind for kind, _, _ in seen.alerts)),
    }
