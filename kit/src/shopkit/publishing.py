"""Sending a relay round's events to Kafka so that one event's failure stays that event's.

Both relays (PostgreSQL outbox rows, MongoDB document outboxes) send at most one event per key
per round and mark only what the broker acknowledged. An event the broker will not take (a
record larger than its topic allows, a partition short of in-sync replicas, a topic not created
yet, a refused authorization) used to end the whole round and restart the relay: every other
aggregate of the service then waited behind it for as long as it kept failing. Here every event
is sent on its own, a failure holds back only its key (and, for a failure before the event was
queued, its topic) with a backoff of its own, and the rest of the round goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from shopkit.loops import backoff_seconds


@dataclass(frozen=True)
class Outgoing:
    topic: str
    """The topic as stored, without the relay's namespace."""
    key: str
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Failure:
    error: BaseException
    topic_wide: bool = False
    """The send failed before the event was queued for its partition (the topic's metadata, its
    authorization, a full send buffer): every event of the topic would wait the same way."""
    attempted: bool = True
    """False for an event not sent because an earlier one of its topic failed topic-wide in the
    same round (each would wait out the same timeout again)."""


Outcome = Failure | None
"""None: acknowledged by the broker."""


async def send_each(
    producer: AIOKafkaProducer, messages: Sequence[Outgoing], *, namespace: str = ""
) -> list[Outcome]:
    """Send every message and wait for the broker's answers; one outcome per message, in order.

    Each topic's messages are queued by a task of their own when the round has several topics:
    a send that waits for a topic's metadata (a topic not created yet waits the whole request
    timeout) then holds up only that topic's messages."""
    by_topic: dict[str, list[int]] = {}
    for index, message in enumerate(messages):
        by_topic.setdefault(message.topic, []).append(index)
    queued: list[asyncio.Future[Any] | Failure | None] = [None] * len(messages)

    async def queue(indexes: list[int]) -> None:
        for position, index in enumerate(indexes):
            message = messages[index]
            try:
                queued[index] = await producer.send(
                    namespace + message.topic,
                    value=message.value,
                    key=message.key.encode(),
                    headers=message.headers,
                )
            except MessageSizeTooLargeError as exc:  # this record only
                queued[index] = Failure(exc)
            except Exception as exc:
                queued[index] = Failure(exc, topic_wide=True)
                for later in indexes[position + 1 :]:
                    # Each would wait out the same failure again: not tried this round.
                    queued[later] = Failure(exc, topic_wide=True, attempted=False)
                return

    if len(by_topic) == 1:
        await queue(next(iter(by_topic.values())))
    else:
        await asyncio.gather(*(queue(indexes) for indexes in by_topic.values()))
    futures = [item for item in queued if isinstance(item, asyncio.Future)]
    answers = iter(await asyncio.gather(*futures, return_exceptions=True))
    outcomes: list[Outcome] = []
    for item in queued:
        if isinstance(item, asyncio.Future):
            answer = next(answers)
            outcomes.append(Failure(answer) if isinstance(answer, BaseException) else None)
        elif item is None:  # cannot happen: every index belongs to one topic's queue
            raise RuntimeError("a message was neither queued nor failed")
        else:
            outcomes.append(item)
    return outcomes


@dataclass
class _Hold:
    until: float
    failures: int


@dataclass
class Holds:
    """Keys and topics held back after a failed send, each until its own backoff has passed.

    Kept in memory: a relay that restarts tries everything once more at once, which is what a
    restart is for. A key's later events wait behind a held one anyway (one event per key per
    round), so holding a key never reorders it."""

    first_seconds: float = 0.2
    max_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _keys: dict[str, _Hold] = field(default_factory=dict)
    _topics: dict[str, _Hold] = field(default_factory=dict)

    def held_keys(self) -> list[str]:
        now = self.clock()
        return [key for key, hold in self._keys.items() if hold.until > now]

    def held_topics(self) -> list[str]:
        now = self.clock()
        return [topic for topic, hold in self._topics.items() if hold.until > now]

    def is_held(self, message: Outgoing) -> bool:
        now = self.clock()
        key, topic = self._keys.get(message.key), self._topics.get(message.topic)
        return (key is not None and key.until > now) or (topic is not None and topic.until > now)

    def record(self, message: Outgoing, outcome: Outcome) -> None:
        if outcome is None:
            self._keys.pop(message.key, None)
            self._topics.pop(message.topic, None)
        elif outcome.attempted:
            self._hold(self._topics if outcome.topic_wide else self._keys, message)

    def seconds_to_next_release(self) -> float | None:
        now = self.clock()
        waits = [h.until - now for h in (*self._keys.values(), *self._topics.values())]
        future = [wait for wait in waits if wait > 0]
        return min(future) if future else None

    def _hold(self, holds: dict[str, _Hold], message: Outgoing) -> None:
        name = message.topic if holds is self._topics else message.key
        failures = holds[name].failures + 1 if name in holds else 1
        delay = backoff_seconds(self.first_seconds, self.max_seconds, failures)
        holds[name] = _Hold(until=self.clock() + delay, failures=failures)


class PublishError(Exception):
    """A relay's round could not go on; the relay reconnects and tries again with backoff."""


@dataclass
class Stall:
    """Whether a relay's sends have all failed for so long that its producer should be replaced:
    a producer can be left unusable (a fenced idempotent producer, a lost sequence), which no
    hold and no retry of the same producer gets past."""

    limit_seconds: float
    clock: Callable[[], float] = time.monotonic
    _since: float | None = None

    def note_round(self, *, acknowledged: bool, failed: bool) -> None:
        """Record a round; raises `PublishError` (once, then the watch starts over) when nothing
        at all was acknowledged for longer than the limit while sends kept failing."""
        now = self.clock()
        if acknowledged:
            self._since = None
        elif failed and self._since is None:
            self._since = now
        if self._since is not None and now - self._since > self.limit_seconds:
            self._since = None
            raise PublishError(f"no event acknowledged for {self.limit_seconds:.0f} s")
