"""Logical topic names as constants: the names code refers to, bound to `topics.yaml`.

`topics.yaml` defines the topics; code that must name one (a processor's inputs and outputs, a
connector's target) imports it from here instead of repeating a string literal, so a renamed or
mistyped topic is an import error, not a silent new topic. A unit test (tests/unit/test_topology_names.py)
keeps this module and the shipped topology equal in both directions. Physical names add
SHOPSTREAM_TOPIC_PREFIX (`Settings.topic(name)`); DLQ names are not here: they come from the topology
(`Topology.dlq_routes`), except `CONNECTORS_DLQ`, the DLQ no topic owns.
"""

from __future__ import annotations

from .topics import CONNECTORS_DLQ, changelog_name

# inputs (published by connectors)
SHOP_ORDERS = "shop.orders"
PAYMENTS = "payments"
INVENTORY_STOCK = "inventory.stock"
FULFILLMENT_SHIPMENTS = "fulfillment.shipments"
RETURNS = "returns"
CATALOG_PRODUCTS = "catalog.products"
SUPPORT_TICKETS = "support.tickets"

# derived and internal (published by processors)
ORDERS_STATE = "orders.state"
CATALOG_QUALITY = "catalog.quality"
ORDERS_STATUS_CHANGES = "orders.status-changes"
INVENTORY_RESERVATIONS = "inventory.reservations"
INVENTORY_ATP = "inventory.atp"
COMMANDS_SHOP = "commands.shop"
COMMANDS_SHOP_RESULTS = "commands.shop.results"
COMMANDS_ERP = "commands.erp"
COMMANDS_FULFILLMENT = "commands.fulfillment"
COMMANDS_PAYMENTS = "commands.payments"
COMMANDS_SUPPORT = "commands.support"
ALERTS_ANOMALIES = "alerts.anomalies"
REVIEW_QUEUE = "review.queue"
REVIEW_DECISIONS = "review.decisions"
DLQ_REPLAY_LOG = "dlq.replay-log"
ANOMALIES_FACTS = "anomalies.facts"

# State-store changelogs of the runner (`<processor>-<store>-changelog`)
ORDERS_CHANGELOG = changelog_name("orders", "orders")
INVENTORY_CHANGELOG = changelog_name("inventory", "atp")
ANOMALIES_CHANGELOG = changelog_name("anomalies", "engine")
CATALOG_CHANGELOG = changelog_name("catalog", "products")
SHOP_WRITER_CHANGELOG = changelog_name("shop-writer", "skus")

__all__ = [
    "ALERTS_ANOMALIES", "ANOMALIES_CHANGELOG", "ANOMALIES_FACTS", "CATALOG_CHANGELOG", "CATALOG_PRODUCTS",
    "CATALOG_QUALITY",
    "COMMANDS_ERP", "COMMANDS_FULFILLMENT", "COMMANDS_PAYMENTS",
    "COMMANDS_SHOP", "COMMANDS_SHOP_RESULTS", "COMMANDS_SUPPORT", "CONNECTORS_DLQ", "DLQ_REPLAY_LOG",
    "FULFILLMENT_SHIPMENTS",
    "INVENTORY_ATP", "INVENTORY_CHANGELOG", "INVENTORY_RESERVATIONS", "INVENTORY_STOCK", "ORDERS_CHANGELOG",
    "ORDERS_STATE", "ORDERS_STATUS_CHANGES", "PAYMENTS", "RETURNS", "REVIEW_DECISIONS", "REVIEW_QUEUE", "SHOP_ORDERS",
    "SHOP_WRITER_CHANGELOG",
    "SUPPORT_TICKETS",
]
