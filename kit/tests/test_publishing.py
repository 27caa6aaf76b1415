"""The relays' bookkeeping of failed sends: per-key and per-topic holds, and the stall watch."""

from __future__ import annotations

import pytest
from shopkit.publishing import Failure, Holds, Outgoing, PublishError, Stall


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _message(key: str, topic: str = "orders.events") -> Outgoing:
    return Outgoing(topic=topic, key=key, value=b"{}", headers=[])


def test_a_refused_event_holds_its_key_with_a_doubling_backoff_until_it_is_acknowledged() -> None:
    clock = Clock()
    holds = Holds(first_seconds=0.2, max_seconds=1.0, clock=clock)
    refused, other = _message("order-1"), _message("order-2")
    holds.record(refused, Failure(RuntimeError("too large")))
    assert holds.is_held(refused) and not holds.is_held(other)
    assert holds.held_keys() == ["order-1"] and holds.held_topics() == []
    assert holds.seconds_to_next_release() == pytest.approx(0.2)
    clock.now += 0.2
    assert not holds.is_held(refused)  # tried again once its own backoff passed
    holds.record(refused, Failure(RuntimeError("too large")))
    assert holds.seconds_to_next_release() == pytest.approx(0.4)
    for _ in range(5):
        holds.record(refused, Failure(RuntimeError("too large")))
    assert holds.seconds_to_next_release() == pytest.approx(1.0)  # capped
    holds.record(refused, None)
    assert not holds.is_held(refused) and holds.seconds_to_next_release() is None


def test_a_failure_before_queueing_holds_the_whole_topic_and_an_untried_event_holds_nothing() -> (
    None
):
    clock = Clock()
    holds = Holds(clock=clock)
    first, second = _message("a", "missing.events"), _message("b", "missing.events")
    holds.record(first, Failure(RuntimeError("unknown topic"), topic_wide=True))
    holds.record(second, Failure(RuntimeError("unknown topic"), topic_wide=True, attempted=False))
    assert holds.held_topics() == ["missing.events"] and holds.held_keys() == []
    assert holds.is_held(_message("c", "missing.events"))
    assert not holds.is_held(_message("c", "orders.events"))
    holds.record(_message("c", "missing.events"), None)  # the topic works again
    assert not holds.is_held(second)


def test_the_stall_watch_fires_once_after_the_limit_of_failures_without_an_ack() -> None:
    clock = Clock()
    stall = Stall(60.0, clock=clock)
    stall.note_round(acknowledged=False, failed=True)
    clock.now += 59
    stall.note_round(acknowledged=False, failed=True)
    stall.note_round(acknowledged=True, failed=True)  # progress: the watch restarts
    clock.now += 59
    stall.note_round(acknowledged=False, failed=True)
    clock.now += 61
    with pytest.raises(PublishError):
        stall.note_round(acknowledged=False, failed=True)
    stall.note_round(acknowledged=False, failed=False)  # it starts over after firing
    clock.now += 1000
    stall.note_round(acknowledged=False, failed=False)  # idle is no stall
