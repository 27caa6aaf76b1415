"""Request and response bodies. Requests forbid unknown fields: nothing can be mass-assigned.

Request fields are documented exactly as they are validated (see `shopkit.params`); the
password policy, which no single keyword expresses, is spelled out with `not` in the schema
and enforced by `auth_service.passwords.check_policy`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from shopkit.params import SINGLE_LINE, Stripped

from auth_service.passwords import COMMON_PASSWORDS, MAX_LENGTH, MIN_LENGTH


def _case_insensitive(word: str) -> str:
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.lower() != c.upper() else re.escape(c) for c in word
    )


_FEW_DISTINCT = r"^(.)\1*(?:(.)(?:\1|\2)*)?$"
"""Two different characters or fewer, repeated: `aaaaaaaaaa`, `ababababab`."""
_COMMON = "^(?:" + "|".join(_case_insensitive(w) for w in sorted(COMMON_PASSWORDS)) + ")$"

NEW_PASSWORD_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "password",
    "minLength": MIN_LENGTH,
    "maxLength": MAX_LENGTH,
    "not": {"anyOf": [{"pattern": _FEW_DISTINCT}, {"pattern": _COMMON}]},
    "description": f"{MIN_LENGTH} to {MAX_LENGTH} characters, at least three different ones "
    "(letters counted without case), not a common password, not the account's email address "
    "or its local part.",
    "examples": ["correct horse battery staple"],
}

_ATOM = "[A-Za-z0-9_+-]"
_LOCAL = (
    f"(?:{_ATOM}{{1,64}}|{_ATOM}{{1,32}}\\.{_ATOM}{{1,31}}"
    f"|{_ATOM}{{1,20}}(?:\\.{_ATOM}{{1,20}}){{2}}|{_ATOM}{{1,15}}(?:\\.{_ATOM}{{1,15}}){{3}})"
)
"""At most 64 characters in up to four dot-separated parts."""
_LABEL = r"[A-Za-z0-9]{1,24}(?:-[A-Za-z0-9]{1,8}){0,2}"
EMAIL_PATTERN = rf"^ *{_LOCAL}@(?:{_LABEL}\.){{1,3}}[A-Za-z]{{2,20}} *$"
"""The addresses an account can be opened with: a plain ASCII mailbox (at most 64 characters,
up to four dot-separated parts) at a host name with a letter TLD. Narrower than RFC 5321 on
purpose: every address it admits is deliverable syntax for every mail library downstream.
Surrounding spaces are dropped and the address is compared in lower case."""
_SPECIAL_USE = (
    r"\.(?:"
    + "|".join(
        _case_insensitive(tld) for tld in ("arpa", "invalid", "local", "localhost", "onion", "test")
    )
    + ") *$"
)


def _deliverable(value: str) -> str:
    # Special-use TLDs (RFC 6761: .test, .local, ...) are no mail domains; the pattern admits
    # their shape, `not` in the schema and this check refuse them.
    value = value.strip()
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return value


Email = Annotated[
    str,
    StringConstraints(pattern=EMAIL_PATTERN),
    AfterValidator(_deliverable),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": EMAIL_PATTERN,
            "not": {"pattern": _SPECIAL_USE},
            "examples": ["ana.souza@example.com"],
        }
    ),
]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
"""A password given to be checked (login, re-authentication): any text, bounded."""
NewPassword = Annotated[
    str,
    StringConstraints(min_length=MIN_LENGTH, max_length=MAX_LENGTH),
    WithJsonSchema(NEW_PASSWORD_SCHEMA),
]
"""A password being set: the policy's rules (a 422 `weak-password` names the one broken)."""
Name = Annotated[str, StringConstraints(max_length=200, pattern=SINGLE_LINE), Stripped]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{4,30}[A-Za-z0-9]$")]
"""A six-digit TOTP code or a recovery code (`abcde-fghij`; case and dashes do not matter)."""
OpaqueToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,256}$")]
"""A refresh or reset token as issued (URL-safe base64)."""
LoginEmail = Annotated[
    str, StringConstraints(min_length=3, max_length=320, pattern=SINGLE_LINE), Stripped
]
"""The email an account was registered with (compared normalised, so any text is looked up)."""


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Request):
    email: Email
    password: NewPassword
    name: Name


class UserPublic(BaseModel):
    id: str
    email: str
    name: str


class MePublic(UserPublic):
    roles: list[str]
    mfa_enabled: bool
    created_at: datetime


class ProfileUpdate(Request):
    name: Name


class LoginRequest(Request):
    email: LoginEmail
    password: Password
    totp_code: Code | None = None
    recovery_code: Code | None = Field(
        default=None, description="A single-use MFA recovery code, instead of totp_code."
    )


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a token type, not a secret)
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_expires_at: datetime = Field(description="End of this login session (absolute).")


class RefreshRequest(Request):
    refresh_token: OpaqueToken


class LogoutRequest(Request):
    refresh_token: OpaqueToken | None = None


class VerifyRequest(Request):
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class Introspection(BaseModel):
    """RFC 7662-style: only `active` when the token is not (or no longer) valid."""

    active: bool
    sub: str | None = None
    roles: list[str] | None = None
    exp: int | None = None
    jti: str | None = None
    iss: str | None = None
    aud: str | None = None


class MfaSetup(BaseModel):
    secret: str
    otpauth_uri: str


class MfaEnableRequest(Request):
    password: Password = Field(
        description="The account's password: a stolen access token alone cannot bind an "
        "authenticator (and lock the owner out)."
    )
    code: Code


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once; each works one time.")


class MfaDisableRequest(Request):
    password: Password
    code: Code = Field(description="A current TOTP code or an unused recovery code.")


class PasswordForgotRequest(Request):
    email: LoginEmail


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"


class PasswordResetRequest(Request):
    token: OpaqueToken
    new_password: NewPassword


class PasswordChangeRequest(Request):
    current_password: Password
    new_password: NewPassword
    totp_code: Code | None = Field(
        default=None,
        description="With MFA on, a current TOTP code (or recovery_code): the password alone, "
        "with a stolen access token, cannot change it. Without either, 403 `mfa-code-required`.",
    )
    recovery_code: Code | None = Field(
        default=None, description="A single-use MFA recovery code, instead of totp_code."
    )


class LoginAttemptPublic(BaseModel):
    at: datetime
    ip: str
    user_agent: str
    outcome: str


class LoginHistoryPage(BaseModel):
    items: list[LoginAttemptPublic]
    next_cursor: str | None


class AccountExport(BaseModel):
    """The account as stored, without its secrets (password hash, TOTP secret, codes)."""

    id: str
    email: str
    name: str
    created_at: datetime
    mfa_enabled: bool


class SessionExport(BaseModel):
    """A login session that has not ended (its tokens are never shown, nor their hashes)."""

    created_at: datetime
    expires_at: datetime


class AuthExport(BaseModel):
    """Everything auth holds about the caller (LGPD/GDPR access request)."""

    user_id: str
    account: AccountExport | None
    """None when auth has no (live) account for the token's user."""
    login_history: list[LoginAttemptPublic]
    """Newest first."""
    sessions: list[SessionExport]
    """Live sessions, newest first."""
