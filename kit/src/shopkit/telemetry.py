"""Library instrumentation for traces: httpx, SQLAlchemy/asyncpg, Redis and PyMongo."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_instrumented = False


def instrument_libraries() -> None:
    """Instrument client libraries once per process (idempotent)."""
    global _instrumented
    if _instrumented:
        return
    _instrumented = True
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (
        HTTPXClientInstrumentor(),
        AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]
        RedisInstrumentor(),
        PymongoInstrumentor(),
    ):
        try:
            instrumentor.instrument()
        except Exception:  # a missing optional library must not stop the service
            log.warning(
                "instrumentation skipped",
                extra={"instrumentor": type(instrumentor).__name__},
                exc_info=True,
            )
