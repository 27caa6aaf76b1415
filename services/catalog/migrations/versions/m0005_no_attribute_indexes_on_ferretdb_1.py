"""Drop the `attributes.<key>` indexes on FerretDB 1.x (the local stack); keep them elsewhere.

FerretDB 1.x indexes a field as one PostgreSQL btree key holding its whole value, and a btree
key is at most 2,704 bytes. The schema takes a list of 10 strings of 100 characters for any
attribute (up to 4 KB of UTF-8), so such a list on one of these keys, when it compressed
poorly, made the product write fail with a 500.

Why drop rather than refuse those lists: on FerretDB 1.x these indexes never serve a query.
It pushes no filter on a nested field down to PostgreSQL (`explain` of
`{"attributes.brand": {"$in": [...]}}` answers `filterPushdown: false` and a sequential scan,
with or without the index), so `attr.<key>=` filters read the collection exactly as before and
return the same products. MongoDB and DocumentDB index each element of an array as its own key
(100 characters at most here), so they take these lists and keep the indexes, which serve the
filters there. A tighter limit on these keys' values would have narrowed the API on every
deployment for a limitation of the local server only, and would have had to be counted in
compressed bytes.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

revision = "m0005"


async def _is_ferretdb_1(db: AsyncDatabase[dict[str, Any]]) -> bool:
    version = str((await db.command("buildInfo")).get("ferretdbVersion", ""))
    return version.removeprefix("v").startswith("1.")


async def upgrade(db: AsyncDatabase[dict[str, Any]]) -> None:
    if not await _is_ferretdb_1(db):
        return
    existing = await db.products.index_information()
    for name, spec in existing.items():
        if all(field.startswith("attributes.") for field, _ in spec["key"]):
            with contextlib.suppress(OperationFailure):  # already gone
                await db.products.drop_index(name)
