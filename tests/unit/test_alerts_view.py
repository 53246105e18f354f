"""The alerts view's merge rules and the KPI metrics export (shopstream.views.alerts,
processors/anomalies/metrics)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from shopstream.processors.anomalies.metrics import export_open_alerts, export_reports
from shopstream.schemas.models import AnomalyAlert, EventMeta
from shopstream.views.alerts import alert_change, matches, merge_alert

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def alert(hours: int, status: str | None, observed: str = "1") -> AnomalyAlert:
    at = T0 + timedelta(hours=hours)
    meta = EventMeta(event_id=str(uuid.uuid4()), event_type="AnomalyAlert", occurred_at=at, recorded_at=at,
                     source="shopstream.anomalies")
    evidence = {"observed": observed, **({"alert_id": "a1", "status": status} if status else {})}
    return AnomalyAlert(meta=meta, kind="refund_spike", subject="shop", severity="warning", evidence=evidence,
                        detected_at=at)


def fold(*alerts: AnomalyAlert) -> dict[str, object] | None:
    doc = None
    for a in alerts:
        doc = merge_alert(doc, alert_change(a))
    return doc


def test_one_document_per_alert_and_resolution_is_final() -> None:
    doc = fold(alert(0, "open"), alert(1, "updated", "5"), alert(1, "updated", "5"), alert(3, "resolved"),
               alert(2, "updated", "9"))
    assert doc is not None
    assert doc["status"] == "resolved" and doc["updates"] == 1 and doc["evidence"] == {"observed": "5"}
    assert doc["resolved_at"] == "2026-12-06T12:00:00Z"
    assert matches(doc, "resolved", "refund_spike", "shop") and not matches(doc, "open", None, None)


def test_an_update_before_its_open_and_alerts_without_lifecycle() -> None:
    doc = fold(alert(1, "updated", "5"), alert(0, "open", "2"))
    assert doc is not None and doc["status"] == "open" and doc["evidence"] == {"observed": "5"}
    plain = alert(0, None)
    change = alert_change(plain)
    assert change["alert_id"] == str(plain.meta.event_id) and change["change"] == "open"


def test_kpi_reports_become_gauges_and_missing_values_are_not_zero() -> None:
    export_reports({"24h": {"orders": 10, "cancellation_rate": 0.2, "tickets_per_100_orders": None,
                            "fulfilment_lead_time_s": {"p50": 7200, "p90": 14400, "count": 4}}})
    value = REGISTRY.get_sample_value
    assert value("shopstream_kpi_cancellation_rate", {"window": "24h"}) == 0.2
    assert value("shopstream_kpi_tickets_per_100_orders", {"window": "24h"}) is None
    assert value("shopstream_kpi_fulfilment_lead_time_seconds", {"window": "24h", "quantile": "0.9"}) == 14400
    export_open_alerts([("stock_drift", "warning"), ("stock_drift", "warning")])
    assert value("shopstream_anomaly_alerts_open", {"kind": "stock_drift", "severity": "warning"}) == 2
    export_open_alerts([])
    assert value("shopstream_anomaly_alerts_open", {"kind": "stock_drift", "severity": "warning"}) == 0


def test_work_queue_summary_counts_undecided_items_and_the_oldest_age() -> None:
    from shopstream.api.queue_depth import summarize

    now = T0 + timedelta(hours=5)
    docs = [{"status": "open", "queue": "review", "created_at": "2026-12-06T09:00:00Z"},
            {"status": "claimed", "queue": "review", "created_at": "2026-12-06T13:00:00Z"},
            {"status": "decided", "queue": "review", "created_at": "2026-12-06T08:00:00Z"},
            {"status": "open", "queue": "payments", "created_at": "2026-12-06T13:30:00Z"},
            {"status": "open", "created_at": None}]
    assert summarize(docs, now) == {"review": (2, 5 * 3600.0), "payments": (1, 1800.0)}


def test_alert_changes_become_records_and_critical_ones_work_items() -> None:
    from shopstream.processors.anomalies.alerts import AlertEvent
    from shopstream.processors.anomalies.records import alert_record, work_item

    event = AlertEvent("a1", "order-rate-shop-hour", "order_rate_drop", "shop", "critical", "open", "drop",
                       1_700_000_000_000, {"observed": "0"})
    record = alert_record(event, "v1")
    assert record.evidence["alert_id"] == "a1" and record.evidence["status"] == "open"
    assert record == alert_record(event, "v1")  # deterministic: a re-run re-emits the same record
    item = work_item(event, "v1")
    assert item is not None and item.kind == "anomaly_order_rate_drop" and item.details["subject"] == "shop"
    assert work_item(AlertEvent("a1", "d", "k", "shop", "warning", "open", "", 0), "v1") is None
