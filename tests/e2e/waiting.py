"""Waiting for the stack's projections: a product created a moment ago is not yet known to
every service that reads `catalog.events`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shop_cli.client import ApiError


async def not_yet(call: Callable[[], Awaitable[Any]]) -> Any:
    """The call's result, or None while the service asked has not yet projected what a
    moment-old product or order needs (404/409)."""
    try:
        return await call()
    except ApiError as exc:
        if exc.status in (404, 409):
            return None
        raise
