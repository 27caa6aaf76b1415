"""Transactions with after-commit actions, for work that must only follow a commit.

The cart copy in Redis must show a change only after PostgreSQL holds it, and before the client
can read its own write; a cancelled order's coupon use goes back to the coupon in a short
transaction of its own (service/coupons.py). The actions are kept on the session
(`session.info`), so code deep in a transition can ask for one whichever unit of work owns the
transaction: a request's (`TransactionDep`) or a consumer batch's (consumers.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from shopkit.app import sessionmaker_of
from sqlalchemy.ext.asyncio import AsyncSession

AfterCommit = Callable[[], Awaitable[None]]

_AFTER_COMMIT = "orders_service.after_commit"


def after_commit(session: AsyncSession, action: AfterCommit, *, key: str | None = None) -> None:
    """Run `action` once the session's transaction has committed; with a `key`, once per
    transaction however often it is asked for. Nothing runs if the transaction rolls back."""
    actions: dict[object, AfterCommit] = session.info.setdefault(_AFTER_COMMIT, {})
    actions.setdefault(object() if key is None else key, action)


async def run_after_commit(session: AsyncSession) -> None:
    """Run (and forget) the actions the committed transaction asked for, in order."""
    actions: dict[object, AfterCommit] = session.info.pop(_AFTER_COMMIT, {})
    for action in actions.values():
        await action()


class Transaction:
    """A request's transaction: its session, and actions to run after its commit.

    Like `shopkit.db.SessionDep` (commit when the route returns, roll back when it raises,
    both before the response is sent), plus the after-commit actions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def after_commit(self, action: AfterCommit) -> None:
        after_commit(self.session, action)

    async def run_after_commit(self) -> None:
        await run_after_commit(self.session)


async def request_transaction(request: Request) -> AsyncIterator[Transaction]:
    async with sessionmaker_of(request.app)() as session:
        async with session.begin():
            transaction = Transaction(session)
            yield transaction
        await transaction.run_after_commit()


TransactionDep = Annotated[Transaction, Depends(request_transaction, scope="function")]
