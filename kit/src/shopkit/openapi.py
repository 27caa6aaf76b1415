"""The OpenAPI document of a service, with its errors documented as they are sent.

FastAPI documents error responses as `application/json` and its own validation-error shape;
every error here leaves as an RFC 9457 `application/problem+json` document. This rewrites each
4xx/5xx response to that media type and schema, adds the errors any operation can answer (401
where a token is involved, 500), and a `default` problem response for anything else.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from shopkit.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; extension members may be present.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "URI naming the kind of problem."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Validation errors (422): where and what.",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_GENERIC = {
    "401": "Missing, invalid, expired or revoked access token",
    "500": "Unexpected error (no internal detail is disclosed)",
    "default": "Any other error, as a problem document",
}


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": dict(_PROBLEM_CONTENT)}


def with_problem_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a document's error responses to problem+json (in place; returned for chaining)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for item in document.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code.startswith(("4", "5")) or code == "default":
                    response["content"] = dict(_PROBLEM_CONTENT)
            needs_token = bool(operation.get("security"))
            for code, description in _GENERIC.items():
                if code == "401" and not needs_token:
                    continue
                responses.setdefault(code, problem_response(description))
    referenced = json.dumps(document.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in schemas and f'"#/components/schemas/{unused}"' not in referenced:
            schemas.pop(unused)
    return document


def with_optional_tokens(document: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """Mark operations whose token is optional (`OptionalUser` without `CurrentUser`) with an
    empty requirement besides the bearer one, as OpenAPI spells "authentication optional".

    FastAPI documents both kinds alike (one bearer scheme), so a reader, and the gateway that
    merges the documents, could not tell a personalised public read from a token-only route.
    """
    from shopkit.security import current_principal, optional_principal

    # Route contexts, as FastAPI's own document builder walks them: included routers are not
    # flattened into `app.routes`, and a context carries its router's dependencies too.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        calls = _dependency_calls(route.dependant)
        if optional_principal not in calls or current_principal in calls:
            continue
        item = document.get("paths", {}).get(route.path_format or "", {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            security = operation.get("security") if operation else None
            if security and {} not in security:
                operation["security"] = [{}, *security]
    return document


def _dependency_calls(dependant: Dependant) -> set[Any]:
    calls: set[Any] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        calls.add(current.call)
        pending.extend(current.dependencies)
    return calls


def install_problem_openapi(app: FastAPI) -> None:
    """Serve the document with problem+json errors (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = with_problem_errors(with_optional_tokens(document, app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
