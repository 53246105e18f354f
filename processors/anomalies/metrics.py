"""The KPIs and alert counts as Prometheus metrics (set by the anomalies worker from the pure reports).

Gauges per report window (`window` label: 1h, 24h, 7d), named `shopstream_kpi_<name>`; a KPI without a
value (no orders in the window, support not fed) is not exported for that window rather than exported
as 0, so a dashboard shows "no data" instead of a false zero.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Counter, Gauge

#: report field -> (metric name, help)
KPI_GAUGES: dict[str, tuple[str, str]] = {
    "orders": ("shopstream_kpi_orders", "Orders placed in the window"),
    "orders_per_hour": ("shopstream_kpi_orders_per_hour", "Orders placed per hour over the window"),
    "cancellation_rate": ("shopstream_kpi_cancellation_rate", "Stornoquote: cancellations / orders"),
    "return_rate": ("shopstream_kpi_return_rate", "Retourenquote: return requests / orders"),
    "tickets_per_100_orders": ("shopstream_kpi_tickets_per_100_orders", "Tickets pro 100 Orders"),
    "payment_failure_rate": ("shopstream_kpi_payment_failure_rate", "Failed / attempted payments"),
    "oversold": ("shopstream_kpi_oversold", "SKUs turning oversold (ATP available < 0) in the window"),
    "refunds": ("shopstream_kpi_refunds", "Refunds issued in the window"),
    "refund_amount": ("shopstream_kpi_refund_amount", "Refunded amount in the window (major units)"),
}
#: report field -> metric of p50/p90 in seconds (label quantile)
LATENCY_GAUGES: dict[str, tuple[str, str]] = {
    "fulfilment_lead_time_s": ("shopstream_kpi_fulfilment_lead_time_seconds", "Placed -> first dispatch"),
    "delivery_time_s": ("shopstream_kpi_delivery_time_seconds", "Durchlaufzeit Fulfillment: placed -> delivered"),
    "return_to_refund_time_s": ("shopstream_kpi_return_to_refund_seconds", "Return requested -> first refund"),
}

_KPI = {field: Gauge(name, text, ["window"]) for field, (name, text) in KPI_GAUGES.items()}
_LATENCY = {field: Gauge(name, text, ["window", "quantile"]) for field, (name, text) in LATENCY_GAUGES.items()}
ALERTS_OPEN = Gauge("shopstream_anomaly_alerts_open", "Open anomaly alerts by kind and severity",
                    ["kind", "severity"])
ALERT_CHANGES = Counter("shopstream_anomaly_alert_changes_total",
                        "Anomaly alert changes emitted, by kind and status (open, updated, resolved)",
                        ["kind", "status"])
LATE_EVENTS = Gauge("shopstream_anomaly_late_events", "Events that came after their window had closed")

#: every metric name this module exports (the dashboard test checks queries against it)
EXPORTED = frozenset({*(n for n, _ in KPI_GAUGES.values()), *(n for n, _ in LATENCY_GAUGES.values()),
                      "shopstream_anomaly_alerts_open", "shopstream_anomaly_alert_changes_total",
                      "shopstream_anomaly_late_events"})


def export_reports(reports: Mapping[str, Mapping[str, Any]]) -> None:
    """Set the KPI gauges from `kpis.report` results keyed by window."""
    for window, report in reports.items():
        for field, gauge in _KPI.items():
            value = report.get(field)
            if value is None:
                with contextlib.suppress(KeyError):  # never set for this window
                    gauge.remove(window)
            else:
                gauge.labels(window).set(float(value))
        for field, gauge in _LATENCY.items():
            stats = report.get(field) or {}
            for quantile, key in (("0.5", "p50"), ("0.9", "p90")):
                if stats.get(key) is not None:
                    gauge.labels(window, quantile).set(float(stats[key]))


def export_open_alerts(open_alerts: Iterable[tuple[str, str]]) -> None:
    """Set the open-alert gauge from (kind, severity) of every open alert (zero for kinds that closed)."""
    counts: dict[tuple[str, str], int] = {}
    for kind, severity in open_alerts:
        counts[(kind, severity)] = counts.get((kind, severity), 0) + 1
    for labels in list(_known_open):
        if labels not in counts:
            ALERTS_OPEN.labels(*labels).set(0)
    for labels, count in counts.items():
        ALERTS_OPEN.labels(*labels).set(count)
        _known_open.add(labels)


_known_open: set[tuple[str, str]] = set()
