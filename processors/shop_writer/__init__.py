"""Shop stock writer: SyncShopStock from commands.shop to the shop's Admin API (pure core in `core`)."""
