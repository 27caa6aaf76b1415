"""Request and response bodies. Requests forbid unknown fields: nothing can be mass-assigned."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

Password = Annotated[str, Field(min_length=1, max_length=1024)]
"""Length rules live in the policy (clear messages); the cap only bounds the request."""
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=6, max_length=32)]
OpaqueToken = Annotated[str, StringConstraints(min_length=16, max_length=256)]
LoginEmail = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Request):
    email: EmailStr
    password: Password
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
    new_password: Password


class PasswordChangeRequest(Request):
    current_password: Password
    new_password: Password


class LoginAttemptPublic(BaseModel):
    at: datetime
    ip: str
    user_agent: str
    outcome: str


class LoginHistoryPage(BaseModel):
    items: list[LoginAttemptPublic]
    next_cursor: str | None
