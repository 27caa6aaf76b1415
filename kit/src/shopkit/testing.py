"""Helpers for tests against the real local stack (no mocks of our own infrastructure).

Isolation on shared servers: each test run gets fresh PostgreSQL databases, its own Kafka
namespace (topic and group prefix), and tokens signed by a throwaway key the app trusts.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

import asyncpg
import httpx
import jwt
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from redis.asyncio import Redis

from contracts import Envelope, Event, decode, encode, new_id, topics
from shopkit.kafka import create_producer, ensure_topics
from shopkit.relay import asyncpg_dsn
from shopkit.security import ALGORITHM, TokenVerifier, new_signing_key, public_jwk
from shopkit.settings import local_database_url

E = TypeVar("E", bound=Event)

ADMIN_DSN = "postgresql://shop:shop@127.0.0.1:5432/postgres"
KAFKA_BOOTSTRAP = "127.0.0.1:9092"


async def delete_keys(redis: Redis, prefix: str) -> None:
    """Remove a test run's Redis keys: everything under its own prefix."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await redis.delete(*keys)


def unique_suffix() -> str:
    return f"{int(time.time())}_{secrets.token_hex(3)}"


def kafka_namespace() -> str:
    """A topic/group prefix no other test run uses, e.g. `t1764383012_a1b2c3.`."""
    return f"t{unique_suffix()}."


_DATABASE_STAMP = re.compile(r"^test_[a-z0-9_]+_(\d{10})_[0-9a-f]{6}$")


async def delete_stale_test_databases(
    admin_dsn: str | None = None, older_than: float = 6 * 3600
) -> list[str]:
    """Drop test databases (`test_<name>_<unix time>_<hex>`) created more than `older_than`
    seconds ago; returns their names.

    `migrated_database` drops its database when the test ends, but a run killed meanwhile
    (Ctrl-C twice, SIGKILL, a reboot) leaves it on the shared server for good. Recent ones are
    kept: another run may be using them.
    """
    cutoff = time.time() - older_than
    conn = await asyncpg.connect(admin_dsn or ADMIN_DSN)
    try:
        names = [
            row["datname"]
            for row in await conn.fetch(
                "SELECT datname FROM pg_database"
                " WHERE datname LIKE 'test\\_%' AND NOT datistemplate"
            )
        ]
        stale = [
            name
            for name in names
            if (match := _DATABASE_STAMP.match(name)) and int(match.group(1)) < cutoff
        ]
        for name in stale:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return stale
    finally:
        await conn.close()


async def create_database(prefix: str) -> str:
    """Create an empty database named `<prefix>_<unique>`; returns its SQLAlchemy URL."""
    name = f"{prefix}_{unique_suffix()}".lower()
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return local_database_url(name)


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[-1]
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def migrate(service: str, url: str) -> None:
    """Apply a service's Alembic history to `url` (in a thread: Alembic runs its own loop)."""
    from shopkit.migrations import upgrade

    await asyncio.to_thread(upgrade, service, url)


@asynccontextmanager
async def migrated_database(service: str) -> AsyncIterator[str]:
    url = await create_database(f"test_{service}")
    try:
        await migrate(service, url)
        yield url
    finally:
        await drop_database(url)


async def fetchval(url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


class TestTokens:
    """Signs access tokens the way the auth service does, with a key only this test knows."""

    __test__ = False  # not a pytest test class

    def __init__(self, issuer: str = "http://127.0.0.1:8001", audience: str = "shop") -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = f"test-{secrets.token_hex(4)}"
        self._key = new_signing_key()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self._key, self.kid)]}

    def mint(
        self,
        user_id: str | None = None,
        roles: tuple[str, ...] = ("customer",),
        ttl: int = 900,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id or new_id(),
            "roles": list(roles),
            "iat": now,
            "exp": now + ttl,
            "jti": new_id(),
            "auth_time": now,  # a token just signed in for, unless the test says otherwise
            **claims,
        }
        return jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def headers(
        self, user_id: str | None = None, roles: tuple[str, ...] = ("customer",)
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(user_id, roles)}"}

    def trust(self, app: FastAPI) -> None:
        """Make a started app's verifier accept these tokens."""
        verifier: TokenVerifier = app.state.token_verifier
        verifier.set_keys(self.jwks())


@asynccontextmanager
async def app_client(
    app: FastAPI, tokens: TestTokens | None = None, startup_timeout: float = 30
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (database, relay, consumers) and talk to it in-process."""
    async with LifespanManager(
        app, startup_timeout=startup_timeout, shutdown_timeout=30
    ) as manager:
        if tokens is not None:
            tokens.trust(app)
        # Unhandled errors are answered as problem documents; do not re-raise them in the test.
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def eventually(check: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll an async predicate until it returns a truthy value; returns it or fails."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


_NAMESPACE_STAMP = re.compile(r"^t(\d{10})_[0-9a-f]{6}\.")


async def delete_stale_test_topics(
    bootstrap: str = KAFKA_BOOTSTRAP, older_than: float = 1800
) -> int:
    """Delete topics of test namespaces created more than `older_than` seconds ago.

    Every test run makes its own namespaced topics; left alone they pile up into thousands of
    partitions that slow the broker's start. Recent namespaces are kept: they may be in use.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="shop-test-cleanup")
    await admin.start()
    try:
        cutoff = time.time() - older_than
        stale = [
            topic
            for topic in await admin.list_topics()
            if (match := _NAMESPACE_STAMP.match(topic)) and int(match.group(1)) < cutoff
        ]
        for start in range(0, len(stale), 200):
            await admin.delete_topics(stale[start : start + 200])
        return len(stale)
    finally:
        await admin.close()


# ---------------------------------------------------------------- events in a test namespace


async def publish(namespace: str, *items: Event | Envelope[Event]) -> list[Envelope[Event]]:
    """Send events (or exact envelopes, to redeliver one) to the namespaced topics, in order."""
    envelopes = [i if isinstance(i, Envelope) else Envelope(data=i) for i in items]
    await ensure_topics(KAFKA_BOOTSTRAP, sorted({namespace + e.topic for e in envelopes}))
    producer = create_producer(KAFKA_BOOTSTRAP, client_id="shop-tests")
    await producer.start()
    try:
        futures = []
        for item in envelopes:
            record = encode(item)
            futures.append(
                await producer.send(
                    namespace + record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return envelopes


async def read_topic(namespace: str, topic: str) -> list[Envelope[Event]]:
    """Every event on a namespaced topic, from the beginning up to its current end."""
    name = namespace + topic
    await ensure_topics(KAFKA_BOOTSTRAP, [name])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=KAFKA_BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p) for p in range(topics.PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Envelope[Event]] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= ends[tp] for tp in partitions):
                break
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                found += [decode(r.headers, r.value) for r in records]
        return found
    finally:
        await consumer.stop()


async def wait_for_events(
    namespace: str,
    event_type: type[E],
    *,
    where: Callable[[E], bool] = lambda _: True,
    count: int = 1,
    within: float = 60,
) -> list[E]:
    """The events of a type (matching `where`) on their topic once there are `count` of them."""
    deadline = time.monotonic() + within
    matching: list[E] = []
    while time.monotonic() < deadline:
        matching = [
            e.data
            for e in await read_topic(namespace, event_type.topic)
            if isinstance(e.data, event_type) and where(e.data)
        ]
        if len(matching) >= count:
            return matching
        await asyncio.sleep(0.3)
    raise AssertionError(f"expected {count} {event_type.__name__}, saw {len(matching)}")


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction of a relayed TCP connection until it ends, then close the other side
    (for tests that put a relay between a client and a server)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):  # the relay's loop may be closing already
            writer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serve(app: Any, *, lifespan: Literal["auto", "on", "off"] = "off") -> AsyncIterator[str]:
    """Serve an ASGI app on a real loopback port (stand-ins, public endpoints); yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan=lifespan, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
