"""Checkout idempotency keys: claimed first, completed with the response, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orders_service.models import IdempotencyKey


@dataclass(frozen=True, slots=True)
class EarlierRequest:
    request_hash: str
    response: dict[str, Any] | None


async def claim(
    session: AsyncSession, *, user_id: str, key: str, request_hash: str
) -> EarlierRequest | None:
    """Claim the key for this transaction; None if claimed, else the request that holds it.

    A concurrent request with the same key blocks on the unique index until the holder's
    transaction ends: if it committed, its request is returned here; if it rolled back, this
    one claims the key. Either way exactly one order is made."""
    while True:
        claimed = await session.execute(
            insert(IdempotencyKey)
            .values(user_id=user_id, key=key, request_hash=request_hash)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if claimed.first() is not None:
            return None
        row = (
            await session.execute(
                select(IdempotencyKey.request_hash, IdempotencyKey.response).where(
                    IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
                )
            )
        ).first()
        if row is not None:
            return EarlierRequest(row.request_hash, row.response)
        # purged between the two statements: claim again


async def complete(
    session: AsyncSession, *, user_id: str, key: str, order_id: str, response: dict[str, Any]
) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(order_id=order_id, response=response)
    )


async def purge(session: AsyncSession, *, created_before: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at < created_before)
        .returning(IdempotencyKey.key)
    )
    return len(result.all())
