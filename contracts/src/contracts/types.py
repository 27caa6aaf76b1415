"""Field types every event uses: ids, money, currencies, UTC times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from contracts.ids import is_uuid7


def _check_uuid7(value: str) -> str:
    if not is_uuid7(value):
        raise ValueError("must be a lowercase UUIDv7 string")
    return value


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a timezone (UTC)")
    return value.astimezone(UTC)


Id = Annotated[
    str, AfterValidator(_check_uuid7), Field(json_schema_extra={"format": "uuid"}, min_length=36)
]
"""A UUIDv7 string minted by this platform."""

MinorUnits = Annotated[int, Field(ge=0, strict=True)]
"""A non-negative amount in the currency's minor unit (centavos for BRL). Never a float."""

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""ISO 4217 code."""

UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
"""A timezone-aware instant, normalised to UTC."""

Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]

Quantity = Annotated[int, Field(gt=0, le=10_000, strict=True)]

ProviderId = Annotated[str, StringConstraints(min_length=1, max_length=255)]
"""An identifier issued by an external provider (Stripe, a carrier)."""

DEFAULT_CURRENCY = "BRL"


def utc_now() -> datetime:
    return datetime.now(UTC)
