"""Login, refresh rotation and reuse detection, logout, lockout, history, rehash."""

from __future__ import annotations

import asyncio
import time

import jwt
import pyotp
import pytest
from argon2 import PasswordHasher

from .conftest import PASSWORD, Account, AuthStack, new_email, random_ip
from .test_mfa import _enrol

PROBLEM = "application/problem+json"


async def test_login_returns_a_bearer_pair(auth_stack: AuthStack, account: Account) -> None:
    response = await auth_stack.login(account)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"].count(".") == 2
    assert len(body["refresh_token"]) >= 40
    me = await auth_stack.me(body["access_token"])
    assert me.status_code == 200
    assert me.json()["email"] == account.email


async def test_wrong_password_and_unknown_account_look_the_same(
    auth_stack: AuthStack, account: Account
) -> None:
    wrong = await auth_stack.gateway.post(
        "/api/auth/login",
        json={"email": account.email, "password": "not the password"},
        headers=auth_stack.headers(),
    )
    unknown = await auth_stack.gateway.post(
        "/api/auth/login",
        json={"email": new_email(), "password": "not the password"},
        headers=auth_stack.headers(),
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"] == PROBLEM
    assert wrong.json()["type"] == unknown.json()["type"]
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_a_wrong_password_is_answered_without_waiting_for_the_account_row(
    auth_stack: AuthStack, account: Account
) -> None:
    """The login locked the account's row before checking the password, so concurrent logins
    to one account queued behind each other while those to an unknown address did not: how
    long the last one took told whether the account exists. Here another transaction holds
    the row as an update would (a login in its TOTP step, a profile change) the whole time; a
    wrong password must still be answered meanwhile."""
    async with auth_stack.db.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", account.id)
        wrong = await asyncio.wait_for(
            auth_stack.gateway.post(
                "/api/auth/login",
                json={"email": account.email, "password": "not the password"},
                headers=auth_stack.headers(),
            ),
            timeout=20,
        )
        assert wrong.status_code == 401, wrong.text
    # Once the row is free, the right password logs in (it takes the lock then).
    assert (await auth_stack.login(account)).status_code == 200


async def test_an_email_that_lengthens_when_lowered_is_a_plain_401(auth_stack: AuthStack) -> None:
    """320 characters pass the schema, but "İ" lowers to two: recording the failed attempt
    overflowed its column and the login answered 500."""
    response = await auth_stack.gateway.post(
        "/api/auth/login",
        json={"email": "İ" * 161 + "@x.io", "password": "not the password"},
        headers=auth_stack.headers(),
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM


async def test_a_token_tells_when_its_sign_in_was_and_a_refresh_does_not_renew_it(
    auth_stack: AuthStack, account: Account
) -> None:
    """`auth_time` is the sign-in that opened the session: what cannot be undone (deleting the
    account) asks for a recent one, and a session kept alive by refreshes is not one."""
    first = await auth_stack.tokens(account)
    opened = await auth_stack.db.fetchval(
        "SELECT max(created_at) FROM refresh_families WHERE user_id = $1", account.id
    )
    signed_in = jwt.decode(first["access_token"], options={"verify_signature": False})
    assert signed_in["auth_time"] == int(opened.timestamp())
    await asyncio.sleep(1.1)  # a refresh later on the clock's whole seconds
    rotated = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": first["refresh_token"]},
        headers=auth_stack.headers(),
    )
    refreshed = jwt.decode(rotated.json()["access_token"], options={"verify_signature": False})
    assert refreshed["iat"] > signed_in["auth_time"]
    assert refreshed["auth_time"] == signed_in["auth_time"]


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(
    auth_stack: AuthStack, account: Account
) -> None:
    first = await auth_stack.tokens(account)
    rotated = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": first["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await auth_stack.me(second["access_token"])).status_code == 200

    # The spent token comes back (stolen copy): refused, and the session is over for everyone.
    reused = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": first["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert reused.status_code == 401
    assert reused.json()["type"].endswith("/refresh-token-reused")
    latest = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": second["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert latest.status_code == 401
    # Access tokens of the revoked session are denied too, at the gateway and at the service.
    assert (await auth_stack.me(second["access_token"])).status_code == 401
    assert (await auth_stack.me(second["access_token"], direct=True)).status_code == 401
    assert (await auth_stack.me(first["access_token"])).status_code == 401

    reason = await auth_stack.db.fetchval(
        "SELECT revoked_reason FROM refresh_families WHERE user_id = $1", account.id
    )
    assert reason == "reuse"
    # Another login is a new, unaffected session.
    assert (await auth_stack.login(account)).status_code == 200


async def test_concurrent_refreshes_of_one_token_issue_exactly_one_pair(
    auth_stack: AuthStack, account: Account
) -> None:
    refresh = (await auth_stack.tokens(account))["refresh_token"]
    responses = await asyncio.gather(
        *(
            auth_stack.gateway.post(
                "/api/auth/refresh", json={"refresh_token": refresh}, headers=auth_stack.headers()
            )
            for _ in range(3)
        )
    )
    assert sum(r.status_code == 200 for r in responses) == 1
    assert all(r.status_code in (200, 401) for r in responses)


async def test_refresh_tokens_expire_absolutely(auth_stack: AuthStack, account: Account) -> None:
    pair = await auth_stack.tokens(account)
    await auth_stack.db.execute(
        "UPDATE refresh_families SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        account.id,
    )
    response = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": pair["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_refresh_lifetime_is_30_days_and_not_extended(
    auth_stack: AuthStack, account: Account
) -> None:
    first = await auth_stack.tokens(account)
    second = (
        await auth_stack.gateway.post(
            "/api/auth/refresh",
            json={"refresh_token": first["refresh_token"]},
            headers=auth_stack.headers(),
        )
    ).json()
    assert second["refresh_expires_at"] == first["refresh_expires_at"]
    days = await auth_stack.db.fetchval(
        "SELECT extract(epoch FROM expires_at - created_at) / 86400 FROM refresh_families "
        "WHERE user_id = $1",
        account.id,
    )
    assert round(float(days)) == 30


async def test_logout_revokes_the_session_and_denies_the_access_token(
    auth_stack: AuthStack, account: Account
) -> None:
    pair = await auth_stack.tokens(account)
    other_session = await auth_stack.tokens(account)
    response = await auth_stack.gateway.post(
        "/api/auth/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers=auth_stack.headers(token=pair["access_token"]),
    )
    assert response.status_code == 204
    assert (await auth_stack.me(pair["access_token"])).status_code == 401
    assert (await auth_stack.me(pair["access_token"], direct=True)).status_code == 401
    refresh = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": pair["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert refresh.status_code == 401
    # only that session ended
    assert (await auth_stack.me(other_session["access_token"])).status_code == 200
    ttl = await auth_stack.runtime.redis.ttl(
        "auth:denied-jti:" + _claims(pair["access_token"])["jti"]
    )
    assert 0 < ttl <= 900 + 10


@pytest.mark.parametrize(
    "body",
    [{}, {"refresh_token": "not-a-refresh-token"}],
    ids=["without-the-refresh-token", "with-an-unknown-refresh-token"],
)
async def test_logout_ends_the_callers_session_whatever_refresh_token_it_names(
    auth_stack: AuthStack, account: Account, body: dict[str, str]
) -> None:
    """Logging out with only the access token, or with a refresh token that names no session
    (mistyped, garbage), denied that token and left its session alive: its refresh token kept
    refreshing for up to 30 days."""
    pair = await auth_stack.tokens(account)
    other_session = await auth_stack.tokens(account)
    response = await auth_stack.gateway.post(
        "/api/auth/logout", json=body, headers=auth_stack.headers(token=pair["access_token"])
    )
    assert response.status_code == 204
    assert (await auth_stack.me(pair["access_token"])).status_code == 401
    refresh = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": pair["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert refresh.status_code == 401, refresh.text
    kept = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": other_session["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert kept.status_code == 200  # only the caller's own session ended


async def test_logout_cannot_revoke_someone_elses_session(auth_stack: AuthStack) -> None:
    alice, bob = await auth_stack.register(), await auth_stack.register()
    alice_pair, bob_pair = await auth_stack.tokens(alice), await auth_stack.tokens(bob)
    response = await auth_stack.gateway.post(
        "/api/auth/logout",
        json={"refresh_token": bob_pair["refresh_token"]},
        headers=auth_stack.headers(token=alice_pair["access_token"]),
    )
    assert response.status_code == 204
    refreshed = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": bob_pair["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert refreshed.status_code == 200
    # Alice asked to log out: her own session ends, Bob's token named nothing of hers.
    alice_refresh = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": alice_pair["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert alice_refresh.status_code == 401, alice_refresh.text


async def test_failed_logins_lock_the_account_with_429_and_retry_after(
    auth_stack: AuthStack, account: Account
) -> None:
    threshold = auth_stack.settings.login_account_max_failures
    for _ in range(threshold):
        response = await auth_stack.gateway.post(
            "/api/auth/login",
            json={"email": account.email, "password": "wrong password!"},
            headers=auth_stack.headers(),
        )  # a new address each time: the account is what counts
        assert response.status_code == 401
    locked = await auth_stack.login(account)  # even the right password is refused now
    assert locked.status_code == 429
    assert locked.headers["content-type"] == PROBLEM
    retry_after = int(locked.headers["retry-after"])
    assert 0 < retry_after <= auth_stack.settings.login_lockout_base_seconds
    assert locked.json()["retry_after"] == retry_after


async def test_concurrent_wrong_passwords_get_no_more_checks_than_the_lockout_allows(
    auth_stack: AuthStack, account: Account
) -> None:
    """Every login in flight read the lock before any had recorded its failure (that waited
    for the slow password check), so 7 parallel guesses were all checked although the account
    locks after 5. An attempt's slot is now taken before its password is checked."""
    threshold = auth_stack.settings.login_account_max_failures
    guesses = 12
    responses = await asyncio.gather(
        *(
            auth_stack.gateway.post(
                "/api/auth/login",
                json={"email": account.email, "password": f"guess number {n}!"},
                headers=auth_stack.headers(),  # a new address each: only the account counts
            )
            for n in range(guesses)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    counts = {status: statuses.count(status) for status in set(statuses)}
    assert statuses == [401] * threshold + [429] * (guesses - threshold), counts
    outcomes = await auth_stack.db.fetch(
        "SELECT outcome, count(*) FROM login_attempts WHERE user_id = $1 GROUP BY outcome",
        account.id,
    )
    assert {row["outcome"]: row["count"] for row in outcomes} == {
        "invalid_password": threshold,  # the passwords actually checked
        "locked_out": guesses - threshold,
    }
    locked = await auth_stack.login(account)  # the right password waits out the lockout too
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= auth_stack.settings.login_lockout_base_seconds


async def test_concurrent_wrong_totp_codes_are_limited_like_passwords(
    auth_stack: AuthStack, account: Account
) -> None:
    """The right password with guessed TOTP codes, in parallel: the same refusal path."""
    secret, _, _ = await _enrol(auth_stack, account)
    # A login with a good code clears the failure the enrolment's wrong password counted.
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    assert (await auth_stack.login(account, totp_code=next_code)).status_code == 200
    current = pyotp.TOTP(secret).now()
    threshold = auth_stack.settings.login_account_max_failures
    guesses = 12
    codes = [f"{(int(current) + 1 + n) % 1_000_000:06d}" for n in range(guesses)]
    responses = await asyncio.gather(*(auth_stack.login(account, totp_code=c) for c in codes))
    statuses = sorted(r.status_code for r in responses)
    counts = {status: statuses.count(status) for status in set(statuses)}
    assert statuses == [401] * threshold + [429] * (guesses - threshold), counts


async def test_failed_logins_from_one_address_lock_that_address(auth_stack: AuthStack) -> None:
    ip = random_ip()
    for _ in range(auth_stack.settings.login_ip_max_failures):
        response = await auth_stack.gateway.post(
            "/api/auth/login",
            json={"email": new_email(), "password": "guessing-passwords"},
            headers=auth_stack.headers(ip=ip),
        )
        assert response.status_code == 401
    victim = await auth_stack.register()
    from_attacker = await auth_stack.gateway.post(
        "/api/auth/login",
        json={"email": victim.email, "password": victim.password},
        headers=auth_stack.headers(ip=ip),
    )
    assert from_attacker.status_code == 429
    assert int(from_attacker.headers["retry-after"]) > 0
    assert (await auth_stack.login(victim)).status_code == 200  # from its own address


async def test_login_history_shows_time_address_agent_and_outcome(
    auth_stack: AuthStack, account: Account
) -> None:
    await auth_stack.gateway.post(
        "/api/auth/login",
        json={"email": account.email, "password": "wrong password!"},
        headers=auth_stack.headers(ip=account.ip, **{"User-Agent": "curl/8.0"}),
    )
    token = (await auth_stack.tokens(account))["access_token"]
    response = await auth_stack.gateway.get(
        "/api/auth/login-history", headers=auth_stack.headers(token=token)
    )
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["outcome"] for item in items] == ["success", "invalid_password"]
    assert {item["ip"] for item in items} == {account.ip}
    assert [item["user_agent"] for item in items] == ["auth-tests/1.0", "curl/8.0"]
    assert items[0]["at"] >= items[1]["at"]

    page = (
        await auth_stack.gateway.get(
            "/api/auth/login-history?limit=1", headers=auth_stack.headers(token=token)
        )
    ).json()
    assert len(page["items"]) == 1
    rest = (
        await auth_stack.gateway.get(
            f"/api/auth/login-history?limit=1&cursor={page['next_cursor']}",
            headers=auth_stack.headers(token=token),
        )
    ).json()
    assert rest["items"][0]["outcome"] == "invalid_password"
    assert rest["next_cursor"] is None

    bad_cursor = await auth_stack.gateway.get(
        "/api/auth/login-history?cursor=nope", headers=auth_stack.headers(token=token)
    )
    assert bad_cursor.status_code == 422


async def test_password_hash_is_upgraded_on_login_when_parameters_change(
    auth_stack: AuthStack, account: Account
) -> None:
    old = PasswordHasher(time_cost=3, memory_cost=12288, parallelism=1).hash(PASSWORD)
    await auth_stack.db.execute(
        "UPDATE users SET password_hash = $1 WHERE id = $2", old, account.id
    )
    assert (await auth_stack.login(account)).status_code == 200
    stored = await auth_stack.db.fetchval(
        "SELECT password_hash FROM users WHERE id = $1", account.id
    )
    settings = auth_stack.settings
    assert stored.startswith("$argon2id$")
    assert f"m={settings.argon2_memory_kib},t={settings.argon2_time_cost}," in stored
    assert (await auth_stack.login(account)).status_code == 200


async def test_parallel_logins_after_a_parameter_change_all_sign_in(auth_stack: AuthStack) -> None:
    """The first login to get the row rehashed the password; the others, which had checked
    the old hash, took the new hash for a new password and refused the right one."""
    account = await auth_stack.register()
    old = PasswordHasher(time_cost=3, memory_cost=12288, parallelism=1).hash(PASSWORD)
    await auth_stack.db.execute(
        "UPDATE users SET password_hash = $1 WHERE id = $2", old, account.id
    )
    async with auth_stack.row_locked("users", account.id):
        # Every login checks the old hash, then queues for the row the first one rehashes.
        logins = [asyncio.create_task(auth_stack.login(account)) for _ in range(3)]
        await auth_stack.lock_waiters(3)
    responses = [await login for login in logins]
    assert [r.status_code for r in responses] == [200] * 3, [r.text for r in responses]
    outcomes = await auth_stack.db.fetch(
        "SELECT outcome FROM login_attempts WHERE user_id = $1", account.id
    )
    assert [row["outcome"] for row in outcomes] == ["success"] * 3


async def test_introspection_reports_active_tokens_only(
    auth_stack: AuthStack, account: Account
) -> None:
    token = (await auth_stack.tokens(account))["access_token"]
    active = await auth_stack.gateway.post(
        "/api/auth/verify", json={"token": token}, headers=auth_stack.headers()
    )
    assert active.json()["active"] is True
    assert active.json()["sub"] == account.id
    assert active.json()["roles"] == ["customer"]
    inactive = await auth_stack.gateway.post(
        "/api/auth/verify", json={"token": token + "x"}, headers=auth_stack.headers()
    )
    assert inactive.json() == {**inactive.json(), "active": False, "sub": None}


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims
