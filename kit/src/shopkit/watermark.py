"""The time up to which a consumer group has applied what was appended to its topics.

A job that acts on deadlines (a hold that expires, a payment left waiting) must not act on the
clock alone: after an outage, a restart or a backlog, events that arrived in time may still sit
unread in Kafka, and acting first would overrule them. Such a job compares its deadlines with
this watermark instead of with the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from aiokafka import TopicPartition

from shopkit.handlers import EventHandlers
from shopkit.kafka import GroupProgress
from shopkit.settings import ServiceSettings

C = TypeVar("C")

MAX_PENDING = 32
"""Snapshots remembered while the group trails (one per round in which the job asks)."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    taken_at: datetime
    ends: dict[TopicPartition, int]


class ConsumedWatermark:
    """A time T such that every event appended to the group's topics before T is applied.

    Each `advance(now)` notes the topics' end offsets as of `now` (read after `now`, so they
    cover everything appended before it), then returns the newest noted time whose ends the
    group's committed offsets have all reached. Snapshots the group has not reached yet are kept
    for later rounds; a round that cannot reach Kafka raises, and the watermark stays where it
    was. It only ever moves forward.
    """

    def __init__(self, progress: GroupProgress, *, max_pending: int = MAX_PENDING) -> None:
        self.progress = progress
        self.max_pending = max_pending
        self.value: datetime | None = None
        self._pending: list[_Snapshot] = []

    async def advance(self, now: datetime) -> datetime | None:
        snapshot = _Snapshot(taken_at=now, ends=await self.progress.end_offsets())
        if len(self._pending) < self.max_pending:
            self._pending.append(snapshot)
        else:
            # The oldest snapshots are the next the group will reach; the newest one is
            # replaced so that, once the group catches up, the watermark jumps to the present.
            self._pending[-1] = snapshot
        committed = await self.progress.committed()
        reached = [
            index
            for index, pending in enumerate(self._pending)
            if all(committed.get(tp, 0) >= end for tp, end in pending.ends.items())
        ]
        if reached:
            newest = self._pending[reached[-1]]
            # End offsets only grow, so every older snapshot is reached as well.
            self._pending = self._pending[reached[-1] + 1 :]
            if self.value is None or newest.taken_at > self.value:
                self.value = newest.taken_at
        return self.value

    async def close(self) -> None:
        await self.progress.close()


def group_progress(settings: ServiceSettings, handlers: EventHandlers[C]) -> GroupProgress:
    """The progress of the consumer group the service runs for `handlers`, on the (namespaced)
    topics that group subscribes to: the same names the app factory gives the consumer."""
    return GroupProgress(
        settings.kafka_bootstrap,
        group=settings.consumer_group(handlers.name),
        topics=[settings.kafka_namespace + topic for topic in handlers.topics],
    )
