"""Registration, profile, mass assignment and the admin CLI, through the real gateway."""

from __future__ import annotations

import asyncio
import json
import os

import jwt
import pytest
from auth_service.cli import app as cli
from typer.testing import CliRunner

from .conftest import PASSWORD, AuthStack, new_email

PROBLEM = "application/problem+json"


async def test_register_normalises_email_and_creates_a_customer(auth_stack: AuthStack) -> None:
    local = new_email()
    response = await auth_stack.gateway.post(
        "/api/auth/register",
        json={"email": f"  {local.upper()} ", "password": PASSWORD, "name": "  Ana  "},
        headers=auth_stack.headers(),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "email", "name"}
    assert body["email"] == local
    assert body["name"] == "Ana"

    login = await auth_stack.gateway.post(
        "/api/auth/login",
        json={"email": local.upper(), "password": PASSWORD},
        headers=auth_stack.headers(),
    )
    assert login.status_code == 200
    me = await auth_stack.me(login.json()["access_token"])
    assert me.json() == {
        **me.json(),
        "id": body["id"],
        "email": local,
        "roles": ["customer"],
        "mfa_enabled": False,
    }


async def test_taken_email_is_409_even_with_other_case(auth_stack: AuthStack) -> None:
    account = await auth_stack.register()
    response = await auth_stack.gateway.post(
        "/api/auth/register",
        json={"email": account.email.upper(), "password": PASSWORD, "name": "Copy"},
        headers=auth_stack.headers(),
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/email-taken")


async def test_concurrent_registrations_of_one_email_create_one_account(
    auth_stack: AuthStack,
) -> None:
    email = new_email()
    responses = await asyncio.gather(
        *(
            auth_stack.gateway.post(
                "/api/auth/register",
                json={"email": email, "password": PASSWORD, "name": "Race"},
                headers=auth_stack.headers(),
            )
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    count = await auth_stack.db.fetchval("SELECT count(*) FROM users WHERE email = $1", email)
    assert count == 1


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 10"),
        ("1234567890", "too common"),
        ("Password123", "too common"),
        ("aaaaaaaaaaaa", "too few"),
        ("x" * 129, "at most 128"),
    ],
)
async def test_weak_passwords_are_refused_with_422(
    auth_stack: AuthStack, password: str, reason: str
) -> None:
    response = await auth_stack.gateway.post(
        "/api/auth/register",
        json={"email": new_email(), "password": password, "name": "W"},
        headers=auth_stack.headers(),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert reason in response.json()["detail"]


@pytest.mark.parametrize(
    "extra",
    [
        {"roles": ["customer", "admin"]},
        {"is_admin": True},
        {"id": "01900000-0000-7000-8000-0000000000aa"},
        {"mfa_enabled": True},
    ],
)
async def test_mass_assignment_on_register_is_rejected(
    auth_stack: AuthStack, extra: dict[str, object]
) -> None:
    email = new_email()
    response = await auth_stack.gateway.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "name": "M", **extra},
        headers=auth_stack.headers(),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert await auth_stack.db.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0


async def test_profile_update_changes_the_name_only(auth_stack: AuthStack) -> None:
    account = await auth_stack.register()
    token = (await auth_stack.tokens(account))["access_token"]
    refused = await auth_stack.gateway.patch(
        "/api/auth/me",
        json={"name": "New", "roles": ["admin"]},
        headers=auth_stack.headers(token=token),
    )
    assert refused.status_code == 422
    updated = await auth_stack.gateway.patch(
        "/api/auth/me", json={"name": "New name"}, headers=auth_stack.headers(token=token)
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "New name"
    assert updated.json()["roles"] == ["customer"]


async def test_me_needs_a_token(auth_stack: AuthStack) -> None:
    for client in (auth_stack.gateway, auth_stack.direct):
        response = await client.get("/api/auth/me", headers=auth_stack.headers())
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM


def _cli(auth_stack: AuthStack, *args: str) -> tuple[int, str]:
    env = {"AUTH_DATABASE_URL": auth_stack.database_url}
    result = CliRunner().invoke(cli, list(args), env={**os.environ, **env})
    return result.exit_code, result.output


async def test_admin_is_created_and_promoted_by_the_cli_only(auth_stack: AuthStack) -> None:
    email = new_email()
    code, output = await asyncio.to_thread(
        _cli, auth_stack, "create", "--email", email, "--password", PASSWORD
    )
    assert code == 0, output
    assert "created" in output
    login = await auth_stack.gateway.post(
        "/api/auth/login", json={"email": email, "password": PASSWORD}, headers=auth_stack.headers()
    )
    token = login.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["roles"] == ["customer", "admin"]
    assert (await auth_stack.me(token)).json()["roles"] == ["customer", "admin"]

    customer = await auth_stack.register()
    code, output = await asyncio.to_thread(
        _cli,
        auth_stack,
        "create",
        "--email",
        customer.email.upper(),
        "--password",
        "ignored-here-1",
    )
    assert code == 0, output
    assert "promoted" in output
    token = (await auth_stack.tokens(customer))["access_token"]  # the old password still works
    assert (await auth_stack.me(token)).json()["roles"] == ["customer", "admin"]

    code, output = await asyncio.to_thread(
        _cli, auth_stack, "create", "--email", new_email(), "--password", "1234567890"
    )
    assert code == 1
    assert "too common" in output


async def test_account_events_go_through_the_outbox(auth_stack: AuthStack) -> None:
    account = await auth_stack.register()
    row = await auth_stack.db.fetchrow(
        "SELECT topic, key, payload FROM outbox WHERE ce_type = 'shop.auth.user_registered.v1' "
        "AND key = $1",
        account.id,
    )
    assert row is not None
    assert row["topic"] == "auth.events"
    payload = json.loads(row["payload"])
    assert payload["user_id"] == account.id
    assert payload["email"] == account.email
    assert "password" not in json.dumps(payload)


async def test_merged_openapi_through_the_gateway_documents_auth(auth_stack: AuthStack) -> None:
    from openapi_spec_validator import validate

    document = (await auth_stack.gateway.get("/openapi.json")).json()
    validate(document)
    paths = document["paths"]
    assert paths["/api/auth/login"]["post"]["security"] == [{}, {"bearerAuth": []}]
    assert paths["/api/auth/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert "/.well-known/jwks.json" in paths
    register = paths["/api/auth/register"]["post"]
    assert {"201", "409", "422"} <= set(register["responses"])
