"""Kafka topics: one per producing context, keyed by the aggregate that must stay ordered."""

from __future__ import annotations

from typing import Final

PARTITIONS: Final = 6

AUTH: Final = "auth.events"
USERS: Final = "users.events"
CATALOG: Final = "catalog.events"
INVENTORY: Final = "inventory.events"
ORDERS: Final = "orders.events"
PAYMENTS: Final = "payments.events"
SHIPPING: Final = "shipping.events"
NOTIFICATIONS: Final = "notifications.events"

ALL: Final = (AUTH, USERS, CATALOG, INVENTORY, ORDERS, PAYMENTS, SHIPPING, NOTIFICATIONS)


def dead_letter_topic(consumer_group: str) -> str:
    """Where a consumer group parks messages it could not handle."""
    return f"{consumer_group}.dlq"


def source_of(topic: str) -> str:
    """CloudEvents `source` of the service that owns a topic, e.g. `/services/orders`."""
    return f"/services/{topic.split('.', 1)[0]}"
