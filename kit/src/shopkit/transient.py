"""Which failures belong to the infrastructure (and are worth retrying) rather than the input."""

from __future__ import annotations

import asyncio

_TRANSIENT_NAMES = frozenset(
    {
        # asyncpg: the server is away, restarting, out of connections, or chose us as a victim
        "PostgresConnectionError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "DeadlockDetectedError",
        "LockNotAvailableError",  # lock_timeout: a wait given up, as a deadlock victim
        "SerializationError",
        "AdminShutdownError",
        "QueryCanceledError",
        # SQLAlchemy wrappers of the same
        "OperationalError",
        "DisconnectionError",
        # SQLAlchemy's pool found no free connection in time (not the builtin TimeoutError):
        # the pool is saturated, the event is fine
        "TimeoutError",
        # PyMongo, redis-py, aiokafka, httpx
        "AutoReconnect",
        "ConnectionFailure",
        "ServerSelectionTimeoutError",
        "NetworkTimeout",
        "KafkaConnectionError",
        "NodeNotReadyError",
        "RequestTimedOutError",
        "TransportError",
    }
)


class Unavailable(Exception):  # noqa: N818 - reads as the condition it is
    """Base of a service's own "the dependency is away, try again later" errors (a payment
    provider answering 429 or 5xx): retried like any outage, never parked."""


def is_transient(exc: BaseException) -> bool:
    """True when the failure is the infrastructure's (worth retrying), judged on the whole
    exception chain: connection errors, timeouts, deadlocks and serialization failures."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, TimeoutError, asyncio.TimeoutError, Unavailable)):
            return True
        if getattr(current, "connection_invalidated", False):
            return True
        if any(klass.__name__ in _TRANSIENT_NAMES for klass in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False
