"""CEP lookup against a local ViaCEP stand-in server, with the Redis cache."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from shipping_service.app import build_app
from shipping_service.config import ShippingSettings
from shopkit.testing import app_client, kafka_namespace, serve


class ViaCepStandIn:
    """Answers like ViaCEP for two CEPs and counts the calls it gets."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.app = FastAPI()
        self.app.get("/ws/{cep}/json/")(self.lookup)

    async def lookup(self, cep: str) -> dict[str, object]:
        self.calls.append(cep)
        if cep == "01310100":
            return {
                "cep": "01310-100",
                "logradouro": "Avenida Paulista",
                "complemento": "",
                "bairro": "Bela Vista",
                "localidade": "São Paulo",
                "uf": "SP",
            }
        return {"erro": True}


@pytest.fixture
async def viacep() -> AsyncIterator[tuple[ViaCepStandIn, str]]:
    stand_in = ViaCepStandIn()
    async with serve(stand_in.app) as url:
        yield stand_in, url


async def test_viacep_answers_are_used_and_cached(viacep: tuple[ViaCepStandIn, str]) -> None:
    stand_in, url = viacep
    settings = ShippingSettings(
        kafka_namespace=kafka_namespace(),
        viacep_base_url=url,
        consumers_enabled=False,
        relay_enabled=False,
    )
    async with app_client(build_app(settings)) as client:
        first = await client.get("/api/shipping/cep/01310-100")
        second = await client.get("/api/shipping/cep/01310100")
        missing = await client.get("/api/shipping/cep/01999999")
    assert first.status_code == 200
    assert first.json() == {
        "cep": "01310100",
        "state": "SP",
        "city": "São Paulo",
        "district": "Bela Vista",
        "street": "Avenida Paulista",
        "source": "viacep",
    }
    assert second.json() == first.json()
    assert stand_in.calls.count("01310100") == 1  # the second answer came from Redis
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
