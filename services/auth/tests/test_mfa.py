"""TOTP enrolment, MFA login, replay protection, recovery codes, disabling."""

from __future__ import annotations

import time

import httpx
import jwt
import pyotp

from .conftest import Account, AuthStack

PROBLEM = "application/problem+json"


ENROLMENT_CODES: dict[str, str] = {}
"""The code each secret was enabled with, by secret (a test replays it)."""


async def _enrol(auth_stack: AuthStack, account: Account) -> tuple[str, list[str], str]:
    token = (await auth_stack.tokens(account))["access_token"]
    setup = await auth_stack.gateway.post(
        "/api/auth/mfa/setup", headers=auth_stack.headers(token=token)
    )
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert setup.json()["otpauth_uri"].startswith("otpauth://totp/")
    assert account.email.replace("@", "%40") in setup.json()["otpauth_uri"]

    wrong = await auth_stack.gateway.post(
        "/api/auth/mfa/enable",
        json={"password": account.password, "code": "000000"},
        headers=auth_stack.headers(token=token),
    )
    assert wrong.status_code == 403
    assert wrong.json()["type"].endswith("/mfa-code-rejected")
    ENROLMENT_CODES[secret] = pyotp.TOTP(secret).now()
    # The token alone (a stolen one) cannot bind an authenticator: the password is asked too.
    tokenless = await auth_stack.gateway.post(
        "/api/auth/mfa/enable",
        json={"code": ENROLMENT_CODES[secret]},
        headers=auth_stack.headers(token=token),
    )
    assert tokenless.status_code == 422
    guessed = await auth_stack.gateway.post(
        "/api/auth/mfa/enable",
        json={"password": account.password + "x", "code": ENROLMENT_CODES[secret]},
        headers=auth_stack.headers(token=token),
    )
    assert guessed.status_code == 403, guessed.text
    assert guessed.json()["type"].endswith("/reauthentication-failed")
    enabled = await auth_stack.gateway.post(
        "/api/auth/mfa/enable",
        json={"password": account.password, "code": ENROLMENT_CODES[secret]},
        headers=auth_stack.headers(token=token),
    )
    assert enabled.status_code == 200, enabled.text
    codes = enabled.json()["recovery_codes"]
    return secret, codes, token


async def test_mfa_enrolment_then_login_needs_a_code(
    auth_stack: AuthStack, account: Account
) -> None:
    secret, codes, token = await _enrol(auth_stack, account)
    assert len(codes) == len(set(codes)) == 10
    assert (await auth_stack.me(token)).json()["mfa_enabled"] is True
    stored = await auth_stack.db.fetchval("SELECT mfa_secret FROM users WHERE id = $1", account.id)
    assert secret.encode() not in stored  # encrypted at rest

    required = await auth_stack.login(account)
    assert required.status_code == 401
    assert required.headers["content-type"] == PROBLEM
    assert required.json()["type"].endswith("/mfa_required")
    assert required.json()["code"] == "mfa_required"

    # The code used for enrolment cannot be replayed; the next time step's code works once.
    # (Not `now()`: a new time step may have begun since, and its code would be fresh.)
    replay = await auth_stack.login(account, totp_code=ENROLMENT_CODES[secret])
    assert replay.status_code == 401
    assert replay.json()["type"].endswith("/invalid-mfa-code")
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    accepted = await auth_stack.login(account, totp_code=next_code)
    assert accepted.status_code == 200, accepted.text
    assert (await auth_stack.login(account, totp_code=next_code)).status_code == 401

    history = (
        await auth_stack.gateway.get(
            "/api/auth/login-history", headers=auth_stack.headers(token=token)
        )
    ).json()["items"]
    assert [item["outcome"] for item in history[:4]] == [
        "invalid_mfa_code",
        "success",
        "invalid_mfa_code",
        "mfa_required",
    ]


async def test_recovery_codes_work_once_each(auth_stack: AuthStack, account: Account) -> None:
    _, codes, _ = await _enrol(auth_stack, account)
    first = await auth_stack.login(account, recovery_code=codes[0].upper())
    assert first.status_code == 200
    again = await auth_stack.login(account, recovery_code=codes[0])
    assert again.status_code == 401
    second = await auth_stack.login(account, recovery_code=codes[1].replace("-", ""))
    assert second.status_code == 200
    hashes = await auth_stack.db.fetch(
        "SELECT code_hash FROM recovery_codes WHERE user_id = $1", account.id
    )
    assert len(hashes) == 10
    assert not {row["code_hash"] for row in hashes} & set(codes)  # stored hashed


async def test_disabling_mfa_needs_password_and_code(
    auth_stack: AuthStack, account: Account
) -> None:
    _, codes, token = await _enrol(auth_stack, account)
    wrong_password = await auth_stack.gateway.post(
        "/api/auth/mfa/disable",
        json={"password": "wrong password!", "code": codes[0]},
        headers=auth_stack.headers(token=token),
    )
    assert wrong_password.status_code == 403
    wrong_code = await auth_stack.gateway.post(
        "/api/auth/mfa/disable",
        json={"password": account.password, "code": "123456"},
        headers=auth_stack.headers(token=token),
    )
    assert wrong_code.status_code == 403
    disabled = await auth_stack.gateway.post(
        "/api/auth/mfa/disable",
        json={"password": account.password, "code": codes[0]},
        headers=auth_stack.headers(token=token),
    )
    assert disabled.status_code == 204
    assert (await auth_stack.login(account)).status_code == 200
    assert (
        await auth_stack.db.fetchval(
            "SELECT count(*) FROM recovery_codes WHERE user_id = $1", account.id
        )
        == 0
    )
    again = await auth_stack.gateway.post(
        "/api/auth/mfa/disable",
        json={"password": account.password, "code": codes[1]},
        headers=auth_stack.headers(token=token),
    )
    assert again.status_code == 409


async def test_mfa_setup_twice_and_enable_without_setup_are_conflicts(
    auth_stack: AuthStack, account: Account
) -> None:
    token = (await auth_stack.tokens(account))["access_token"]
    early = await auth_stack.gateway.post(
        "/api/auth/mfa/enable",
        json={"password": account.password, "code": "123456"},
        headers=auth_stack.headers(token=token),
    )
    assert early.status_code == 409
    _, _, token = await _enrol(auth_stack, account)
    again = await auth_stack.gateway.post(
        "/api/auth/mfa/setup", headers=auth_stack.headers(token=token)
    )
    assert again.status_code == 409
    unknown_code = await auth_stack.login(account, recovery_code="x" * 10)
    assert unknown_code.status_code == 401


async def _change(auth_stack: AuthStack, token: str, **body: str) -> httpx.Response:
    return await auth_stack.gateway.post(
        "/api/auth/password/change", json=body, headers=auth_stack.headers(token=token)
    )


async def test_password_change_with_mfa_on_needs_a_code_like_a_login(
    auth_stack: AuthStack, account: Account
) -> None:
    """A stolen access token and the password changed the password of an MFA account, ended
    the owner's sessions and opened a 30-day one whose `auth_time` passed for a recent
    sign-in. The change opens a session, so it is proven as a login is."""
    secret, codes, token = await _enrol(auth_stack, account)
    new = "a brand new passphrase"

    missing = await _change(auth_stack, token, current_password=account.password, new_password=new)
    assert missing.status_code == 403, missing.text
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["type"].endswith("/mfa-code-required")
    wrong = await _change(
        auth_stack, token, current_password=account.password, new_password=new, totp_code="000000"
    )
    assert wrong.status_code == 403, wrong.text
    assert wrong.json()["type"].endswith("/reauthentication-failed")
    # Nothing changed: the owner's session lives on and the old password still signs in.
    assert (await auth_stack.me(token)).status_code == 200
    assert (await auth_stack.login(account)).json()["type"].endswith("/mfa_required")

    changed = await _change(
        auth_stack,
        token,
        current_password=account.password,
        new_password=new,
        totp_code=pyotp.TOTP(secret).at(time.time() + 30),
    )
    assert changed.status_code == 200, changed.text
    assert (await auth_stack.me(token)).status_code == 401
    fresh = changed.json()["access_token"]
    opened = await auth_stack.db.fetchval(
        "SELECT max(created_at) FROM refresh_families WHERE user_id = $1", account.id
    )
    claims = jwt.decode(fresh, options={"verify_signature": False})
    assert claims["auth_time"] == int(opened.timestamp())

    # A recovery code works instead of a TOTP code, once.
    again = await _change(
        auth_stack,
        fresh,
        current_password=new,
        new_password=account.password,
        recovery_code=codes[0],
    )
    assert again.status_code == 200, again.text
    spent = await _change(
        auth_stack,
        again.json()["access_token"],
        current_password=account.password,
        new_password=new,
        recovery_code=codes[0],
    )
    assert spent.status_code == 403
    assert spent.json()["type"].endswith("/reauthentication-failed")


async def test_wrong_codes_at_password_change_count_towards_the_lockout(
    auth_stack: AuthStack, account: Account
) -> None:
    secret, _, _ = await _enrol(auth_stack, account)
    # A login with a good code clears the failure the enrolment's wrong password counted.
    login = await auth_stack.login(account, totp_code=pyotp.TOTP(secret).at(time.time() + 30))
    assert login.status_code == 200
    token = login.json()["access_token"]
    for n in range(auth_stack.settings.login_account_max_failures):
        guess = await _change(
            auth_stack,
            token,
            current_password=account.password,
            new_password="a brand new passphrase",
            totp_code=f"{n:06d}",
        )
        assert guess.status_code == 403, guess.text
    locked = await _change(
        auth_stack,
        token,
        current_password=account.password,
        new_password="a brand new passphrase",
        recovery_code="abcde-fghij",
    )
    assert locked.status_code == 429
    assert (await auth_stack.login(account)).status_code == 429
