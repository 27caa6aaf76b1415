"""`shopkit.params`: what a schema says is exactly what validation accepts."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, TypeAdapter, ValidationError
from shopkit import cep, params

from contracts import new_id


def _accepts(adapter: TypeAdapter[Any], raw: str) -> bool:
    try:
        adapter.validate_json(raw)
    except ValidationError:
        return False
    return True


@settings(max_examples=500)
@given(st.integers(min_value=0, max_value=99_999_999), st.booleans())
def test_the_cep_pattern_is_the_correios_allocation(number: int, dashed: bool) -> None:
    digits = f"{number:08d}"
    written = f"{digits[:5]}-{digits[5:]}" if dashed else digits
    try:
        state: str | None = cep.region_of(cep.normalize_cep(written)).state
    except cep.InvalidCepError:
        state = None
    assert bool(re.match(params.CEP_PATTERN, written)) == (state is not None)
    matching = [uf for uf, pattern in params.CEP_OF_STATE.items() if re.match(pattern, written)]
    assert matching == ([state] if state else [])


def test_every_prefix_boundary_of_the_cep_table() -> None:
    for prefix in range(100_000):
        written = f"{prefix:05d}000"
        try:
            cep.normalize_cep(written)
            allocated = True
        except cep.InvalidCepError:
            allocated = False
        assert bool(re.match(params.CEP_PATTERN, written)) == allocated, written


def test_json_integers_are_json_schema_integers() -> None:
    bounded = TypeAdapter(Annotated[int, Field(ge=1, le=5), params.JsonInteger])
    assert bounded.json_schema() == {"type": "integer", "minimum": 1, "maximum": 5}
    assert [bounded.validate_json(raw) for raw in ("1", "5", "3.0")] == [1, 5, 3]
    for raw in ('"3"', "true", "2.5", "0", "6", "null"):
        assert not _accepts(bounded, raw), raw


def test_dates_and_times_are_strings_in_their_formats() -> None:
    date, instant = TypeAdapter(params.Date), TypeAdapter(params.DateTime)
    assert str(date.validate_json('"2026-02-28"')) == "2026-02-28"
    assert instant.validate_json('"2026-01-31T12:00:00.5-03:00"').utcoffset() is not None
    for raw in ("0", '"20260228"', '"2026-02-30"'):
        assert not _accepts(date, raw), raw
    for raw in ("0", '"1700000000"', '"2026-01-31T12:00:00"', '"2026-01-31"'):
        assert not _accepts(instant, raw), raw
    # At the ends of the year range an offset would carry the instant out of what Python and
    # the PostgreSQL driver hold; the schema says so with the same pattern.
    assert instant.validate_json('"1000-01-01T00:00:00+14:00"').year == 1000
    assert instant.validate_json('"9998-12-31T23:59:59-14:00"').year == 9998
    for raw in (
        '"0001-01-01T00:00:00+14:00"',
        '"9999-12-31T23:59:59-14:00"',
        '"0999-12-31T00:00:00Z"',
    ):
        assert not _accepts(instant, raw), raw
    schema = instant.json_schema()
    assert schema["format"] == "date-time"
    assert re.fullmatch(schema["pattern"], "2026-01-31T12:00:00.5-03:00")
    assert not re.fullmatch(schema["pattern"], "9999-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("pattern", "accepted", "refused"),
    [
        (params.SINGLE_LINE, ["Ana", " Ana Souza ", "São Paulo"], ["", "   ", "a\x00b", "a\nb"]),
        (params.MULTI_LINE, ["line\nline", "tab\there"], ["", "\n\t ", "bell\x07"]),
        (params.NO_CONTROL, ["", "any\ntext"], ["nul\x00"]),
    ],
)
def test_text_patterns(pattern: str, accepted: list[str], refused: list[str]) -> None:
    adapter = TypeAdapter(Annotated[str, Field(pattern=pattern)])
    for text in accepted:
        assert _accepts(adapter, json.dumps(text)), text
    for text in refused:
        assert not _accepts(adapter, json.dumps(text)), text


def test_ids_are_lowercase_uuid7_and_optional_ones_are_never_null_in_the_schema() -> None:
    ids = TypeAdapter(params.Uuid7)
    assert ids.validate_python(new_id())
    for bad in (new_id().upper(), "e3e70682-c209-1cac-a29f-6fbed82c07cd", "0" * 36, "x"):
        assert not _accepts(ids, json.dumps(bad)), bad
    assert TypeAdapter(params.OptionalUuid7).json_schema() == params.UUID7_SCHEMA
