"""Waiting for the stack's projections: a product created a moment ago is not yet known to
every service that reads `catalog.events`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shop_cli.client import ApiError


@dataclass(frozen=True)
class Refused:
    """A 404/409 answer while waiting: false, so `eventually` keeps polling, and shown whole
    when the wait gives up, so a refusal that never ends says what it was."""

    error: ApiError

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Refused({self.error}; {self.error.body})"


async def not_yet(call: Callable[[], Awaitable[Any]]) -> Any:
    """The call's result, or a false `Refused` while the service asked has not yet projected
    what a moment-old product or order needs (404/409)."""
    try:
        return await call()
    except ApiError as exc:
        if exc.status in (404, 409):
            return Refused(exc)
        raise
