"""Catalog reads through the gateway versus a bare FastAPI JSON endpoint, in the same run.

uvicorn processes on free ports, started the way the stack starts services: a catalog on a
fresh database seeded with the demo catalog (relay and consumers off), a gateway in front of it,
a bare FastAPI app that answers the very bytes the catalog returned for the same paths from
memory, and a second gateway in front of that bare app (rate limits raised in both gateways so
they are counted but never hit). `wrk` measures requests/s for:

* `GET /api/products?limit=20` (cached list, ~11 kB) and `GET /api/products/{id}` (cached
  page): through the gateway (answered from its edge cache, as anonymous reads of a busy
  storefront are), through a gateway with the edge cache off (answered by the catalog's Redis
  cache), and straight to the catalog;
* the bare app, directly and behind the same gateway (what any service pays for the proxy hop).

Rounds alternate between the targets and medians are kept, so drift on a shared 2-core machine
hits every figure alike. Target: cached list through the gateway / bare >= 0.4; both readings of
"bare" are reported (the bare app called directly, and behind an identical gateway).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from catalog_service.config import CatalogSettings
from catalog_service.repository.cache import Cache
from catalog_service.repository.trending import Trending
from catalog_service.resources import Catalog
from catalog_service.service.seed import seed
from fastapi import FastAPI, Response
from redis.asyncio import Redis
from shopkit.migrations import migrations_dir
from shopkit.mongo import create_client
from shopkit.mongo_migrations import upgrade
from shopkit.mongo_outbox import DocumentLocks, MongoOutboxRelay, MongoRelayConfig
from shopkit.testing import delete_keys, kafka_namespace, unique_suffix

from bench.processes import uvicorn_process, wrk

ROUNDS = 2
BODIES_ENV = "BENCH_CATALOG_BARE_BODIES"


def _bare_bodies() -> dict[str, bytes]:
    """The list page and the product page, as captured from the real catalog."""
    path = os.environ.get(BODIES_ENV)
    if not path:
        return {"list": b'{"items":[]}', "product": b"{}"}
    raw = json.loads(Path(path).read_text())
    return {name: body.encode() for name, body in raw.items()}


bare_app = FastAPI()
_BODIES = _bare_bodies()


@bare_app.get("/api/products")
async def bare_list() -> Response:
    return Response(_BODIES["list"], media_type="application/json")


@bare_app.get("/api/products/{product_id}")
async def bare_product(product_id: str) -> Response:
    return Response(_BODIES["product"], media_type="application/json")


@bare_app.get("/health/ready")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@asynccontextmanager
async def seeded_database(prefix: str) -> AsyncIterator[str]:
    """A migrated catalog database holding the demo catalog, dropped afterwards."""
    settings = CatalogSettings()
    name = f"bench_catalog_{unique_suffix()}"
    client = create_client(settings.mongo_url, app_name="bench-catalog")
    redis = Redis.from_url(settings.redis_url)
    try:
        db = client[name]
        await upgrade(db, migrations_dir("catalog") / "versions")
        catalog = Catalog(
            settings=settings,
            db=db,
            cache=Cache(redis, prefix=prefix, ttl_seconds=settings.cache_ttl_seconds),
            trending=Trending(redis, prefix=prefix, retention_days=7),
            locks=DocumentLocks(db),
            relay=MongoOutboxRelay(
                db, MongoRelayConfig(service="bench", bootstrap="", collections=[])
            ),
        )
        await seed(catalog)
        yield name
    finally:
        await client.drop_database(name)
        await client.close()
        await delete_keys(redis, prefix)
        await redis.aclose()


def _gateway_env(upstream: str, prefix: str, *, edge_cache: bool = True) -> dict[str, str]:
    return {
        "GATEWAY_UPSTREAMS": json.dumps({"catalog": upstream}),
        "GATEWAY_RATE_LIMIT_SCALE": "1000000",  # counted, never reached
        "GATEWAY_REDIS_NAMESPACE": prefix,
        "GATEWAY_EDGE_PURGE_CHANNEL": f"{prefix}edge:purge",
        "GATEWAY_EDGE_CACHE_ENABLED": str(edge_cache).lower(),
        "GATEWAY_LOG_LEVEL": "WARNING",
    }


async def run() -> dict[str, object]:
    prefix = f"bench-catalog-{unique_suffix()}:"
    async with seeded_database(prefix) as database:
        catalog_env = {
            "CATALOG_MONGO_DATABASE": database,
            "CATALOG_CACHE_PREFIX": prefix,
            "CATALOG_EDGE_PURGE_CHANNEL": f"{prefix}edge:purge",
            "CATALOG_KAFKA_NAMESPACE": kafka_namespace(),
            "CATALOG_RELAY_ENABLED": "false",
            "CATALOG_CONSUMERS_ENABLED": "false",
            "CATALOG_LOG_LEVEL": "WARNING",
        }
        async with uvicorn_process("catalog_service.app:app", catalog_env) as catalog_url:
            async with httpx.AsyncClient(base_url=catalog_url) as client:
                page = await client.get("/api/products", params={"limit": 20})
                page.raise_for_status()
                product_id = page.json()["items"][0]["id"]
                product = await client.get(f"/api/products/{product_id}")
                product.raise_for_status()
            with tempfile.NamedTemporaryFile("w", suffix=".json") as bodies:
                json.dump({"list": page.text, "product": product.text}, bodies)
                bodies.flush()
                async with (
                    uvicorn_process(
                        "bench.bench_catalog:bare_app", {BODIES_ENV: bodies.name}
                    ) as bare_url,
                    uvicorn_process(
                        "gateway.app:app", _gateway_env(catalog_url, prefix)
                    ) as gateway_url,
                    uvicorn_process(
                        "gateway.app:app", _gateway_env(bare_url, prefix)
                    ) as bare_gateway_url,
                    uvicorn_process(
                        "gateway.app:app", _gateway_env(catalog_url, prefix, edge_cache=False)
                    ) as uncached_gateway_url,
                ):
                    list_path, product_path = (
                        "/api/products?limit=20",
                        f"/api/products/{product_id}",
                    )
                    targets = {
                        "bare_list": bare_url + list_path,
                        "bare_list_via_gateway": bare_gateway_url + list_path,
                        "catalog_list_via_gateway": gateway_url + list_path,
                        "catalog_list_via_gateway_no_edge_cache": uncached_gateway_url + list_path,
                        "catalog_list_direct": catalog_url + list_path,
                        "bare_product": bare_url + product_path,
                        "catalog_product_via_gateway": gateway_url + product_path,
                        "catalog_product_direct": catalog_url + product_path,
                    }
                    async with httpx.AsyncClient() as client:
                        for url in targets.values():  # warm caches and connection pools
                            (await client.get(url)).raise_for_status()
                    samples: dict[str, list[float]] = {name: [] for name in targets}
                    for _ in range(ROUNDS):  # alternate, so drift hits every target alike
                        for name, url in targets.items():
                            samples[name].append(await wrk(url))
    rps = {name: round(statistics.median(values)) for name, values in samples.items()}
    return {
        **{f"{name}_rps": value for name, value in rps.items()},
        "list_body_bytes": len(page.content),
        "gateway_list_vs_bare": round(rps["catalog_list_via_gateway"] / rps["bare_list"], 3),
        "gateway_list_vs_bare_via_gateway": round(
            rps["catalog_list_via_gateway"] / rps["bare_list_via_gateway"], 3
        ),
        "gateway_list_no_edge_cache_vs_bare": round(
            rps["catalog_list_via_gateway_no_edge_cache"] / rps["bare_list"], 3
        ),
        "gateway_product_vs_bare": round(
            rps["catalog_product_via_gateway"] / rps["bare_product"], 3
        ),
        "target_gateway_list_vs_bare": 0.4,
    }


if __name__ == "__main__":
    print(asyncio.run(run()))
