"""Domain errors of the auth service, mapped once to problem+json by the shared runtime.

As everywhere on the platform: 422 only for what the request schema already refuses (the
password policy is part of it), 401 for a credential that proves nothing (password, refresh or
reset token), 403 for a signed-in user's wrong confirmation code or password, 409 for a request
that conflicts with the account's state.
"""

from __future__ import annotations

from shopkit.problems import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
    UnprocessableError,
)

_BEARER = {"WWW-Authenticate": "Bearer"}


class EmailTakenError(ConflictError):
    slug = "email-taken"
    title = "Email already registered"


class WeakPasswordError(UnprocessableError):
    slug = "weak-password"
    title = "Password does not meet the policy"


class InvalidCredentialsError(UnauthorizedError):
    slug = "invalid-credentials"
    title = "Invalid email or password"


class MfaRequiredError(UnauthorizedError):
    """The password was right; the account also needs a TOTP or recovery code."""

    slug = "mfa_required"
    title = "MFA code required"

    def __init__(self) -> None:
        super().__init__(
            "this account requires a TOTP code (totp_code) or a recovery code", code="mfa_required"
        )


class InvalidMfaCodeError(UnauthorizedError):
    slug = "invalid-mfa-code"
    title = "Invalid MFA code"


class SecondFactorRequiredError(ForbiddenError):
    """A signed-in user's confirmation of an account with MFA on came without a code. A 403,
    not the login's 401: the caller's token is fine, and a 401 tells clients to drop it."""

    slug = "mfa-code-required"
    title = "MFA code required"


class MfaCodeRejectedError(ForbiddenError):
    """Enrolment refused: the code does not prove possession of the new secret."""

    slug = "mfa-code-rejected"
    title = "MFA code does not match"


class TooManyAttemptsError(TooManyRequestsError):
    slug = "too-many-attempts"
    title = "Too many failed attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed attempts; retry in {retry_after} seconds",
            retry_after=retry_after,
            headers={"Retry-After": str(retry_after)},
        )


class InvalidRefreshTokenError(UnauthorizedError):
    slug = "invalid-refresh-token"
    title = "Invalid refresh token"


class RefreshTokenReusedError(UnauthorizedError):
    slug = "refresh-token-reused"
    title = "Refresh token reused"

    def __init__(self) -> None:
        super().__init__("this refresh token was already used; the whole session was revoked")


class InvalidAccessTokenError(UnauthorizedError):
    slug = "invalid-token"
    title = "Invalid access token"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers=_BEARER)


class InvalidResetTokenError(UnauthorizedError):
    """The reset token is the credential of a reset: unknown, spent or expired is a 401, like
    a refresh token."""

    slug = "invalid-reset-token"
    title = "Invalid or expired reset token"


class ReauthenticationFailedError(ForbiddenError):
    """A signed-in user confirmed a sensitive change with a wrong password or code."""

    slug = "reauthentication-failed"
    title = "Password or code is wrong"


class MfaAlreadyEnabledError(ConflictError):
    slug = "mfa-already-enabled"
    title = "MFA is already enabled"


class MfaNotEnabledError(ConflictError):
    slug = "mfa-not-enabled"
    title = "MFA is not enabled"


class MfaSetupMissingError(ConflictError):
    slug = "mfa-setup-missing"
    title = "Start MFA setup first"


class UserNotFoundError(NotFoundError):
    slug = "user-not-found"
    title = "User not found"
