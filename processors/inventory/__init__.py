"""Inventory processor: available-to-promise (ATP) stock per SKU (pure core in `atp`)."""
