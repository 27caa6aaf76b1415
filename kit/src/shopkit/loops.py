"""Background loops that stop promptly: sleeps cut short by the stop event, periodic jobs that
survive their own failures, and shutdown steps whose errors must not hide the real one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when stopping; True when `stop` is set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


def backoff_seconds(first: float, cap: float, step: int) -> float:
    """The wait before retry number `step` (1, 2, ...): `first` doubled each step, at most `cap`.

    The exponent is capped before the power is taken: a retry loop that counts an outage's
    steps without end would otherwise reach `2.0 ** 1024`, an OverflowError that ends the loop
    instead of the wait."""
    return min(first * 2.0 ** min(max(step - 1, 0), 60), cap)


async def every(
    stop: asyncio.Event,
    seconds: float,
    work: Callable[[], Awaitable[bool | None]],
    *,
    name: str,
    wait_first: bool = False,
) -> None:
    """Run `work` every `seconds` until `stop`.

    A failing round is logged and retried at the next interval (a background job must outlive
    a database restart). A round that returns True found more than one batch of work and runs
    again at once instead of waiting. With `wait_first` the first round waits one interval
    (work the service just did at startup, or that is only due later).
    """
    if wait_first and await sleep_or_stop(stop, seconds):
        return
    while not stop.is_set():
        busy = False
        try:
            busy = bool(await work())
        except Exception:
            log.exception("background job failed; retrying next round", extra={"job": name})
        if not busy and await sleep_or_stop(stop, seconds):
            return


async def close_quietly(awaitable: Awaitable[Any]) -> None:
    """Await a shutdown step, logging instead of raising: closing after a failure must not
    replace that failure with its own."""
    try:
        await awaitable
    except Exception:
        log.debug("ignored error while closing", exc_info=True)
