"""RFC 9457 problem details: every error leaves a service as `application/problem+json`.

Services raise `DomainError` subclasses from their `errors.py`; one set of handlers maps them,
validation errors and anything unexpected to problem documents. Nothing internal leaks: an
unexpected exception is logged with its trace and answered with a generic 500.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from shopkit.transient import is_transient

PROBLEM_JSON = "application/problem+json"
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "options", "head"})
TYPE_BASE = "https://shop.example/problems/"

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """An RFC 9457 problem document (extension members allowed)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class DomainError(Exception):
    """A business rule said no. Subclasses set the status, a stable slug and a title."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions

    @classmethod
    def type_uri(cls) -> str:
        return TYPE_BASE + cls.slug

    @classmethod
    def response_doc(cls) -> dict[str, Any]:
        """An entry for a route's `responses=` so OpenAPI lists this error."""
        return {"model": Problem, "description": cls.title, "content": {PROBLEM_JSON: {}}}


class NotFoundError(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class ConflictError(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class UnprocessableError(DomainError):
    status = 422
    slug = "unprocessable"
    title = "Unprocessable request"


class BadRequestError(DomainError):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class UnauthorizedError(DomainError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class ForbiddenError(DomainError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class TooManyRequestsError(DomainError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"


class ServiceUnavailableError(DomainError):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"


def responses(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the problem documents it may answer with."""
    return {error.status: error.response_doc() for error in errors}


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or phrase.lower().replace(" ", "-").replace("'", "")),
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = exc.extensions.pop("headers", None)
    return problem_response(
        exc.status,
        exc.detail,
        slug=exc.slug,
        title=exc.title,
        instance=request.url.path,
        headers=headers,
        **exc.extensions,
    )


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    result = []
    for error in errors:
        result.append(
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return result


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _jsonable_errors(exc.errors())
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(part for part in first["loc"] if part != "body") or "request"
    return problem_response(
        422,
        f"{where}: {first['msg']}",
        slug="validation-error",
        title="Request validation failed",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(
        exc.status_code, str(exc.detail), instance=request.url.path, headers=headers or None
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every documented method of the path (Starlette names only the first route's methods)."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        request.app.state, "allowed_methods", None
    )
    if table is None:
        table = []
        for template, item in request.app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            methods = sorted(m.upper() for m in item if m in _HTTP_METHODS)
            table.append((re.compile(f"^{pattern}$"), methods))
        request.app.state.allowed_methods = table
    path = request.url.path
    return next((methods for pattern, methods in table if pattern.match(path)), [])


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    if is_transient(exc):
        # A dependency is down or restarting: nothing was committed, a retry can succeed.
        log.warning("dependency unavailable", extra={"path": request.url.path, "error": repr(exc)})
        return problem_response(
            503,
            "A dependency of this service is unavailable; retry shortly.",
            instance=request.url.path,
            headers={"Retry-After": "1"},
        )
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(500, "An unexpected error occurred.", instance=request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
