"""Signed shipping quotes: shipping issues them, orders verifies them without a network call.

A quote id is `<base64url(json payload)>.<base64url(HMAC-SHA256)>`; the payload fixes the price,
carrier, service, destination CEP, the items it was computed for and its expiry, so checkout
never trusts a shipping price sent by the client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, ValidationError


class QuoteItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str
    quantity: int


class SignedQuote(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    quote_id: str = ""
    carrier: str
    service: str
    price: int
    currency: str
    estimated_days: int
    destination_cep: str
    items: tuple[QuoteItem, ...]
    expires_at: datetime

    def is_expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.expires_at

    def covers(self, items: list[tuple[str, int]]) -> bool:
        """True when the quote was computed for exactly these (sku, quantity) lines."""
        return sorted((i.sku, i.quantity) for i in self.items) == sorted(items)


class InvalidQuoteError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_quote(quote: SignedQuote, secret: str) -> str:
    body = quote.model_dump(mode="json", exclude={"quote_id"})
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    signature = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify_quote(quote_id: str, secret: str) -> SignedQuote:
    """The quote behind a signed id; raises `InvalidQuoteError` if forged or malformed.
    Expiry is the caller's rule to check (`is_expired`)."""
    try:
        encoded_payload, encoded_signature = quote_id.split(".", 1)
        payload = _unb64(encoded_payload)
        signature = _unb64(encoded_signature)
    except (ValueError, TypeError) as exc:
        raise InvalidQuoteError("malformed quote id") from exc
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidQuoteError("quote signature does not match")
    try:
        return SignedQuote.model_validate_json(payload).model_copy(update={"quote_id": quote_id})
    except ValidationError as exc:
        raise InvalidQuoteError("quote payload invalid") from exc
