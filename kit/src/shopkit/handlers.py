"""Event handler registries: an explicit `{EventType: handler}` map per consumer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from contracts import Envelope, Event

E = TypeVar("E", bound=Event)
C = TypeVar("C")

Handler = Callable[[Envelope[Any], C], Awaitable[None]]


class EventHandlers(Generic[C]):
    """The events one consumer reacts to, each with exactly one handler.

    Handlers receive the envelope and a context (a unit of work); they must be idempotent with
    respect to their effect, which the inbox guarantees for the PostgreSQL runtime.
    """

    def __init__(
        self,
        name: str,
        *,
        across_partitions: bool = False,
        by_partition_number: bool = False,
        linger_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self.across_partitions = across_partitions
        """Apply what all partitions brought in one transaction instead of one per partition:
        far fewer transactions for a group that reads many partitions, but no concurrency
        between partitions (leave it off for handlers that wait on the network)."""
        self.by_partition_number = by_partition_number
        """One transaction per partition number, across the subscribed topics: every topic is
        keyed by the same aggregate id over the same number of partitions, so the events of one
        aggregate from different topics are applied together instead of by two concurrent
        transactions waiting on each other's row locks; different numbers stay concurrent."""
        self.linger_seconds = linger_seconds
        """How long the broker may hold a fetch to gather more messages: fewer fetches and
        larger batches, for consumers that may trail by that much (projections, notices),
        never the saga's critical path."""
        self._handlers: dict[str, Handler[C]] = {}
        self._types: dict[str, type[Event]] = {}

    def on(
        self, event_type: type[E]
    ) -> Callable[
        [Callable[[Envelope[E], C], Awaitable[None]]], Callable[[Envelope[E], C], Awaitable[None]]
    ]:
        def register(
            handler: Callable[[Envelope[E], C], Awaitable[None]],
        ) -> Callable[[Envelope[E], C], Awaitable[None]]:
            if event_type.ce_type in self._handlers:
                raise ValueError(f"{self.name}: {event_type.__name__} already has a handler")
            self._handlers[event_type.ce_type] = handler
            self._types[event_type.ce_type] = event_type
            return handler

        return register

    def handler_for(self, ce_type: str) -> Handler[C] | None:
        return self._handlers.get(ce_type)

    @property
    def topics(self) -> list[str]:
        return sorted({event_type.topic for event_type in self._types.values()})

    @property
    def event_types(self) -> list[type[Event]]:
        return list(self._types.values())
