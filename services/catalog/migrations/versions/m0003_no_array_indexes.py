"""Drop the indexes on the `search_terms` and `category_tree` arrays.

FerretDB 1.x indexes an array as a single PostgreSQL btree key: a product with many search
terms exceeded the key size limit and could not be written, and the index never served `$all`
or array-membership queries anyway. Both filters scan instead (the catalog is small).
"""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

revision = "m0003"


async def upgrade(db: AsyncDatabase[dict[str, Any]]) -> None:
    existing = await db.products.index_information()
    for name in ("search_terms_1", "category_tree_1"):
        if name in existing:
            with contextlib.suppress(OperationFailure):  # already gone
                await db.products.drop_index(name)
