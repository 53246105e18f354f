"""Inventory processor: available-to-promise (ATP) stock per SKU (pure core: `atp`, `figures`, `sku_state`)."""
