"""Collections and indexes of the catalog database."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

revision = "m0001"


async def upgrade(db: AsyncDatabase[dict[str, Any]]) -> None:
    # The inbox of the catalog's consumers: one row per (consumer, event id).
    await db.inbox.create_index([("consumer", ASCENDING), ("event_id", ASCENDING)], unique=True)
    # Documents with events not yet published (document outbox), oldest first.
    await db.products.create_index([("outbox_pending", ASCENDING), ("updated_at", DESCENDING)])
