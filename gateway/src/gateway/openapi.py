"""One OpenAPI 3.1 document for the whole API, merged from every service's own document.

Only the paths the gateway routes to a service are taken from it (health and metrics stay
internal), with the security the gateway enforces: bearer tokens everywhere except the public
routes. An operation that a service secures with a credential of its own instead (a webhook's
signature header) keeps that requirement and its scheme. Schemas with the same name and the
same content are shared; a name two services use for different schemas is prefixed with the
service name in that service's part.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

import httpx
from shopkit.openapi import PROBLEM_SCHEMA, problem_response

from gateway.routes import RouteTable

log = logging.getLogger(__name__)

JSON = dict[str, Any]
SECURITY_SCHEME = "bearerAuth"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_REF_PREFIX = "#/components/schemas/"


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF_PREFIX):
                name = value.removeprefix(_REF_PREFIX)
                result[key] = _REF_PREFIX + renames.get(name, name)
            else:
                result[key] = _rename_refs(value, renames)
        return result
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def _service_prefix(service: str) -> str:
    return "".join(part.capitalize() for part in service.replace("-", "_").split("_"))


def _own_schemes(document: JSON) -> JSON:
    """A service's security schemes other than the bearer token the gateway itself checks."""
    schemes: JSON = document.get("components", {}).get("securitySchemes", {})
    return {
        name: scheme
        for name, scheme in schemes.items()
        if not (scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer")
    }


def _operation_security(
    routes: RouteTable, method: str, path: str, declared: list[JSON]
) -> list[JSON]:
    # A public route still accepts a token (e.g. personalised catalog reads): auth is optional,
    # unless the service itself requires one there (a token-only operation under a public
    # prefix, such as the catalog's export of the caller's own data). A service marks an
    # optional token with an empty requirement (`shopkit.openapi.with_optional_tokens`).
    if routes.is_public(method.upper(), _example_path(path)) and (not declared or {} in declared):
        return [{}, {SECURITY_SCHEME: []}]
    return [{SECURITY_SCHEME: []}]


def _example_path(template: str) -> str:
    """A concrete path for a template (`/api/orders/{id}` -> `/api/orders/x`) to test routes."""
    parts = [
        "x" if part.startswith("{") and part.endswith("}") else part for part in template.split("/")
    ]
    return "/".join(parts)


GATEWAY_ERRORS = {
    "429": "Rate limit exceeded (Retry-After and RateLimit-* headers say when to retry)",
    "502": "The service answered with something the gateway could not relay",
    "503": "The service is unavailable",
    "504": "The service did not answer in time",
}
_GENERIC_401 = "Missing, invalid, expired or revoked access token"


def merge(
    documents: dict[str, JSON], routes: RouteTable, *, title: str, version: str, missing: list[str]
) -> JSON:
    """The merged document; `missing` names services whose document could not be fetched."""
    schemas: JSON = {}
    paths: JSON = {}
    tags: dict[str, JSON] = {}
    security_schemes: JSON = {}
    for service in sorted(documents):
        doc = copy.deepcopy(documents[service])
        own_schemas: JSON = doc.get("components", {}).get("schemas", {})
        renames = {
            name: _service_prefix(service) + name
            for name, schema in own_schemas.items()
            if name in schemas and schemas[name] != schema
        }
        doc = _rename_refs(doc, renames)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(name, name)] = schema
        for tag in doc.get("tags", []):
            tags.setdefault(tag["name"], tag)
        own_schemes = _own_schemes(doc)
        for path, item in doc.get("paths", {}).items():
            if RouteTable.service_for(_example_path(path)) != service:
                continue  # health, metrics and anything the gateway does not route here
            for method in HTTP_METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                declared = operation.get("security") or []
                if (
                    routes.is_public(method.upper(), _example_path(path))
                    and declared
                    and all(set(requirement) <= set(own_schemes) for requirement in declared)
                ):
                    # Verified by the service itself (a signature over the body), not a token.
                    for requirement in declared:
                        security_schemes.update({n: own_schemes[n] for n in requirement})
                else:
                    operation["security"] = _operation_security(routes, method, path, declared)
                responses = operation.setdefault("responses", {})
                for code, description in GATEWAY_ERRORS.items():
                    responses.setdefault(code, problem_response(description))
                if operation["security"]:
                    responses.setdefault("401", problem_response(_GENERIC_401))
                operation.setdefault("tags", [service])
                operation["operationId"] = f"{service}_{operation.get('operationId', method)}"
            paths[path] = item
    description = "Every public endpoint of the shop platform, as clients call it."
    if missing:
        description += f" Not included right now (service unavailable): {', '.join(missing)}."
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted({**schemas, "Problem": PROBLEM_SCHEMA}.items())),
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Access token from POST /api/auth/login (RS256-signed JWT).",
                },
                **dict(sorted(security_schemes.items())),
            },
        },
        "security": [{SECURITY_SCHEME: []}],
        "tags": sorted(tags.values(), key=lambda tag: str(tag["name"])),
    }


class OpenApiCache:
    """Fetches every service's document at most once per `ttl` seconds; merges them."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        upstreams: dict[str, str],
        routes: RouteTable,
        ttl: float,
        title: str,
        version: str,
    ) -> None:
        self._client = client
        self._upstreams = upstreams
        self._routes = routes
        self._ttl = ttl
        self._title = title
        self._version = version
        self._documents: dict[str, JSON] = {}
        self._merged: JSON | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _fetch(self, service: str, base: str) -> tuple[str, JSON | None]:
        try:
            response = await self._client.get(base.rstrip("/") + "/openapi.json", timeout=3.0)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning(
                "openapi of a service unavailable",
                extra={"upstream": service, "error": type(exc).__name__},
            )
            return service, None
        return service, document if isinstance(document, dict) else None

    async def document(self) -> JSON:
        async with self._lock:
            if self._merged is not None and time.monotonic() - self._fetched_at < self._ttl:
                return self._merged
            results = await asyncio.gather(
                *(self._fetch(name, base) for name, base in self._upstreams.items())
            )
            missing = []
            for service, document in results:
                if document is not None:
                    self._documents[service] = document
                elif service not in self._documents:
                    missing.append(service)  # never fetched: keep whatever we had otherwise
            self._merged = merge(
                self._documents,
                self._routes,
                title=self._title,
                version=self._version,
                missing=sorted(missing),
            )
            self._fetched_at = time.monotonic()
            return self._merged
