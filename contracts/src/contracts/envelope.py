"""CloudEvents 1.0 envelope in Kafka binary mode: metadata in headers, the event as the value."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, TypeVar

from contracts.base import Event
from contracts.ids import new_id
from contracts.topics import source_of
from contracts.types import utc_now

E_co = TypeVar("E_co", bound=Event, covariant=True)
E = TypeVar("E", bound=Event)

SPEC_VERSION = "1.0"


@dataclass(frozen=True, slots=True)
class Envelope(Generic[E_co]):
    """One event with its CloudEvents attributes and the saga's causal chain."""

    data: E_co
    id: str = field(default_factory=new_id)
    time: datetime = field(default_factory=utc_now)
    correlation_id: str = ""
    """Shared by every event of one business flow (one checkout); defaults to `id`."""
    causation_id: str | None = None
    """The id of the event (or request) that caused this one."""
    traceparent: str | None = None
    tracestate: str | None = None

    def __post_init__(self) -> None:
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.id)

    @property
    def type(self) -> str:
        return self.data.ce_type

    @property
    def source(self) -> str:
        return source_of(self.data.topic)

    @property
    def subject(self) -> str:
        return self.data.key

    @property
    def topic(self) -> str:
        return self.data.topic

    @property
    def specversion(self) -> str:
        return SPEC_VERSION

    def with_trace(self, traceparent: str | None, tracestate: str | None = None) -> Envelope[E_co]:
        return replace(self, traceparent=traceparent, tracestate=tracestate)


def caused_by(cause: Envelope[Event], event: E) -> Envelope[E]:
    """An envelope for `event` that continues the flow of `cause` (same correlation, trace)."""
    return Envelope(
        data=event,
        correlation_id=cause.correlation_id,
        causation_id=cause.id,
        traceparent=cause.traceparent,
        tracestate=cause.tracestate,
    )
