from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from contracts.events.auth import UserRegistered
from fastapi import FastAPI
from notifications_service.app import build_app
from notifications_service.config import NotificationsSettings
from shopkit.testing import TestTokens, app_client, eventually, kafka_namespace, migrated_database

from contracts import new_id

MAILPIT = "http://127.0.0.1:8025/api/v1"


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    settings: NotificationsSettings
    tokens: TestTokens

    async def deliveries(self, user_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/api/notifications", params={"limit": 100}, headers=self.tokens.headers(user_id)
        )
        assert response.status_code == 200
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def settled(self, user_id: str, count: int) -> list[dict[str, Any]]:
        """The user's deliveries once `count` of them reached a final state."""

        async def check() -> list[dict[str, Any]] | None:
            items = await self.deliveries(user_id)
            final = [i for i in items if i["status"] in ("sent", "failed", "uncertain", "skipped")]
            return items if len(final) >= count else None

        found: list[dict[str, Any]] = await eventually(check, timeout=45, interval=0.3)
        return found


def fast(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "dispatch_poll_seconds": 0.1,
        "retry_base_seconds": 0.05,
        "consumer_max_attempts": 2,
        **settings,
    }


async def running(**overrides: Any) -> AsyncIterator[Running]:
    async with migrated_database("notifications") as url:
        settings = NotificationsSettings(
            **fast({"database_url": url, "kafka_namespace": kafka_namespace(), **overrides})
        )
        tokens = TestTokens()
        app = build_app(settings)
        async with app_client(app, tokens) as client:
            yield Running(app=app, client=client, settings=settings, tokens=tokens)


@pytest.fixture(scope="package")
async def mailer() -> AsyncIterator[Running]:
    """Notifications sending real email over SMTP to the local Mailpit."""
    async for service in running(email_backend="smtp", sms_enabled=False):
        yield service


@pytest.fixture(scope="module")
async def quiet() -> AsyncIterator[Running]:
    """A notifications service whose own dispatcher is off: the test drives one by hand."""
    async for service in running(email_backend="smtp", sms_enabled=False, dispatch_enabled=False):
        yield service


def unique_email(tag: str = "n") -> str:
    return f"{tag}-{secrets.token_hex(6)}@inbox.shoptest.com.br"


def registered(email: str, name: str = "Ana Souza") -> UserRegistered:
    return UserRegistered(user_id=new_id(), email=email, name=name, registered_at=datetime.now(UTC))


async def mailpit_messages(address: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=MAILPIT, timeout=10) as http:
        response = await http.get("/search", params={"query": f'to:"{address}"', "limit": 100})
        response.raise_for_status()
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages


async def mailpit_message(message_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=MAILPIT, timeout=10) as http:
        response = await http.get(f"/message/{message_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


async def admin_view(service: Running, user_id: str) -> list[dict[str, Any]]:
    """The user's deliveries as an admin sees them (with each attempt's history)."""
    response = await service.client.get(
        "/api/notifications/admin/deliveries",
        params={"user_id": user_id},
        headers=service.tokens.headers(new_id(), ("customer", "admin")),
    )
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@asynccontextmanager
async def refusing_server(answer_to_rcpt: str) -> AsyncIterator[int]:
    """An SMTP server that answers RCPT TO with `answer_to_rcpt`, `{to}` being the address."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 refusing.test ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-refusing.test\r\n250 8BITMIME\r\n")
            elif verb == b"RCPT":
                to = line.decode().split("<", 1)[1].split(">", 1)[0]
                writer.write(answer_to_rcpt.format(to=to).encode() + b"\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
