"""`shopstream simulate`: a shop day through the real faces only, with its own ground-truth oracle.

Pure parts (no I/O, seeded): `world` (catalog, customers), `traffic/` (one module per capability: what
its source systems send for an order or a SKU), `plan` (the schedule of every delivery, faults
included), `rules` (the documented review rules, mirrored to predict holds), `oracle` (what the system
must show at the end). Thin I/O shell: `driver` (sends, reviews, waits), `check` (reads the read API
and the output topics), `verdict` (the table and JSON). A new capability (tickets, catalog, anomalies)
adds one module under `traffic/`, its expectations in `oracle`, and its checks in `check`.
"""
