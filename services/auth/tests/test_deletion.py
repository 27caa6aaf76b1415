"""Account deletion: `UserDeletionRequested` (users service) anonymises the account here and
ends every session; redeliveries and unknown users change nothing."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from auth_service.service import accounts
from contracts.events.users import UserDeletionRequested
from shopkit.db import UnitOfWork
from shopkit.testing import eventually, publish

from contracts import Envelope, Event, new_id

from .conftest import PASSWORD, Account, AuthStack, new_email
from .test_mfa import _enrol


async def _delete(auth_stack: AuthStack, user_id: str) -> Envelope[Event]:
    [envelope] = await publish(
        auth_stack.namespace,
        UserDeletionRequested(user_id=user_id, requested_at=datetime.now(UTC)),
    )
    return envelope


async def _handled(auth_stack: AuthStack, envelope: Envelope[Event]) -> None:
    """Wait until the consumer has committed the event (its inbox row goes with the effect)."""

    async def claimed() -> bool:
        count = await auth_stack.db.fetchval(
            "SELECT count(*) FROM inbox WHERE event_id = $1", envelope.id
        )
        return bool(count)

    await eventually(claimed, timeout=30, interval=0.2)


async def _count(auth_stack: AuthStack, table: str, user_id: str) -> int:
    count: int = await auth_stack.db.fetchval(
        f"SELECT count(*) FROM {table} WHERE user_id = $1",
        user_id,
    )
    return count


async def _refresh(auth_stack: AuthStack, refresh_token: str) -> Any:
    return await auth_stack.gateway.post(
        "/api/auth/refresh", json={"refresh_token": refresh_token}, headers=auth_stack.headers()
    )


async def _snapshot(auth_stack: AuthStack, user_id: str) -> tuple[Any, ...]:
    user = await auth_stack.db.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
    families = await auth_stack.db.fetch(
        "SELECT id, revoked_at, revoked_reason FROM refresh_families WHERE user_id = $1 ORDER BY id",
        user_id,
    )
    return dict(user), [dict(f) for f in families]


async def test_deletion_anonymises_the_account_and_ends_every_session(
    auth_stack: AuthStack,
) -> None:
    account = await auth_stack.register()
    # Everything personal auth can hold: MFA with recovery codes, two sessions (one rotated),
    # successful and failed logins in the history, an outstanding password reset.
    secret, codes, first_access = await _enrol(auth_stack, account)
    second = await auth_stack.login(account, totp_code=pyotp.TOTP(secret).at(time.time() + 30))
    assert second.status_code == 200, second.text
    rotated = await _refresh(auth_stack, second.json()["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    wrong = await auth_stack.login(replace(account, password="not the password"))
    assert wrong.status_code == 401
    forgot = await auth_stack.gateway.post(
        "/api/auth/password/forgot", json={"email": account.email}, headers=auth_stack.headers()
    )
    assert forgot.status_code == 202
    assert await _count(auth_stack, "login_attempts", account.id) >= 3
    assert await _count(auth_stack, "password_resets", account.id) == 1
    assert await _count(auth_stack, "recovery_codes", account.id) == len(codes) == 10
    access_tokens = [first_access, second.json()["access_token"], rotated.json()["access_token"]]
    for token in access_tokens:
        assert (await auth_stack.me(token)).status_code == 200

    await _handled(auth_stack, await _delete(auth_stack, account.id))

    user = await auth_stack.db.fetchrow("SELECT * FROM users WHERE id = $1", account.id)
    assert user is not None  # the row stays: other services hold its id
    assert user["deleted_at"] is not None
    assert user["email"] == f"deleted-{account.id}@deleted.invalid"
    assert user["name"] == "[deleted]"
    assert user["mfa_enabled"] is False
    assert user["mfa_secret"] is None
    assert user["mfa_last_step"] is None
    assert not await auth_stack.runtime.passwords.verify(user["password_hash"], PASSWORD)
    assert await _count(auth_stack, "login_attempts", account.id) == 0
    assert await _count(auth_stack, "password_resets", account.id) == 0
    assert await _count(auth_stack, "recovery_codes", account.id) == 0
    reasons = await auth_stack.db.fetch(
        "SELECT revoked_reason FROM refresh_families WHERE user_id = $1", account.id
    )
    assert [r["revoked_reason"] for r in reasons] == ["account_deleted", "account_deleted"]

    # The old credentials are refused exactly like an address that never had an account, with
    # or without the MFA code, and so is the placeholder address.
    unknown = await auth_stack.gateway.post(
        "/api/auth/login",
        json={"email": new_email(), "password": PASSWORD},
        headers=auth_stack.headers(),
    )
    for email, extra in [
        (account.email, {}),
        (account.email, {"totp_code": pyotp.TOTP(secret).now()}),
        (user["email"], {}),
    ]:
        refused = await auth_stack.gateway.post(
            "/api/auth/login",
            json={"email": email, "password": PASSWORD, **extra},
            headers=auth_stack.headers(),
        )
        assert refused.status_code == 401, refused.text
        assert refused.json()["type"].endswith("/invalid-credentials")
        assert refused.json()["detail"] == unknown.json()["detail"]
    # Nothing new is recorded against the deleted account either.
    assert await _count(auth_stack, "login_attempts", account.id) == 0

    assert (await _refresh(auth_stack, rotated.json()["refresh_token"])).status_code == 401
    for token in access_tokens:
        assert (await auth_stack.me(token)).status_code == 401
        assert (await auth_stack.me(token, direct=True)).status_code == 401

    # The address is free again: a brand-new account, nothing carried over.
    again = await auth_stack.register(email=account.email)
    assert again.id != account.id
    pair = await auth_stack.tokens(again)
    me = (await auth_stack.me(pair["access_token"])).json()
    assert me["id"] == again.id
    assert me["email"] == account.email
    assert me["mfa_enabled"] is False


async def test_deletion_removes_failed_logins_that_only_carry_the_address(
    auth_stack: AuthStack,
) -> None:
    """Attempts on an address with no account behind it (tried before the account existed)
    are kept with `user_id` empty but the typed address, IP and user agent: deleting the
    account by its id left them behind."""
    email = new_email()
    for typed in (email, f"  {email.upper()} "):  # stored normalised, as the account's is
        tried = await auth_stack.gateway.post(
            "/api/auth/login",
            json={"email": typed, "password": "not the password"},
            headers=auth_stack.headers(),
        )
        assert tried.status_code == 401
    account = await auth_stack.register(email=email)
    assert (
        await auth_stack.login(replace(account, password="not the password"))
    ).status_code == 401
    other = new_email()
    await auth_stack.gateway.post(
        "/api/auth/login",
        json={"email": other, "password": "not the password"},
        headers=auth_stack.headers(),
    )
    by_address = "SELECT count(*) FROM login_attempts WHERE email = $1"
    assert await auth_stack.db.fetchval(by_address, email) == 3

    await _handled(auth_stack, await _delete(auth_stack, account.id))

    assert await auth_stack.db.fetchval(by_address, email) == 0
    assert await _count(auth_stack, "login_attempts", account.id) == 0
    assert await auth_stack.db.fetchval(by_address, other) == 1  # someone else's address


async def test_redelivery_and_a_repeated_request_change_nothing(auth_stack: AuthStack) -> None:
    account = await auth_stack.register()
    await auth_stack.tokens(account)
    first = await _delete(auth_stack, account.id)
    await _handled(auth_stack, first)
    before = await _snapshot(auth_stack, account.id)
    assert before[0]["deleted_at"] is not None

    # Someone registers the freed address in between: the account must stay untouched.
    again = await auth_stack.register(email=account.email)
    pair = await auth_stack.tokens(again)

    await publish(auth_stack.namespace, first)  # the same envelope, redelivered
    # Another request for the same user, keyed alike: same partition, so handled after it.
    await _handled(auth_stack, await _delete(auth_stack, account.id))

    assert await _snapshot(auth_stack, account.id) == before
    me = await auth_stack.me(pair["access_token"])
    assert me.status_code == 200
    assert me.json()["email"] == account.email
    assert me.json()["name"] == "Test"
    assert (await _refresh(auth_stack, pair["refresh_token"])).status_code == 200
    assert (await auth_stack.login(again)).status_code == 200


async def test_deletion_of_an_unknown_user_is_a_no_op(
    auth_stack: AuthStack, account: Account
) -> None:
    pair = await auth_stack.tokens(account)
    users = await auth_stack.db.fetch("SELECT * FROM users ORDER BY id")
    families = await auth_stack.db.fetch("SELECT * FROM refresh_families ORDER BY id")

    await _handled(auth_stack, await _delete(auth_stack, new_id()))

    assert await auth_stack.db.fetch("SELECT * FROM users ORDER BY id") == users
    assert await auth_stack.db.fetch("SELECT * FROM refresh_families ORDER BY id") == families
    assert (await auth_stack.me(pair["access_token"])).status_code == 200
    assert (await auth_stack.login(account)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("PATCH", "/api/auth/me", {"name": "Ana Real Name"}), ("POST", "/api/auth/mfa/setup", None)],
)
async def test_a_write_racing_the_deletion_does_not_touch_the_erased_row(
    auth_stack: AuthStack, method: str, path: str, body: dict[str, str] | None
) -> None:
    """A request whose token was verified before the deletion committed, and that got the row
    after it, wrote the real name (or a TOTP secret) back onto the anonymised row."""
    account = await auth_stack.register()
    token = (await auth_stack.tokens(account))["access_token"]
    rt = auth_stack.runtime

    async def delete() -> None:
        async with UnitOfWork(rt.sessions) as uow:
            await accounts.delete_account(uow.session, rt=rt, user_id=account.id)
            await uow.commit()

    async with auth_stack.row_locked("users", account.id):
        deletion = asyncio.create_task(delete())
        await auth_stack.lock_waiters(1)
        write = asyncio.create_task(
            auth_stack.direct.request(
                method, path, json=body, headers=auth_stack.headers(token=token)
            )
        )
        await auth_stack.lock_waiters(2)  # the write queues behind the deletion
    await deletion
    response = await write
    assert response.status_code == 401, response.text
    assert response.json()["type"].endswith("/invalid-token")
    row = await auth_stack.db.fetchrow(
        "SELECT name, mfa_secret, deleted_at FROM users WHERE id = $1", account.id
    )
    assert row["deleted_at"] is not None
    assert row["name"] == accounts.DELETED_NAME
    assert row["mfa_secret"] is None
