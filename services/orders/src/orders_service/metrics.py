"""Metrics of the orders service (on the shared Prometheus registry, served at /metrics)."""

from __future__ import annotations

from prometheus_client import Gauge

STUCK_ORDERS = Gauge(
    "shop_orders_stuck",
    "Orders whose saga has not moved for longer than their status's stuck threshold",
    ["status"],
)
