"""Request value types that are documented exactly as they are validated.

A client (or a fuzzer) reading the OpenAPI document must be able to trust it both ways: a value
that matches a parameter's schema is never refused for its shape, and one that does not is a
422 problem before it reaches a query. Identifiers are the main case: a malformed id reaching
PostgreSQL as a UUID was a 500, and a valid UUID of another version was refused with a message
the schema never announced.

Optional query parameters and headers are documented without `null`: a query string or a
header cannot carry a JSON null, only its absence (FastAPI would otherwise advertise
`anyOf: [string, null]` and clients would send the text "null").

Text fields forbid control characters (PostgreSQL cannot store NUL, and nothing a person types
into a name contains a form feed) and must hold something visible; surrounding whitespace is
accepted and stripped.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    JsonValue,
    StringConstraints,
    WithJsonSchema,
)

from shopkit import cep

UUID7_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
"""A lowercase UUIDv7, the only ids this platform issues (`contracts.new_id()`)."""


UUID7_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid", "pattern": UUID7_PATTERN}

Uuid7 = Annotated[str, StringConstraints(pattern=UUID7_PATTERN), WithJsonSchema(UUID7_SCHEMA)]
"""An id in a path, query or body: anything else is a 422 before any lookup."""

OptionalUuid7 = Annotated[Uuid7 | None, WithJsonSchema(UUID7_SCHEMA)]
"""An optional id query parameter (a keyset cursor, a filter): absent rather than null."""

SKU_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"
"""A sku as products are created with it: usable as a path segment (never `.` or `..`)."""

Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]

SINGLE_LINE = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
"""Something visible, no control characters (so no line breaks): names, titles, labels."""

MULTI_LINE = (
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
)
"""Something visible; tabs and line breaks allowed, other control characters not: reviews,
descriptions, notes."""

NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""Possibly empty text without control characters other than tabs and line breaks."""


def _strip(value: str) -> str:
    return value.strip()


Stripped = AfterValidator(_strip)
"""Surrounding whitespace removed after validation (the schema describes what is sent)."""


def _json_integer(value: object) -> object:
    # JSON Schema's integer is any number without a fraction (1.0 included) and nothing else:
    # pydantic's lax int would also take "5" and true, its strict int would refuse 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


JsonInteger = BeforeValidator(_json_integer)
"""Reads a request integer exactly as JSON Schema defines it. Put it after the bounds, so that
they are documented as JSON Schema bounds: `Annotated[int, Field(ge=1, le=5), JsonInteger]`."""

Integer = Annotated[int, JsonInteger]
"""A request integer without bounds."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_string(value: object) -> object:
    # JSON Schema's date is a `YYYY-MM-DD` string; pydantic alone would also read a number.
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


Date = Annotated[date, BeforeValidator(_date_string)]
"""A calendar date written as `YYYY-MM-DD` (a number is not a date)."""

DATE_TIME_PATTERN = (
    r"^(?:1\d{3}|[2-8]\d{3}|9[0-8]\d{2}|99[0-8]\d|999[0-8])"
    r"-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
"""RFC 3339 with its UTC offset, in the years 1000 to 9998.

The bound on the year is not taste: an offset moves the instant across a year boundary, so
`0001-01-01T00:00:00+14:00` is before the first instant Python can hold and
`9999-12-31T23:59:59-14:00` after the last, and both ends of Python's range are what the
PostgreSQL driver writes as minus and plus infinity."""

_DATE_TIME = re.compile(DATE_TIME_PATTERN)


def _rfc3339(value: object) -> object:
    # JSON Schema's date-time is RFC 3339: a string with a UTC offset. Pydantic alone would
    # also read a number of seconds ("1700000000") or a time with no offset.
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise ValueError(
            "must be an RFC 3339 date-time with an offset in the years 1000 to 9998,"
            " e.g. 2026-01-31T12:00:00Z"
        )
    return value


DATE_TIME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "pattern": DATE_TIME_PATTERN,
}

DateTime = Annotated[datetime, BeforeValidator(_rfc3339), WithJsonSchema(DATE_TIME_SCHEMA)]
"""An instant written as an RFC 3339 string with its UTC offset (`DATE_TIME_PATTERN`)."""

OptionalDateTime = Annotated[DateTime | None, WithJsonSchema(DATE_TIME_SCHEMA)]
"""An optional instant query parameter (a filter's bound): absent rather than null."""


# ---------------------------------------------------------------- Brazilian addresses


def _range_regex(low: str, high: str) -> str:
    """A regex matching exactly the fixed-width digit strings from `low` to `high`."""
    if low == high:
        return low
    width = len(low)
    rest = width - 1
    if rest == 0:
        return f"[{low}-{high}]"
    if low[0] == high[0]:
        return low[0] + _range_regex(low[1:], high[1:])
    low_full, high_full = low[1:] == "0" * rest, high[1:] == "9" * rest
    first = int(low[0]) + (0 if low_full else 1)
    last = int(high[0]) - (0 if high_full else 1)
    parts = [] if low_full else [low[0] + _range_regex(low[1:], "9" * rest)]
    if first <= last:
        digits = str(first) if first == last else f"[{first}-{last}]"
        parts.append(digits + rf"\d{{{rest}}}")
    if not high_full:
        parts.append(high[0] + _range_regex("0" * rest, high[1:]))
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _cep_pattern(ranges: list[tuple[int, int]]) -> str:
    prefixes = "|".join(_range_regex(f"{low:05d}", f"{high:05d}") for low, high in ranges)
    return rf"^(?:{prefixes})-?\d{{3}}$"


UF_CODES: tuple[str, ...] = tuple(sorted({state for _, _, state in cep.STATE_RANGES}))
"""The 27 federative units, as the Correios allocate CEP ranges to them."""

CEP_PATTERN = _cep_pattern([(low, high) for low, high, _ in cep.STATE_RANGES])
"""A CEP (`01310-100` or `01310100`) inside a range the Correios allocate: the same rule as
`shopkit.cep.normalize_cep`, so a CEP matching this pattern is never refused as invalid."""

CEP_OF_STATE: dict[str, str] = {
    uf: _cep_pattern([(low, high) for low, high, state in cep.STATE_RANGES if state == uf])
    for uf in UF_CODES
}
"""Per federative unit, the pattern of its CEPs."""

CEP_MATCHES_STATE: list[JsonValue] = [
    {"properties": {"state": {"const": uf}, "cep": {"pattern": pattern}}}
    for uf, pattern in CEP_OF_STATE.items()
]
"""`anyOf` for an object with `state` and `cep`: the CEP lies in that state's ranges."""

Cep = Annotated[str, StringConstraints(pattern=CEP_PATTERN)]
"""A CEP as a client writes it; `shopkit.cep.normalize_cep` gives its eight digits."""

Uf = Literal[
    "AC",
    "AL",
    "AM",
    "AP",
    "BA",
    "CE",
    "DF",
    "ES",
    "GO",
    "MA",
    "MG",
    "MS",
    "MT",
    "PA",
    "PB",
    "PE",
    "PI",
    "PR",
    "RJ",
    "RN",
    "RO",
    "RR",
    "RS",
    "SC",
    "SE",
    "SP",
    "TO",
]
"""A federative unit (state) code, upper case."""


# ---------------------------------------------------------------- models


def omitted_not_null(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of a PATCH model whose fields may be left out but never be null.

    The fields are typed `X | None = None` (absent), while a JSON null is refused by the model's
    own validator; the schema then lists each field by its `X` alone.
    """
    for prop in schema.get("properties", {}).values():
        branches = prop.get("anyOf")
        if isinstance(branches, list):
            kept = [branch for branch in branches if branch != {"type": "null"}]
            if len(kept) == 1:
                prop.pop("anyOf")
                prop.update(kept[0])
            else:
                prop["anyOf"] = kept
        if prop.get("default", ...) is None:
            prop.pop("default")
