"""Library instrumentation for traces: httpx, asyncpg, Redis and PyMongo.

httpx is always instrumented: it writes `traceparent` into outgoing requests, which keeps one
trace across services even when nothing is exported. The database and cache clients only add
child spans, so they are instrumented only once spans are actually exported.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_instrumented: set[str] = set()


def _instrument(name: str, instrumentor: Any) -> None:
    if name in _instrumented:
        return
    _instrumented.add(name)
    try:
        instrumentor.instrument()
    except Exception:  # a missing optional library must not stop the service
        log.warning("instrumentation skipped", extra={"instrumentor": name}, exc_info=True)


def instrument_libraries(exporter: str) -> None:
    """Instrument client libraries once per process (idempotent, never undone)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    _instrument("httpx", HTTPXClientInstrumentor())
    if exporter == "none":
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    _instrument("asyncpg", AsyncPGInstrumentor())  # type: ignore[no-untyped-call]
    _instrument("redis", RedisInstrumentor())
    _instrument("pymongo", PymongoInstrumentor())
