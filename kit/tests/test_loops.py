"""The background-loop helpers every service's jobs run on."""

from __future__ import annotations

import asyncio

import pytest
from shopkit import loops
from shopkit.loops import backoff_seconds, close_quietly, every, sleep_or_stop


async def test_sleep_or_stop_wakes_when_stopped() -> None:
    stop = asyncio.Event()
    assert await sleep_or_stop(stop, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, stop.set)
    assert await asyncio.wait_for(sleep_or_stop(stop, 60), 5) is True


async def test_a_failing_round_is_retried_and_a_busy_one_runs_again_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = asyncio.Event()
    happened: list[str] = []
    outcomes = iter(["fail", "busy", "busy", "idle", "stop"])

    async def work() -> bool:
        outcome = next(outcomes)
        happened.append(outcome)
        if outcome == "fail":
            raise RuntimeError("database restarting")
        if outcome == "stop":
            stop.set()
        return outcome == "busy"

    async def recorded_sleep(stop: asyncio.Event, seconds: float) -> bool:
        happened.append(f"wait {seconds}")
        return stop.is_set()

    monkeypatch.setattr(loops, "sleep_or_stop", recorded_sleep)
    await asyncio.wait_for(every(stop, 7, work, name="test"), 10)

    assert happened == ["fail", "wait 7", "busy", "busy", "idle", "wait 7", "stop", "wait 7"]


async def test_wait_first_skips_the_round_at_startup_and_stop_ends_the_wait() -> None:
    stop = asyncio.Event()
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1

    asyncio.get_running_loop().call_later(0.05, stop.set)
    await asyncio.wait_for(every(stop, 60, work, name="test", wait_first=True), 5)
    assert calls == 0


async def test_close_quietly_swallows_a_shutdown_error_but_not_cancellation() -> None:
    async def broken() -> None:
        raise ConnectionResetError("peer gone")

    await close_quietly(broken())  # no exception

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await close_quietly(cancelled())


def test_backoff_doubles_to_its_cap_and_survives_an_endless_outage() -> None:
    assert [backoff_seconds(0.05, 5.0, step) for step in (1, 2, 3)] == [0.05, 0.1, 0.2]
    assert backoff_seconds(0.05, 5.0, 8) == 5.0
    # A consumer counts an outage's retries without end: step 1025 was 2.0 ** 1024, an
    # OverflowError that ended the consumer's retry loop about 85 minutes into an outage.
    assert backoff_seconds(0.05, 5.0, 1025) == 5.0
    assert backoff_seconds(0.05, 5.0, 10**9) == 5.0
