"""A request transaction with after-commit actions, for changes mirrored outside PostgreSQL.

Like `shopkit.db.SessionDep` (commit when the route returns, roll back when it raises, both
before the response is sent), plus actions that run only once the commit succeeded: the cart
copy in Redis must show a change only after PostgreSQL holds it, and before the client can
read its own write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from shopkit.app import sessionmaker_of
from sqlalchemy.ext.asyncio import AsyncSession

AfterCommit = Callable[[], Awaitable[None]]


class Transaction:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._after_commit: list[AfterCommit] = []

    def after_commit(self, action: AfterCommit) -> None:
        self._after_commit.append(action)

    async def run_after_commit(self) -> None:
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            await action()


async def request_transaction(request: Request) -> AsyncIterator[Transaction]:
    async with sessionmaker_of(request.app)() as session:
        async with session.begin():
            transaction = Transaction(session)
            yield transaction
        await transaction.run_after_commit()


TransactionDep = Annotated[Transaction, Depends(request_transaction, scope="function")]
