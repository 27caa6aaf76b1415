"""Kafka restarts while events are being published and consumed: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shopkit.testing import eventually, fetchval
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import new_id

from .probe import ProbeHappened
from .test_backbone import consumer_for, effect_counts, publish, relay_for, running

STACK = Path(__file__).resolve().parents[2] / "infra/local/stack.sh"


async def _stack(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "bash", str(STACK), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()


async def test_broker_restart_during_publishing_loses_and_duplicates_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, namespace: str
) -> None:
    events = [ProbeHappened(probe_id=new_id(), value=i) for i in range(1500)]
    batches = [events[i : i + 50] for i in range(0, len(events), 50)]

    async def produce() -> None:
        for batch in batches:
            await publish(sessionmaker, batch)
            await asyncio.sleep(0.1)

    async def restart_broker() -> None:
        await asyncio.sleep(0.8)
        await _stack("down", "kafka")
        await asyncio.sleep(1)
        await _stack("up", "kafka")

    async with running(relay_for(database_url, namespace), consumer_for(sessionmaker, namespace)):
        await asyncio.gather(produce(), restart_broker())
        await eventually(lambda: _all_applied(sessionmaker, len(events)), timeout=180, interval=1)
        await eventually(
            lambda: fetchval(database_url, "SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"),
            timeout=60,
        )
    counts = await effect_counts(sessionmaker)
    assert set(counts) == {e.probe_id for e in events}
    assert set(counts.values()) == {1}


async def _all_applied(sessionmaker: async_sessionmaker[AsyncSession], expected: int) -> bool:
    return len(await effect_counts(sessionmaker)) >= expected
