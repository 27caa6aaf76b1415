"""Which failures are the infrastructure's (retried without limit) and which the input's (parked
after a few attempts)."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy.exc
from shopkit.transient import Unavailable, is_transient


class _ProviderAway(Unavailable):
    """A service's own "the dependency is away" error, as payments declares for Stripe."""


def _chained(outer: Exception, inner: BaseException) -> Exception:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    "failure",
    [
        # The pool found no free connection in time: saturation, not a bad event. It was
        # counted as a handler failure, and a burst of load parked healthy events.
        sqlalchemy.exc.TimeoutError("QueuePool limit of size 20 overflow 0 reached"),
        _ProviderAway("stripe answered 429"),
        _chained(RuntimeError("capture failed"), _ProviderAway("stripe answered 503")),
        ConnectionRefusedError(),
        _chained(
            sqlalchemy.exc.DBAPIError("x", None, Exception()), asyncpg.CannotConnectNowError()
        ),
    ],
    ids=["pool-timeout", "unavailable", "unavailable-chained", "refused", "asyncpg-starting"],
)
def test_outages_are_transient(failure: Exception) -> None:
    assert is_transient(failure)


@pytest.mark.parametrize(
    "failure",
    [
        ValueError("bad amount"),
        KeyError("sku"),
        asyncpg.exceptions.DataError("value out of int32 range"),
        RuntimeError("the provider refused the refund"),
    ],
    ids=["value", "key", "data", "refusal"],
)
def test_the_inputs_failures_are_not(failure: Exception) -> None:
    assert not is_transient(failure)
