"""Opaque cursors for `{"items", "next_cursor"}` lists."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from orders_service import errors


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str, valid: Callable[[str], bool]) -> str:
    """The one value in `cursor`, which must pass `valid` (the shape of what was issued)."""
    value = decode_cursor_parts(cursor, 1)[0]
    if not valid(value):
        raise errors.InvalidCursorError("cursor is not one this API issued")
    return value


def decode_cursor_parts(cursor: str, parts: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise errors.InvalidCursorError("cursor is not one this API issued") from exc
    values = raw.split("|")
    # A forged cursor can carry control characters, NUL among them, which PostgreSQL text refuses.
    if len(values) != parts or not all(v and v.isprintable() for v in values):
        raise errors.InvalidCursorError("cursor is not one this API issued")
    return values
