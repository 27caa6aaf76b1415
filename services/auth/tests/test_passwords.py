"""Password reset and change, and the events they publish to Kafka through the outbox."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from shopkit.testing import KAFKA_BOOTSTRAP, eventually

from contracts import new_id, topics

from .conftest import Account, AuthStack, new_email

PROBLEM = "application/problem+json"
NEW_PASSWORD = "a brand new passphrase"


async def _reset_token(auth_stack: AuthStack, account: Account) -> str | None:
    payload = await auth_stack.db.fetchval(
        "SELECT payload FROM outbox WHERE ce_type = 'shop.auth.password_reset_requested.v1' "
        "AND key = $1 ORDER BY seq DESC LIMIT 1",
        account.id,
    )
    return None if payload is None else str(json.loads(payload)["reset_token"])


async def _forgot(auth_stack: AuthStack, email: str) -> int:
    response = await auth_stack.gateway.post(
        "/api/auth/password/forgot", json={"email": email}, headers=auth_stack.headers()
    )
    assert response.headers["content-type"] == "application/json"
    return response.status_code


async def test_forgot_answers_202_whether_or_not_the_account_exists(
    auth_stack: AuthStack, account: Account
) -> None:
    assert await _forgot(auth_stack, new_email()) == 202
    assert await _forgot(auth_stack, account.email.upper()) == 202
    token = await _reset_token(auth_stack, account)
    assert token is not None and len(token) >= 40
    stored = await auth_stack.db.fetchval(
        "SELECT token_hash FROM password_resets WHERE user_id = $1", account.id
    )
    assert stored != token  # only a keyed hash is kept
    # asked again right away: still 202, but no second email
    assert await _forgot(auth_stack, account.email) == 202
    assert (
        await auth_stack.db.fetchval(
            "SELECT count(*) FROM password_resets WHERE user_id = $1", account.id
        )
        == 1
    )


async def test_a_new_reset_link_replaces_the_earlier_ones(
    auth_stack: AuthStack, account: Account
) -> None:
    """Asking again left every earlier link valid until it expired."""
    await _forgot(auth_stack, account.email)
    earlier = await _reset_token(auth_stack, account)
    await auth_stack.db.execute(  # past the cooldown, so a new link is sent
        "UPDATE password_resets SET created_at = created_at - make_interval(secs => $2) "
        "WHERE user_id = $1",
        account.id,
        auth_stack.settings.password_reset_cooldown_seconds + 1,
    )
    await _forgot(auth_stack, account.email)
    latest = await _reset_token(auth_stack, account)
    assert earlier is not None and latest is not None and latest != earlier

    stale = await _reset(auth_stack, earlier, NEW_PASSWORD)
    assert stale.status_code == 401
    assert stale.json()["type"].endswith("/invalid-reset-token")
    assert (await _reset(auth_stack, latest, NEW_PASSWORD)).status_code == 204
    account.password = NEW_PASSWORD
    assert (await auth_stack.login(account)).status_code == 200


async def test_reset_sets_the_password_and_ends_every_session(
    auth_stack: AuthStack, account: Account
) -> None:
    before = await auth_stack.tokens(account)
    await _forgot(auth_stack, account.email)
    token = await _reset_token(auth_stack, account)
    assert token is not None

    weak = await auth_stack.gateway.post(
        "/api/auth/password/reset",
        json={"token": token, "new_password": "1234567890"},
        headers=auth_stack.headers(),
    )
    assert weak.status_code == 422  # and the token is not spent by a refused attempt
    done = await auth_stack.gateway.post(
        "/api/auth/password/reset",
        json={"token": token, "new_password": NEW_PASSWORD},
        headers=auth_stack.headers(),
    )
    assert done.status_code == 204

    assert (await auth_stack.login(account)).status_code == 401
    account.password = NEW_PASSWORD
    assert (await auth_stack.login(account)).status_code == 200
    refresh = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": before["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert refresh.status_code == 401
    assert (await auth_stack.me(before["access_token"])).status_code == 401

    reused = await auth_stack.gateway.post(
        "/api/auth/password/reset",
        json={"token": token, "new_password": "yet another passphrase"},
        headers=auth_stack.headers(),
    )
    assert reused.status_code == 401
    assert reused.headers["content-type"] == PROBLEM
    assert reused.json()["type"].endswith("/invalid-reset-token")


async def test_expired_or_unknown_reset_tokens_are_refused(
    auth_stack: AuthStack, account: Account
) -> None:
    await _forgot(auth_stack, account.email)
    token = await _reset_token(auth_stack, account)
    await auth_stack.db.execute(
        "UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        account.id,
    )
    for candidate in (token, "x" * 43):
        response = await auth_stack.gateway.post(
            "/api/auth/password/reset",
            json={"token": candidate, "new_password": NEW_PASSWORD},
            headers=auth_stack.headers(),
        )
        assert response.status_code == 401
        assert response.json()["type"].endswith("/invalid-reset-token")


async def test_reset_lifts_an_account_lockout(auth_stack: AuthStack, account: Account) -> None:
    for _ in range(auth_stack.settings.login_account_max_failures):
        await auth_stack.gateway.post(
            "/api/auth/login",
            json={"email": account.email, "password": "wrong password!"},
            headers=auth_stack.headers(),
        )
    assert (await auth_stack.login(account)).status_code == 429
    await _forgot(auth_stack, account.email)
    token = await _reset_token(auth_stack, account)
    response = await auth_stack.gateway.post(
        "/api/auth/password/reset",
        json={"token": token, "new_password": NEW_PASSWORD},
        headers=auth_stack.headers(),
    )
    assert response.status_code == 204
    account.password = NEW_PASSWORD
    assert (await auth_stack.login(account)).status_code == 200


async def test_password_change_needs_the_current_password_and_renews_the_session(
    auth_stack: AuthStack, account: Account
) -> None:
    pair = await auth_stack.tokens(account)
    wrong = await auth_stack.gateway.post(
        "/api/auth/password/change",
        json={"current_password": "wrong password!", "new_password": NEW_PASSWORD},
        headers=auth_stack.headers(token=pair["access_token"]),
    )
    assert wrong.status_code == 403
    changed = await auth_stack.gateway.post(
        "/api/auth/password/change",
        json={"current_password": account.password, "new_password": NEW_PASSWORD},
        headers=auth_stack.headers(token=pair["access_token"]),
    )
    assert changed.status_code == 200
    fresh = changed.json()
    assert (await auth_stack.me(fresh["access_token"])).status_code == 200
    assert (await auth_stack.me(pair["access_token"])).status_code == 401
    old_refresh = await auth_stack.gateway.post(
        "/api/auth/refresh",
        json={"refresh_token": pair["refresh_token"]},
        headers=auth_stack.headers(),
    )
    assert old_refresh.status_code == 401


async def test_concurrent_wrong_current_passwords_are_limited_like_logins(
    auth_stack: AuthStack, account: Account
) -> None:
    """Re-authentication counts towards the same lockout: parallel guesses at the current
    password get no more checks than the account's failure limit."""
    pair = await auth_stack.tokens(account)
    threshold = auth_stack.settings.login_account_max_failures
    guesses = 12
    responses = await asyncio.gather(
        *(
            auth_stack.gateway.post(
                "/api/auth/password/change",
                json={"current_password": f"guess number {n}!", "new_password": NEW_PASSWORD},
                headers=auth_stack.headers(token=pair["access_token"]),
            )
            for n in range(guesses)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    counts = {status: statuses.count(status) for status in set(statuses)}
    assert statuses == [403] * threshold + [429] * (guesses - threshold), counts
    right = await auth_stack.gateway.post(
        "/api/auth/password/change",
        json={"current_password": account.password, "new_password": NEW_PASSWORD},
        headers=auth_stack.headers(token=pair["access_token"]),
    )
    assert right.status_code == 429
    assert (await auth_stack.login(account)).status_code == 429


async def _issued_reset(auth_stack: AuthStack, account: Account) -> str:
    """A reset link of `account` as `forgot` stores one (several of them: no cooldown)."""
    token = secrets.token_urlsafe(32)
    await auth_stack.db.execute(
        "INSERT INTO password_resets (id, user_id, token_hash, created_at, expires_at) "
        "VALUES ($1, $2, $3, now(), now() + interval '30 minutes')",
        new_id(),
        account.id,
        auth_stack.runtime.hasher.hash(token),
    )
    return token


async def _reset(auth_stack: AuthStack, token: str, password: str) -> httpx.Response:
    return await auth_stack.gateway.post(
        "/api/auth/password/reset",
        json={"token": token, "new_password": password},
        headers=auth_stack.headers(),
    )


async def test_two_reset_links_of_one_user_used_together(auth_stack: AuthStack) -> None:
    """Each reset locked its link, then the user, and spent the user's other links: the two
    deadlocked, one was answered 503, and its retry found its link spent."""
    account = await auth_stack.register()
    tokens = [await _issued_reset(auth_stack, account) for _ in range(2)]
    passwords = ["first new passphrase", "second new passphrase"]
    async with auth_stack.row_locked("users", account.id):
        first = asyncio.create_task(_reset(auth_stack, tokens[0], passwords[0]))
        await auth_stack.lock_waiters(1)
        second = asyncio.create_task(_reset(auth_stack, tokens[1], passwords[1]))
        await auth_stack.lock_waiters(2)
    responses = [await first, await second]
    assert [r.status_code for r in responses] == [204, 401], [r.text for r in responses]
    assert responses[1].json()["type"].endswith("/invalid-reset-token")
    account.password = passwords[0]
    assert (await auth_stack.login(account)).status_code == 200


async def test_a_reset_concurrent_with_a_change_does_not_deadlock(auth_stack: AuthStack) -> None:
    """The reset held its link and waited for the user; the change held the user and waited
    to spend the link: a deadlock, answered 503."""
    account = await auth_stack.register()
    pair = await auth_stack.tokens(account)
    token = await _issued_reset(auth_stack, account)
    link = await auth_stack.db.fetchval(
        "SELECT id FROM password_resets WHERE user_id = $1", account.id
    )
    async with auth_stack.row_locked("password_resets", link):
        reset = asyncio.create_task(_reset(auth_stack, token, "reset new passphrase"))
        await auth_stack.lock_waiters(1)
        change = asyncio.create_task(
            auth_stack.gateway.post(
                "/api/auth/password/change",
                json={"current_password": account.password, "new_password": NEW_PASSWORD},
                headers=auth_stack.headers(token=pair["access_token"]),
            )
        )
        await auth_stack.lock_waiters(2)
    reset_response, change_response = await reset, await change
    # The reset got there first; the change then checks the password the reset replaced.
    assert reset_response.status_code == 204, reset_response.text
    assert change_response.status_code == 403, change_response.text
    assert change_response.json()["type"].endswith("/reauthentication-failed")
    account.password = "reset new passphrase"
    assert (await auth_stack.login(account)).status_code == 200


async def test_auth_events_reach_kafka(auth_stack: AuthStack) -> None:
    account = await auth_stack.register()
    await _forgot(auth_stack, account.email)
    token = await _reset_token(auth_stack, account)
    await auth_stack.gateway.post(
        "/api/auth/password/reset",
        json={"token": token, "new_password": NEW_PASSWORD},
        headers=auth_stack.headers(),
    )

    consumer = AIOKafkaConsumer(
        auth_stack.namespace + topics.AUTH,
        bootstrap_servers=KAFKA_BOOTSTRAP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:

        async def all_three() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    if record.key == account.id.encode():
                        seen.append({"type": headers["ce_type"], **json.loads(record.value)})
            return {e["type"] for e in seen} >= {
                "shop.auth.user_registered.v1",
                "shop.auth.password_reset_requested.v1",
                "shop.auth.password_changed.v1",
            }

        await eventually(all_three, timeout=30)
    finally:
        await consumer.stop()
    types = [event["type"] for event in seen]
    # one aggregate, one partition: the order of the facts is kept
    assert (
        types.index("shop.auth.user_registered.v1")
        < types.index("shop.auth.password_reset_requested.v1")
        < types.index("shop.auth.password_changed.v1")
    )
    changed = next(e for e in seen if e["type"] == "shop.auth.password_changed.v1")
    assert changed["via_reset"] is True
