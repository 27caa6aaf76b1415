"""The operations the fuzzer leaves out because they end its own session: logout, password
change and account deletion, each on an account of its own, through the gateway."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from shop_cli.client import DEMO_ADDRESS, Session, login, register, unique_email
from shopkit.settings import local_database_url
from shopkit.testing import eventually, fetchval

from .conftest import TIMEOUT


async def _account(http: httpx.AsyncClient, name: str) -> tuple[Session, str]:
    email, password = unique_email(name.lower()), f"Pw-{secrets.token_hex(8)}"
    await register(http, email, password, name)
    return await login(http, email, password), password


def _problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(f"/{slug}"), response.text


async def test_logout_revokes_the_access_token_and_the_session(http: httpx.AsyncClient) -> None:
    session, _ = await _account(http, "Lucas")
    other_device = await login(http, session.email, _)
    logout = await http.post(
        "/api/auth/logout", json={"refresh_token": session.refresh_token}, headers=session.headers
    )
    assert logout.status_code == 204
    for path in ("/api/auth/me", "/api/orders", "/api/users/me"):
        _problem(await http.get(path, headers=session.headers), 401, "invalid-token")
    _problem(
        await http.post("/api/auth/refresh", json={"refresh_token": session.refresh_token}),
        401,
        "invalid-refresh-token",
    )
    # Logging out is per session: the other device's login is untouched.
    assert (await http.get("/api/auth/me", headers=other_device.headers)).status_code == 200
    again = await http.post(
        "/api/auth/logout", json={"refresh_token": session.refresh_token}, headers=session.headers
    )
    assert again.status_code == 401


async def test_logout_cannot_end_someone_elses_session(http: httpx.AsyncClient) -> None:
    victim, _ = await _account(http, "Vera")
    attacker, _ = await _account(http, "Mallory")
    attempt = await http.post(
        "/api/auth/logout", json={"refresh_token": victim.refresh_token}, headers=attacker.headers
    )
    assert attempt.status_code in (204, 401)  # whatever it says, the victim stays signed in
    refreshed = await http.post("/api/auth/refresh", json={"refresh_token": victim.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    assert (await http.get("/api/auth/me", headers=victim.headers)).status_code == 200


async def test_password_change_needs_the_password_and_ends_every_session(
    http: httpx.AsyncClient,
) -> None:
    session, password = await _account(http, "Paula")
    url = "/api/auth/password/change"
    new_password = f"New-{secrets.token_hex(8)}"
    _problem(
        await http.post(
            url,
            json={"current_password": "not-my-password", "new_password": new_password},
            headers=session.headers,
        ),
        403,
        "reauthentication-failed",
    )
    _problem(
        await http.post(
            url,
            json={"current_password": password, "new_password": "1234567890"},
            headers=session.headers,
        ),
        422,
        "weak-password",
    )
    _problem(
        await http.post(url, json={"current_password": password, "new_password": new_password}),
        401,
        "unauthorized",
    )
    changed = await http.post(
        url,
        json={"current_password": password, "new_password": new_password},
        headers=session.headers,
    )
    assert changed.status_code == 200, changed.text
    pair: dict[str, Any] = changed.json()
    assert {"access_token", "refresh_token", "token_type", "expires_in"} <= pair.keys()
    assert changed.headers["cache-control"] == "no-store"

    _problem(
        await http.post("/api/auth/refresh", json={"refresh_token": session.refresh_token}),
        401,
        "invalid-refresh-token",
    )
    old = await http.post("/api/auth/login", json={"email": session.email, "password": password})
    _problem(old, 401, "invalid-credentials")
    fresh = await login(http, session.email, new_password)
    me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == fresh.user_id == session.user_id


async def test_account_deletion_erases_the_profile_everywhere(http: httpx.AsyncClient) -> None:
    session, password = await _account(http, "Debora")

    async def profiled() -> Any:
        response = await http.get("/api/users/me", headers=session.headers)
        return response.json() if response.status_code == 200 else None

    async def contact() -> Any:
        export = await http.get("/api/notifications/me/export", headers=session.headers)
        return export.json()["contact"]

    await eventually(profiled, timeout=TIMEOUT, interval=0.3)  # UserRegistered reached users
    assert (await eventually(contact, timeout=TIMEOUT, interval=0.3))["email"] == session.email
    await session.post("/api/users/me/addresses", DEMO_ADDRESS)
    await session.patch("/api/users/me", {"phone": "+5511987654321", "cpf": "529.982.247-25"})

    deleted = await http.delete("/api/users/me", headers=session.headers)
    assert deleted.status_code == 202, deleted.text
    assert deleted.json()["user_id"] == session.user_id
    assert deleted.json()["status"] == "deletion_requested"

    # Until auth has applied the deletion the token still works and the profile is gone; once
    # it has, the token is revoked everywhere. Either answer, never the data.
    gone_or_revoked = {(410, "profile-deleted"), (401, "invalid-token")}
    for path in ("/api/users/me", "/api/users/me/addresses", "/api/users/me/export"):
        response = await http.get(path, headers=session.headers)
        assert (response.status_code, response.json()["type"].rsplit("/", 1)[-1]) in (
            gone_or_revoked
        ), response.text

    async def revoked() -> bool:
        response = await http.get("/api/auth/me", headers=session.headers)
        return response.status_code == 401

    await eventually(revoked, timeout=TIMEOUT, interval=0.3)
    for path in ("/api/users/me", "/api/orders", "/api/notifications/me/export"):
        _problem(await http.get(path, headers=session.headers), 401, "invalid-token")
    _problem(
        await http.post("/api/auth/login", json={"email": session.email, "password": password}),
        401,
        "invalid-credentials",
    )

    async def forgotten() -> bool:
        email = await fetchval(
            local_database_url("notifications"),
            "SELECT email FROM recipients WHERE user_id = $1",
            session.user_id,
        )
        return email is None

    await eventually(forgotten, timeout=TIMEOUT, interval=0.5)
