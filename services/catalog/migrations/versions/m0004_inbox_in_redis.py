"""Drop the `inbox` collection: the consumers' inbox records are Redis keys now.

FerretDB 1.x answered every lookup in that collection by reading all of it (see
`shopkit.mongo_outbox.MongoInbox`). The records it held only turned redeliveries into no-ops
for idempotent handlers, so nothing is carried over: an event redelivered once after this
migration is applied again, harmlessly.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

revision = "m0004"


async def upgrade(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db.drop_collection("inbox")
