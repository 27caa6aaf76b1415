"""MongoDB through PyMongo's native async API (`AsyncMongoClient`)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from pymongo import AsyncMongoClient

MongoClient = AsyncMongoClient[dict[str, Any]]


def create_client(url: str, *, app_name: str = "shop") -> MongoClient:
    return AsyncMongoClient(
        url,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5_000,
        uuidRepresentation="standard",
    )


async def ping(url: str) -> bool:
    client = create_client(url, app_name="shop-ping")
    try:
        await client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        await client.close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "ping":
        sys.exit("usage: python -m shopkit.mongo ping URL")
    sys.exit(0 if asyncio.run(ping(sys.argv[2])) else 1)
