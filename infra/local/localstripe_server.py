"""Launch localstripe as the local stand-in for the Stripe API.

Two changes make it behave closer to Stripe for this project's tests and demo:

* Stripe honours the ``Idempotency-Key`` header (a retried POST with the same key returns the
  first response and never acts twice); localstripe ignores it. The middleware below replays
  the first response for a key, and answers 400 ``idempotency_error`` when the same key comes
  with different parameters, as Stripe does.
* localstripe pickles its whole store to ``/tmp`` on every write, which grows quadratically
  with load. Here the store is written to the state folder at most once a second instead.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import pickle
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from localstripe import resources, server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_dirty = False


def _mark_dirty(self: resources.Store) -> None:
    global _dirty
    _dirty = True


def _load(path: Path) -> None:
    if path.exists():
        with path.open("rb") as f:
            resources.store.update(pickle.load(f))  # noqa: S301 - our own state file


async def _flush_periodically(path: Path) -> None:
    global _dirty
    while True:
        await asyncio.sleep(1)
        if _dirty:
            _dirty = False
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as f:
                pickle.dump(dict(resources.store), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)


class _IdempotencyCache:
    def __init__(self) -> None:
        self.responses: dict[str, tuple[str, int, bytes, str]] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        scope = f"{request.headers.get('Authorization', '')}:{key}"
        body = await request.read()
        fingerprint = hashlib.sha256(request.path.encode() + b"\0" + body).hexdigest()
        lock = self.locks.setdefault(scope, asyncio.Lock())
        async with lock:
            cached = self.responses.get(scope)
            if cached is not None:
                seen_fingerprint, status, payload, content_type = cached
                if seen_fingerprint != fingerprint:
                    return _idempotency_error(key)
                response = web.Response(status=status, body=payload, content_type=content_type)
                response.headers["Idempotent-Replayed"] = "true"
                response.headers["Idempotency-Key"] = key
                return response
            response = await handler(request)
            if isinstance(response, web.Response) and response.status < 500:
                self.responses[scope] = (
                    fingerprint,
                    response.status,
                    bytes(response.body or b""),  # type: ignore[arg-type]
                    response.content_type,
                )
            return response


def _idempotency_error(key: str) -> web.Response:
    body = {
        "error": {
            "type": "idempotency_error",
            "message": (
                f"Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{key}'."
            ),
        }
    }
    return web.Response(status=400, text=json.dumps(body), content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args()

    resources.Store.dump_to_disk = _mark_dirty  # type: ignore[method-assign]
    cache = _IdempotencyCache()
    server.app.middlewares.append(cache.middleware)

    state_file: Path | None = args.state_file
    if state_file is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        _load(state_file)

        async def start_flusher(app: web.Application) -> None:
            assert state_file is not None
            app["flusher"] = asyncio.create_task(_flush_periodically(state_file))

        server.app.on_startup.append(start_flusher)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    web.run_app(server.app, sock=sock, access_log=None, print=None)


if __name__ == "__main__":
    main()
