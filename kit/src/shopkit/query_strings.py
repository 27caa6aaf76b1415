"""A query parameter documented as one value is refused when the query string repeats it.

Starlette keeps every value of `?max_price=abc&max_price=100` and FastAPI validates the last
one only: the request was answered as `?max_price=100`, though the first value is not an
integer and the OpenAPI document promises none but an integer there. Refused instead (422, the
same problem as any other invalid parameter), so what the schema says is what is accepted.
Parameters declared as lists (`?sku=a&sku=b`) keep their repeats.
"""

from __future__ import annotations

import types
from collections import Counter
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

_MANY = (list, tuple, set, frozenset, Sequence, AbstractSet)

_SINGLE_VALUED = "_shop_single_valued_query"
"""Attribute of a route: the query parameters that take one value, worked out on its first
request (kept on the route itself: routes compare by value and cannot key a cache)."""


def _takes_many(annotation: Any) -> bool:
    """True for `list[str]`, `list[str] | None`, `Annotated[tuple[...], ...]` and the like."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _takes_many(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(_takes_many(arg) for arg in get_args(annotation))
    kind = origin or annotation
    return isinstance(kind, type) and issubclass(kind, _MANY) and not issubclass(kind, (str, bytes))


def _query_fields(dependant: Dependant) -> Iterator[Any]:
    yield from dependant.query_params
    for sub in dependant.dependencies:
        yield from _query_fields(sub)


def _single_valued(route: APIRoute) -> frozenset[str]:
    names: frozenset[str] | None = getattr(route, _SINGLE_VALUED, None)
    if names is None:
        names = frozenset(
            field.alias
            for field in _query_fields(route.dependant)
            if not _takes_many(field.field_info.annotation)
        )
        setattr(route, _SINGLE_VALUED, names)
    return names


async def refuse_repeated_query_values(request: Request) -> None:
    """A dependency of every route (`shopkit.app`): 422 when a one-value parameter repeats."""
    query = request.scope.get("query_string")
    route = request.scope.get("route")
    if not query or not isinstance(route, APIRoute):
        return
    names = _single_valued(route)
    if not names:
        return
    counts = Counter(key for key, _ in request.query_params.multi_items() if key in names)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": "Given more than once; this parameter takes one value",
                    "type": "repeated_value",
                }
                for name in repeated
            ]
        )
