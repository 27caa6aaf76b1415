"""Secrets at rest: encryption of signing keys and TOTP secrets, keyed hashes of bearer secrets.

Both derive their own key from the one master secret (`AUTH_SECRET_KEY`) with HKDF, so a
leaked database alone yields neither usable private keys nor offline-crackable recovery codes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12


def _derive(master: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        master.encode()
    )


class SecretBox:
    """AES-256-GCM with a random nonce; `context` binds a ciphertext to its row."""

    def __init__(self, master: str) -> None:
        self._aead = AESGCM(_derive(master, b"shop-auth/encryption-at-rest/v1"))

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, *, context: str) -> bytes:
        return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], context.encode())


class TokenHasher:
    """HMAC-SHA256 of refresh tokens, reset tokens and recovery codes (stored, never the raw)."""

    def __init__(self, master: str) -> None:
        self._key = _derive(master, b"shop-auth/token-hash/v1")

    def hash(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()


def new_opaque_token() -> str:
    """256 random bits, URL-safe: refresh and reset tokens."""
    return secrets.token_urlsafe(32)
