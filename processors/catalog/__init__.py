"""The catalog processor: product data quality, mastership and price approvals (pure core + thin adapter)."""
