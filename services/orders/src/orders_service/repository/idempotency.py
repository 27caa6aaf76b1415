"""Checkout idempotency keys (claimed by the checkout's first statement, see checkout.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from orders_service.models import IdempotencyKey


@dataclass(frozen=True, slots=True)
class EarlierRequest:
    request_hash: str
    response: dict[str, Any] | None


async def find(session: AsyncSession, *, user_id: str, key: str) -> EarlierRequest | None:
    row = (
        await session.execute(
            select(IdempotencyKey.request_hash, IdempotencyKey.response).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
            )
        )
    ).first()
    return EarlierRequest(row.request_hash, row.response) if row is not None else None


async def purge(session: AsyncSession, *, created_before: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at < created_before)
        .returning(IdempotencyKey.key)
    )
    return len(result.all())
