"""Password reset and change, and the events they publish to Kafka through the outbox."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaConsumer
from shopkit.testing import KAFKA_BOOTSTRAP, eventually

from contracts import topics

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
