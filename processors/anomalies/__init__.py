"""Anomalies and KPIs: detectors as data over event-time windows, with robust baselines. Pure core.

`rules` loads `topology/rules/anomalies.yaml`; `facts` reduces canonical events to `Fact`s; `engine`
applies them (dedupe, order index, windows, per-event detectors, KPIs) over one JSON-able state dict;
`windows` (rates and counts against median/MAD baselines, `stats`), `stock` (drift, impossible figures,
repeated oversold, prices) and `alerts` (one open alert per anomaly) hold the detector logic; `kpis`
the hourly KPI buckets and reports. The worker adapter only moves bytes around them.
"""
