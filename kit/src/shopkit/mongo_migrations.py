"""Ordered, recorded migrations for a MongoDB database (indexes, backfills).

A service's `migrations/versions/mNNNN_*.py` modules each define `revision` and
`async def upgrade(db)`; applied revisions are recorded in `_migrations`.
"""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"mongo_migration_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def upgrade(db: AsyncDatabase[dict[str, Any]], versions: Path) -> list[str]:
    """Apply every migration not yet recorded, in file-name order; returns those applied."""
    applied = {doc["_id"] async for doc in db["_migrations"].find({}, {"_id": 1})}
    done: list[str] = []
    paths = await asyncio.to_thread(lambda: sorted(versions.glob("m[0-9]*.py")))
    for path in paths:
        module = _load(path)
        revision: str = module.revision
        if revision in applied:
            continue
        await module.upgrade(db)
        await db["_migrations"].insert_one({"_id": revision, "applied_at": datetime.now(UTC)})
        done.append(revision)
    return done
