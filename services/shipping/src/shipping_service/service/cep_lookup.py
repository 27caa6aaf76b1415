"""CEP lookup: ViaCEP when reachable, the offline Correios ranges when not, cached in Redis.

The offline table carries the demo on a machine without network: it knows every state's ranges
and the main cities', so a valid CEP always resolves to at least its state.
"""

from __future__ import annotations

import hashlib
import json
import logging

import httpx
from redis.asyncio import Redis
from shopkit import cep

from shipping_service.config import ShippingSettings
from shipping_service.errors import CepNotFoundError
from shipping_service.schemas import CepPublic
from shipping_service.service.quotes import normalize

log = logging.getLogger(__name__)


def _cache_key(settings: ShippingSettings, normalized_cep: str) -> str:
    # The Kafka namespace is empty in deployments and unique per test run, so test answers
    # never land in the running service's cache.
    return f"{settings.kafka_namespace}shipping:cep:{normalized_cep}"


def _backoff_key(settings: ShippingSettings) -> str:
    digest = hashlib.sha256(settings.viacep_base_url.encode()).hexdigest()[:16]
    return f"{settings.kafka_namespace}shipping:viacep-down:{digest}"


class ViaCepClient:
    """A client for ViaCEP's JSON API (`GET /ws/<cep>/json/`); any compatible server works."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, timeout: float) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def lookup(self, normalized_cep: str) -> CepPublic | None:
        """The address of a CEP; None when ViaCEP says it does not exist. Raises on failure."""
        response = await self.http.get(
            f"{self.base_url}/ws/{normalized_cep}/json/", timeout=self.timeout
        )
        if response.status_code == 400:
            return None
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError("ViaCEP answered with something other than an object")
        if body.get("erro") in (True, "true"):
            return None
        state = str(body.get("uf") or "")
        if state not in cep.STATES:
            raise ValueError(f"ViaCEP answered an unknown state {state!r}")
        return CepPublic(
            cep=normalized_cep,
            state=state,
            city=_text(body.get("localidade")),
            district=_text(body.get("bairro")),
            street=_text(body.get("logradouro")),
            source="viacep",
        )


def _text(value: object) -> str | None:
    return str(value)[:200] if value else None


def offline(normalized_cep: str) -> CepPublic:
    region = cep.region_of(normalized_cep)
    return CepPublic(cep=normalized_cep, state=region.state, city=region.city, source="offline")


async def lookup(
    *, value: str, settings: ShippingSettings, redis: Redis, http: httpx.AsyncClient
) -> CepPublic:
    normalized = normalize(value)
    cached = await redis.get(_cache_key(settings, normalized))
    if cached is not None:
        return CepPublic.model_validate_json(cached)
    if not settings.viacep_enabled or await redis.exists(_backoff_key(settings)):
        return offline(normalized)
    client = ViaCepClient(http, settings.viacep_base_url, settings.viacep_timeout_seconds)
    try:
        found = await client.lookup(normalized)
    except (httpx.HTTPError, ValueError, json.JSONDecodeError) as exc:
        # Unreachable or misbehaving: answer offline, and stop asking for a while so every
        # lookup does not pay the timeout.
        log.warning("ViaCEP lookup failed, using offline ranges", extra={"error": repr(exc)})
        await redis.set(_backoff_key(settings), b"1", ex=settings.viacep_backoff_seconds)
        return offline(normalized)
    if found is None:
        raise CepNotFoundError(f"CEP {cep.format_cep(normalized)} does not exist")
    await redis.set(
        _cache_key(settings, normalized), found.model_dump_json(), ex=settings.cep_cache_seconds
    )
    return found
