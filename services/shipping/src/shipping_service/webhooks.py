"""Carrier webhook signatures: HMAC-SHA256 over `<timestamp>.<raw body>`, per-carrier secrets.

Header: `X-Carrier-Signature: t=<unix seconds>,v1=<hex digest>` (several `v1` entries allowed
while a secret is rotated). The timestamp is inside the MAC, so a captured request cannot be
replayed later than the freshness window, and the inbox drops replays inside it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SIGNATURE_HEADER = "X-Carrier-Signature"

# ASCII only: str.isdigit() also takes superscripts and other scripts' digits, int() refuses
# some of those and any run past 4,300 digits, and compare_digest refuses non-ASCII text.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class SignatureError(ValueError):
    pass


class StaleSignatureError(SignatureError):
    pass


def signature_for(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature_for(secret, timestamp, body)}"


def verify_signature(
    *, header: str | None, body: bytes, secret: str, now: int, tolerance_seconds: int
) -> int:
    """The signed timestamp, if `header` proves `body` came from the secret's holder recently."""
    if not header:
        raise SignatureError("missing signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and _TIMESTAMP.fullmatch(value):
            timestamp = int(value)
        elif key == "v1" and _DIGEST.fullmatch(value):
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("malformed signature header")
    expected = signature_for(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match")
    # Checked after the MAC so an attacker learns nothing about the window from forged requests.
    if abs(now - timestamp) > tolerance_seconds:
        raise StaleSignatureError("signature timestamp outside the tolerance window")
    return timestamp
