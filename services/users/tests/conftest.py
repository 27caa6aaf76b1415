from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from contracts.events.auth import UserRegistered
from fastapi import FastAPI
from shopkit.testing import (
    TestTokens,
    app_client,
    eventually,
    kafka_namespace,
    migrated_database,
    publish,
)
from users_service.app import build_app
from users_service.config import UsersSettings

from contracts import new_id


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    settings: UsersSettings
    tokens: TestTokens

    def headers(self, user_id: str) -> dict[str, str]:
        return self.tokens.headers(user_id)

    async def new_user(self, name: str = "Beatriz Lima") -> str:
        """A registered user whose profile exists (UserRegistered went through Kafka)."""
        user_id = new_id()
        await publish(
            self.settings.kafka_namespace,
            UserRegistered(
                user_id=user_id,
                email=f"{user_id[-12:]}@mail.shoptest.com.br",
                name=name,
                registered_at=datetime.now(UTC),
            ),
        )

        async def ready() -> Any:
            response = await self.client.get("/api/users/me", headers=self.headers(user_id))
            return response.json() if response.status_code == 200 else None

        await eventually(ready, timeout=30, interval=0.2)
        return user_id


@pytest.fixture(scope="package")
async def users() -> AsyncIterator[Running]:
    async with migrated_database("users") as url:
        settings = UsersSettings(
            database_url=url,
            kafka_namespace=kafka_namespace(),
            consumer_max_attempts=2,
            max_addresses=3,
        )
        tokens = TestTokens()
        app = build_app(settings)
        async with app_client(app, tokens) as client:
            yield Running(app=app, client=client, settings=settings, tokens=tokens)


ADDRESS = {
    "recipient": "Beatriz Lima",
    "street": "Avenida Paulista",
    "number": "1000",
    "complement": "conj. 12",
    "district": "Bela Vista",
    "city": "São Paulo",
    "state": "SP",
    "cep": "01310-100",
}
