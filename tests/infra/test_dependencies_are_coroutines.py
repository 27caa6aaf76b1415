"""Every route's dependencies and endpoint are coroutines, in every service and the gateway.

FastAPI runs a plain `def` dependency (or a plain generator) on a worker thread. For the
one-line lookups our dependencies do, the hand-off to the thread pool and back costs more than
the work, on every request that uses them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

APPS = {
    "auth": "auth_service.app",
    "users": "users_service.app",
    "catalog": "catalog_service.app",
    "inventory": "inventory_service.app",
    "orders": "orders_service.app",
    "payments": "payments_service.app",
    "shipping": "shipping_service.app",
    "notifications": "notifications_service.app",
    "gateway": "gateway.app",
}


def _runs_on_the_loop(call: Any) -> bool:
    function = call if inspect.isroutine(call) or inspect.isclass(call) else call.__call__
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def _threaded(dependant: Any) -> Iterator[str]:
    for sub in dependant.dependencies:
        if sub.call is not None and not _runs_on_the_loop(sub.call):
            yield getattr(sub.call, "__qualname__", repr(sub.call))
        yield from _threaded(sub)


@pytest.mark.parametrize("service", sorted(APPS))
def test_no_route_hands_work_to_the_thread_pool(service: str) -> None:
    app: FastAPI = importlib.import_module(APPS[service]).build_app()
    routes = list(_api_routes(app.routes))
    assert routes, f"{service}: no API routes found (has FastAPI's route layout changed?)"
    threaded = {
        f"{route.path}: {name}"
        for route in routes
        for name in [
            *_threaded(route.dependant),
            *([] if _runs_on_the_loop(route.endpoint) else [f"endpoint {route.name}"]),
        ]
    }
    assert threaded == set(), f"{service}: run on a worker thread: {sorted(threaded)}"
