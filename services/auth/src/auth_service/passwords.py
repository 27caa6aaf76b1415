"""Password hashing (Argon2id) and the password policy."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from auth_service.errors import WeakPasswordError

MIN_LENGTH = 10
MAX_LENGTH = 128
"""Bounds the hashing work one request can ask for."""

# A marker, not a credential: hence the noqa and nosec.
UNUSABLE_PASSWORD_HASH = "!account-deleted"  # noqa: S105  # nosec B105
"""Stored in place of a deleted account's hash: not an Argon2 (PHC) string, so the verifier
refuses it as a hash and no password can ever match it (`verify` answers False)."""

# Common passwords that pass the length rule (shorter ones already fail it): the usual
# keyboard walks and suffixed words, English and Brazilian Portuguese.
COMMON_PASSWORDS = frozenset(
    {
        "0123456789",
        "0987654321",
        "1111111111",
        "1234567890",
        "12345678910",
        "123456789a",
        "123456789q",
        "1234567890a",
        "1234qwerty",
        "123123123123",
        "1231231231",
        "123qweasdzxc",
        "1q2w3e4r5t",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "9876543210",
        "a123456789",
        "aaaaaaaaaa",
        "abc1234567",
        "abcdefghij",
        "abcd123456",
        "administrator",
        "asdfghjkl1",
        "asdfghjkl;",
        "baseball123",
        "batman12345",
        "changeme123",
        "dragon12345",
        "football123",
        "iloveyou12",
        "iloveyou123",
        "letmein123",
        "master12345",
        "monkey12345",
        "p@ssw0rd123",
        "passw0rd123",
        "password01",
        "password12",
        "password123",
        "password1234",
        "passwordpassword",
        "princess123",
        "q123456789",
        "qazwsxedcrfv",
        "qweasdzxc123",
        "qwerty12345",
        "qwerty123456",
        "qwertyuiop",
        "qwertyuiop123",
        "starwars123",
        "sunshine123",
        "superman123",
        "trustno1234",
        "welcome123",
        "welcome1234",
        "zaq12wsxcde3",
        "zxcvbnm123",
        "zxcvbnm1234",
        "brasil1234",
        "corinthians",
        "flamengo123",
        "gabriel1234",
        "minhasenha",
        "minhasenha123",
        "mudar12345",
        "palmeiras123",
        "saopaulo123",
        "senha12345",
        "senha123456",
        "senhasenha",
        "vasco12345",
        "gremio12345",
        "cruzeiro123",
        "internacional",
    }
)


def check_policy(password: str, *, email: str) -> None:
    """Raise `WeakPasswordError` unless the password is long enough and not guessable."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"password must have at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        raise WeakPasswordError("password is too common")
    if len(set(lowered)) <= 2:
        raise WeakPasswordError("password repeats too few characters")
    local_part = email.split("@", 1)[0].lower()
    if lowered in {email.lower(), local_part}:
        raise WeakPasswordError("password must not be the email address")


class Passwords:
    """Argon2id hashing off the event loop (it is deliberately slow and CPU-bound)."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._dummy_hash = self._hasher.hash("not-a-real-password-used-to-equalise-timing")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify_nothing(self, password: str) -> None:
        """Spend the time of a real verification, so unknown accounts cannot be told apart."""
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
