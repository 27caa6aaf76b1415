from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse
from shopkit.db import SessionDep
from shopkit.params import OptionalUuid7
from shopkit.problems import UnauthorizedError, responses
from shopkit.security import CurrentUser, VerifierDep

from auth_service import errors
from auth_service.deps import ClientDep, RuntimeDep
from auth_service.schemas import (
    Accepted,
    AuthExport,
    Introspection,
    LoginHistoryPage,
    LoginRequest,
    LogoutRequest,
    MePublic,
    MfaDisableRequest,
    MfaEnableRequest,
    MfaSetup,
    PasswordChangeRequest,
    PasswordForgotRequest,
    PasswordResetRequest,
    ProfileUpdate,
    RecoveryCodes,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserPublic,
    VerifyRequest,
)
from auth_service.service import accounts, mfa, sessions

router = APIRouter(prefix="/api/auth", tags=["auth"])
wellknown_router = APIRouter(tags=["auth"])

NO_STORE = {"Cache-Control": "no-store"}
"""Token responses must not be cached (RFC 6749 section 5.1)."""


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=responses(errors.EmailTakenError, errors.WeakPasswordError),
)
async def register(body: RegisterRequest, session: SessionDep, rt: RuntimeDep) -> UserPublic:
    """Create a customer account (roles cannot be chosen here)."""
    return await accounts.register(session, rt=rt, request=body)


@router.post(
    "/login", responses=responses(errors.InvalidCredentialsError, errors.TooManyAttemptsError)
)
async def login(
    body: LoginRequest, rt: RuntimeDep, client: ClientDep, response: Response
) -> TokenPair:
    """Exchange credentials for tokens. With MFA on, 401 `mfa_required` until a code is given."""
    response.headers.update(NO_STORE)
    return await sessions.login(rt=rt, request=body, client=client)


@router.post("/refresh", responses=responses(errors.InvalidRefreshTokenError))
async def refresh(body: RefreshRequest, rt: RuntimeDep, response: Response) -> TokenPair:
    """Rotate a refresh token. Presenting a spent one revokes its whole session."""
    response.headers.update(NO_STORE)
    return await sessions.refresh(rt=rt, refresh_token=body.refresh_token)


@router.post(
    "/logout", status_code=status.HTTP_204_NO_CONTENT, responses=responses(UnauthorizedError)
)
async def logout(
    body: LogoutRequest, principal: CurrentUser, session: SessionDep, rt: RuntimeDep
) -> None:
    """Revoke the refresh token's session and deny this access token until it expires."""
    await sessions.logout(session, rt=rt, principal=principal, refresh_token=body.refresh_token)


@router.post("/verify")
async def verify(body: VerifyRequest, verifier: VerifierDep) -> Introspection:
    """Token introspection: is this access token valid right now, and for whom."""
    return await sessions.introspect(verifier=verifier, token=body.token)


@router.get("/me", responses=responses(UnauthorizedError, errors.UserNotFoundError))
async def me(principal: CurrentUser, session: SessionDep) -> MePublic:
    return await accounts.me(session, principal=principal)


@router.patch("/me", responses=responses(UnauthorizedError, errors.UserNotFoundError))
async def update_me(body: ProfileUpdate, principal: CurrentUser, session: SessionDep) -> MePublic:
    """Change the account's name (the only field a user may set here)."""
    return await accounts.update_profile(session, principal=principal, update=body)


@router.post("/mfa/setup", responses=responses(UnauthorizedError, errors.MfaAlreadyEnabledError))
async def mfa_setup(principal: CurrentUser, session: SessionDep, rt: RuntimeDep) -> MfaSetup:
    """A new TOTP secret and otpauth URI; MFA turns on after `/mfa/enable` confirms a code."""
    return await mfa.setup(session, rt=rt, principal=principal)


@router.post(
    "/mfa/enable",
    responses=responses(
        UnauthorizedError,
        errors.MfaSetupMissingError,
        errors.MfaCodeRejectedError,
        errors.ReauthenticationFailedError,
        errors.TooManyAttemptsError,
    ),
)
async def mfa_enable(
    *,
    body: MfaEnableRequest,
    principal: CurrentUser,
    session: SessionDep,
    rt: RuntimeDep,
    client: ClientDep,
    response: Response,
) -> RecoveryCodes:
    """Confirm enrolment with the password and a current code; returns 10 single-use
    recovery codes, once."""
    response.headers.update(NO_STORE)
    return await mfa.enable(
        session, rt=rt, principal=principal, password=body.password, code=body.code, client=client
    )


@router.post(
    "/mfa/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(
        UnauthorizedError,
        errors.ReauthenticationFailedError,
        errors.MfaNotEnabledError,
        errors.TooManyAttemptsError,
    ),
)
async def mfa_disable(
    body: MfaDisableRequest,
    principal: CurrentUser,
    session: SessionDep,
    rt: RuntimeDep,
    client: ClientDep,
) -> None:
    await mfa.disable(
        session, rt=rt, principal=principal, password=body.password, code=body.code, client=client
    )


@router.post("/password/forgot", status_code=status.HTTP_202_ACCEPTED)
async def password_forgot(
    body: PasswordForgotRequest, session: SessionDep, rt: RuntimeDep
) -> Accepted:
    """Always 202: whether the account exists is not revealed."""
    await accounts.forgot_password(session, rt=rt, email=body.email)
    return Accepted()


@router.post(
    "/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(errors.InvalidResetTokenError, errors.WeakPasswordError),
)
async def password_reset(body: PasswordResetRequest, session: SessionDep, rt: RuntimeDep) -> None:
    """Set a new password with the emailed token; every session of the account is revoked."""
    await accounts.reset_password(session, rt=rt, token=body.token, new_password=body.new_password)


@router.post(
    "/password/change",
    responses=responses(
        UnauthorizedError,
        # One entry per status: 403 is also `mfa-code-required` (MFA on, no code sent).
        errors.ReauthenticationFailedError,
        errors.WeakPasswordError,
        errors.TooManyAttemptsError,
    ),
)
async def password_change(
    *,
    body: PasswordChangeRequest,
    principal: CurrentUser,
    session: SessionDep,
    rt: RuntimeDep,
    client: ClientDep,
    response: Response,
) -> TokenPair:
    """Change the password; all sessions end and a fresh token pair is returned. With MFA on,
    a TOTP or recovery code is needed too (403 `mfa-code-required` without one, 403
    `reauthentication-failed` for a wrong password or code, counted towards the lockout)."""
    response.headers.update(NO_STORE)
    return await accounts.change_password(
        session,
        rt=rt,
        principal=principal,
        current_password=body.current_password,
        new_password=body.new_password,
        totp_code=body.totp_code,
        recovery_code=body.recovery_code,
        client=client,
    )


@router.get("/login-history", responses=responses(UnauthorizedError))
async def login_history(
    principal: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: OptionalUuid7 = None,
) -> LoginHistoryPage:
    """The caller's login attempts, newest first (time, IP, user agent, outcome)."""
    return await accounts.login_history(session, principal=principal, limit=limit, cursor=cursor)


@router.get("/me/export", responses=responses(UnauthorizedError))
async def export_my_data(principal: CurrentUser, session: SessionDep) -> AuthExport:
    """Everything auth holds about the caller (used by the users service's export): the
    account without its secrets, the login history and the live sessions."""
    return await accounts.export(session, principal=principal)


@wellknown_router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(rt: RuntimeDep) -> JSONResponse:
    body: dict[str, Any] = rt.keyring.ring.jwks
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})
