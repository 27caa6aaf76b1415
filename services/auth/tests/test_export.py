"""GET /api/auth/me/export: the caller's account, login history and live sessions, never a
secret (password hash, TOTP secret, token hashes), and only the caller's own."""

from __future__ import annotations

from .conftest import AuthStack

PROBLEM = "application/problem+json"


async def test_export_holds_account_history_and_live_sessions_without_secrets(
    auth_stack: AuthStack,
) -> None:
    alice, bob = await auth_stack.register(), await auth_stack.register()
    await auth_stack.gateway.post(
        "/api/auth/login",
        json={"email": alice.email, "password": "wrong password!"},
        headers=auth_stack.headers(ip=alice.ip, **{"User-Agent": "curl/8.0"}),
    )
    ended = await auth_stack.tokens(alice)
    token = (await auth_stack.tokens(alice))["access_token"]
    logout = await auth_stack.gateway.post(
        "/api/auth/logout",
        json={"refresh_token": ended["refresh_token"]},
        headers=auth_stack.headers(token=ended["access_token"]),
    )
    assert logout.status_code == 204
    bob_token = (await auth_stack.tokens(bob))["access_token"]

    response = await auth_stack.gateway.get(
        "/api/auth/me/export", headers=auth_stack.headers(token=token)
    )

    assert response.status_code == 200, response.text
    export = response.json()
    assert export["user_id"] == alice.id
    assert export["account"]["id"] == alice.id
    assert export["account"]["email"] == alice.email
    assert export["account"]["name"] == "Test"
    assert export["account"]["mfa_enabled"] is False
    assert set(export["account"]) == {"id", "email", "name", "created_at", "mfa_enabled"}
    history = export["login_history"]
    assert [item["outcome"] for item in history] == ["success", "success", "invalid_password"]
    assert {item["ip"] for item in history} == {alice.ip}
    assert history[-1]["user_agent"] == "curl/8.0"
    # The logged-out session is over: only the live one is listed.
    [live] = export["sessions"]
    assert set(live) == {"created_at", "expires_at"}
    assert live["expires_at"] > live["created_at"]
    stored = await auth_stack.db.fetchrow("SELECT password_hash FROM users WHERE id = $1", alice.id)
    hashes = await auth_stack.db.fetch(
        "SELECT t.token_hash FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
        " WHERE f.user_id = $1",
        alice.id,
    )
    assert hashes
    for secret in (stored["password_hash"], *(row["token_hash"] for row in hashes)):
        assert secret not in response.text

    # Bob sees his own data only.
    theirs = (
        await auth_stack.direct.get(
            "/api/auth/me/export", headers=auth_stack.headers(token=bob_token)
        )
    ).json()
    assert theirs["account"]["email"] == bob.email
    assert [item["ip"] for item in theirs["login_history"]] == [bob.ip]
    assert len(theirs["sessions"]) == 1
    assert alice.email not in str(theirs)


async def test_export_needs_a_valid_token(auth_stack: AuthStack) -> None:
    for client in (auth_stack.gateway, auth_stack.direct):
        for headers in (auth_stack.headers(), auth_stack.headers(token="not-a-token")):
            response = await client.get("/api/auth/me/export", headers=headers)
            assert response.status_code == 401
            assert response.headers["content-type"] == PROBLEM
