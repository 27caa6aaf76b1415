"""Every query of the catalog service: MongoDB collections and Redis keys."""

from datetime import datetime

from contracts.types import utc_now


def stored_now() -> datetime:
    """Now, at the millisecond precision BSON dates keep (so what we return is what we stored)."""
    now = utc_now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
