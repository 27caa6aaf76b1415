"""The contract between a service and the gateway's edge cache.

A service marks a response the gateway may keep and hand to other callers with
`Surrogate-Control: max-age=N` and tags it with `Surrogate-Key` (the Edge Architecture
headers CDNs use for the same purpose; the gateway strips both before answering). It then owes
the gateway a purge, on the Redis channel below, after every write that could change such a
response. Only responses that are the same for every non-admin caller may be marked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from shopkit.loops import close_quietly, sleep_or_stop

log = logging.getLogger(__name__)

SURROGATE_CONTROL = "surrogate-control"
SURROGATE_KEY = "surrogate-key"
DEFAULT_PURGE_CHANNEL = "shop:edge:purge"
"""Redis pub/sub channel carrying the surrogate keys to purge, one key per message."""


def shareable(*, key: str, max_age: int) -> dict[str, str]:
    """Headers letting the gateway keep a response `max_age` seconds under surrogate `key`."""
    return {SURROGATE_CONTROL: f"max-age={max_age}", SURROGATE_KEY: key}


def parse_max_age(surrogate_control: str | None) -> int | None:
    """Seconds a surrogate may keep the response, or None when it may not keep it."""
    if not surrogate_control:
        return None
    for directive in surrogate_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "no-store":
            return None
        if name.lower() == "max-age" and value.isdigit():
            return int(value) or None
    return None


RESUBSCRIBE_SECONDS = 1.0


class PurgeListener(Protocol):
    """What follows the purge channel: told when it hears it, what it hears, and when not."""

    def subscribed(self) -> None:
        """Redis confirmed the subscription: every purge published from now on is heard (any
        published before may have been missed)."""

    def purged(self, key: str) -> None: ...

    def lost(self) -> None:
        """The subscription is gone; purges are not heard until `subscribed` again."""


def _purge_connection(redis_url: str, channel: str) -> Redis:
    """A client for the purge subscription alone. It never reconnects behind the listener's
    back (redis-py would resubscribe silently, and purges sent meanwhile would be missed
    unnoticed), and an idle connection is checked every few seconds."""
    return Redis.from_url(
        redis_url,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=5,
        socket_timeout=10,
        socket_connect_timeout=5,
        socket_keepalive=True,
        client_name=f"edge-purge:{channel}",
    )


async def follow_purges(
    redis_url: str, channel: str, listener: PurgeListener, stop: asyncio.Event
) -> None:
    """Keep a subscription to the purge channel until `stop`, resubscribing after a loss, on a
    connection of its own."""
    redis = _purge_connection(redis_url, channel)
    try:
        while not stop.is_set():
            await _follow_once(redis, channel, listener, stop)
            if await sleep_or_stop(stop, RESUBSCRIBE_SECONDS):
                return
    finally:
        await close_quietly(redis.aclose())


async def _follow_once(
    redis: Redis, channel: str, listener: PurgeListener, stop: asyncio.Event
) -> None:
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(channel)
        while not stop.is_set():
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            if message["type"] == "subscribe":
                listener.subscribed()
            elif message["type"] == "message":
                data = message["data"]
                listener.purged(data.decode() if isinstance(data, bytes) else str(data))
    except (RedisError, OSError) as exc:
        log.warning("purge channel lost", extra={"channel": channel, "error": repr(exc)})
    finally:
        listener.lost()
        await close_quietly(pubsub.aclose())  # type: ignore[no-untyped-call]
