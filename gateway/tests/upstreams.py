"""Small real upstream services for gateway tests: they echo what reached them."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from gateway.routes import PREFIXES
from pydantic import BaseModel, ConfigDict
from shopkit.edge import shareable
from shopkit.openapi import install_problem_openapi
from shopkit.security import CurrentUser, OptionalUser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

PREFIX_OF: dict[str, str] = {}
for _prefix, _service in PREFIXES:
    if _prefix.startswith("/api"):
        PREFIX_OF.setdefault(_service, _prefix)
PREFIX_OF["orders"] = "/api/orders"


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def upstream_app(service: str, *, jwks: dict[str, Any] | None = None) -> FastAPI:
    """An upstream named `service`: a typed route per service (so OpenAPI documents differ,
    with a schema name `Item` shared by services but not its content) and an echo of every
    other request: method, raw path, query, headers, the exact body bytes and how many requests
    it has served. `?shareable=N` marks the echo shareable at the edge for N seconds."""
    app = FastAPI(title=f"{service} (test upstream)")
    prefix = PREFIX_OF[service]
    served = 0

    if service == "orders":

        class Item(BaseModel):
            id: str
            total: int
    else:

        class Item(BaseModel):  # type: ignore[no-redef]
            id: str
            label: str

    @app.get(prefix + "/typed/{item_id}", response_model=Item)
    async def read_item(item_id: str) -> dict[str, Any]:
        return {"id": item_id, "total": 1, "label": "x"}

    @app.post(prefix + "/typed", response_model=Item, status_code=201)
    async def create_item(body: ItemCreate) -> dict[str, Any]:
        return {"id": "1", "total": 1, "label": body.name}

    if service == "catalog":
        # Under the public /api/products prefix: one route needs a token, one takes one.
        @app.get(prefix + "/typed-mine")
        async def mine(user: CurrentUser) -> dict[str, str]:
            return {"user": user.user_id}

        @app.get(prefix + "/typed-maybe")
        async def maybe(user: OptionalUser) -> dict[str, str | None]:
            return {"user": user.user_id if user else None}

        install_problem_openapi(app)

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    if jwks is not None:

        @app.get("/.well-known/jwks.json")
        async def keys() -> dict[str, Any]:
            return jwks

    async def echo(request: Request) -> Response:
        nonlocal served
        served += 1
        query = request.query_params
        if "sleep" in query:
            await asyncio.sleep(float(query["sleep"]))
        if "stream" in query:
            size = int(query["stream"])

            async def chunks() -> AsyncIterator[bytes]:
                sent = 0
                while sent < size:
                    piece = bytes([sent // 65536 % 256]) * min(65536, size - sent)
                    sent += len(piece)
                    yield piece

            return StreamingResponse(chunks(), media_type="application/octet-stream")
        body = await request.body()
        shared = (
            shareable(key=service, max_age=int(query["shareable"])) if "shareable" in query else {}
        )
        return JSONResponse(
            {
                "service": service,
                "served": served,
                "method": request.method,
                "raw_path": request.scope["raw_path"].decode("latin-1"),
                "query": request.scope["query_string"].decode("latin-1"),
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]
                ],
                "body_b64": base64.b64encode(body).decode(),
            },
            status_code=int(query.get("status", "200")),
            headers={
                "X-Upstream": service,
                "Connection": "keep-alive, X-Upstream-Hop",
                "X-Upstream-Hop": "1",
                "Keep-Alive": "timeout=5",
                **shared,
            },
        )

    app.router.routes.append(
        Route(
            "/{path:path}",
            echo,
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        )
    )
    return app


def header_values(echoed: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in echoed["headers"] if key.lower() == name.lower()]
