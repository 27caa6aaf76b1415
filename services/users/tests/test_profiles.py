"""Profiles from UserRegistered, CPF and phone validation, preferences and their event."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import pytest
from contracts.events.auth import UserRegistered
from contracts.events.users import UserPreferencesChanged, UserProfileUpdated
from shopkit.testing import publish, wait_for_events
from users_service import cpf

from contracts import new_id

from .conftest import Running

PROBLEM = "application/problem+json"


async def test_profile_is_created_from_registration_once(users: Running) -> None:
    unknown = await users.client.get("/api/users/me", headers=users.headers(new_id()))
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM

    user_id = await users.new_user("Beatriz Lima")
    me = (await users.client.get("/api/users/me", headers=users.headers(user_id))).json()
    assert me["id"] == user_id
    assert me["name"] == "Beatriz Lima"
    assert me["cpf"] is None

    await users.client.patch(
        "/api/users/me", json={"name": "Bia Lima"}, headers=users.headers(user_id)
    )
    # A redelivered registration (new event id, same account) must not reset the profile.
    marker = new_id()
    await publish(
        users.settings.kafka_namespace,
        UserRegistered(
            user_id=user_id,
            email="other@mail.shoptest.com.br",
            name="Beatriz Lima",
            registered_at=datetime.now(UTC),
        ),
        UserRegistered(
            user_id=marker,
            email="m@mail.shoptest.com.br",
            name="M",
            registered_at=datetime.now(UTC),
        ),
    )
    await users.new_user()  # waits on the consumer, which handles in order per partition
    again = (await users.client.get("/api/users/me", headers=users.headers(user_id))).json()
    assert again["name"] == "Bia Lima"
    assert again["email"] == me["email"]
    assert (await users.client.get("/api/users/me")).status_code == 401


async def test_profile_update_validates_cpf_and_phone(users: Running) -> None:
    user_id = await users.new_user()
    headers = users.headers(user_id)
    updated = await users.client.patch(
        "/api/users/me",
        headers=headers,
        json={"phone": "(11) 98765-4321", "cpf": "529.982.247-25", "birth_date": "1990-05-17"},
    )
    assert updated.status_code == 200
    body = updated.json()
    assert body["phone"] == "+5511987654321"
    assert body["cpf"] == "529.982.247-25"
    assert body["birth_date"] == "1990-05-17"
    events = await wait_for_events(
        users.settings.kafka_namespace,
        UserProfileUpdated,
        where=lambda e: e.user_id == user_id,
    )
    assert events[-1].phone == "+5511987654321"

    for bad, slug in [
        ({"cpf": "529.982.247-24"}, "invalid-cpf"),
        ({"cpf": "111.111.111-11"}, "invalid-cpf"),
        ({"cpf": "12345"}, "validation-error"),
        ({"phone": "12"}, "validation-error"),
        ({"birth_date": "2999-01-01"}, "validation-error"),
        ({"roles": ["admin"]}, "validation-error"),
    ]:
        response = await users.client.patch("/api/users/me", headers=headers, json=bad)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith(slug), bad

    other = await users.new_user()
    taken = await users.client.patch(
        "/api/users/me", headers=users.headers(other), json={"cpf": "52998224725"}
    )
    assert taken.status_code == 409
    cleared = await users.client.patch("/api/users/me", headers=headers, json={"cpf": None})
    assert cleared.json()["cpf"] is None
    reused = await users.client.patch(
        "/api/users/me", headers=users.headers(other), json={"cpf": "52998224725"}
    )
    assert reused.status_code == 200


async def test_one_cpf_saved_by_several_accounts_at_once_goes_to_one(users: Running) -> None:
    """Each request checked that nobody held the CPF, then all committed: the unique index
    refused the later ones at the commit, which answered 500."""
    digits = [secrets.randbelow(10) for _ in range(9)]
    for length in (9, 10):
        total = sum(d * (length + 1 - i) for i, d in enumerate(digits[:length]))
        digits.append(0 if total % 11 < 2 else 11 - total % 11)
    value = "".join(map(str, digits))
    accounts = [await users.new_user() for _ in range(6)]
    responses = await asyncio.gather(
        *(
            users.client.patch("/api/users/me", headers=users.headers(a), json={"cpf": value})
            for a in accounts
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 5, [
        r.text for r in responses
    ]


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("529.982.247-25", True),
        ("52998224725", True),
        ("390.533.447-05", True),
        ("529.982.247-52", False),
        ("000.000.000-00", False),
        ("529.982.247", False),
        ("52998224725a", False),
    ],
)
def test_cpf_check_digits(value: str, valid: bool) -> None:
    if valid:
        assert len(cpf.normalize_cpf(value)) == 11
    else:
        with pytest.raises(cpf.InvalidCpfError):
            cpf.normalize_cpf(value)


async def test_preferences_emit_an_event_and_need_a_phone_for_sms(users: Running) -> None:
    user_id = await users.new_user()
    headers = users.headers(user_id)
    defaults = (await users.client.get("/api/users/me/preferences", headers=headers)).json()
    assert defaults == {"channels": ["email"], "language": "pt-BR", "marketing_opt_in": False}

    no_phone = await users.client.patch(
        "/api/users/me/preferences", headers=headers, json={"channels": ["email", "sms"]}
    )
    assert no_phone.status_code == 409
    assert no_phone.json()["type"].endswith("phone-required")

    await users.client.patch("/api/users/me", headers=headers, json={"phone": "+5521912345678"})
    changed = await users.client.put(
        "/api/users/me/preferences",
        headers=headers,
        json={"channels": ["sms", "email", "sms"], "language": "en", "marketing_opt_in": True},
    )
    assert changed.status_code == 200
    assert changed.json() == {
        "channels": ["sms", "email"],
        "language": "en",
        "marketing_opt_in": True,
    }
    [event] = await wait_for_events(
        users.settings.kafka_namespace,
        UserPreferencesChanged,
        where=lambda e: e.user_id == user_id,
    )
    assert (event.channels, event.language, event.phone) == (
        ["sms", "email"],
        "en",
        "+5521912345678",
    )
    clear_phone = await users.client.patch("/api/users/me", headers=headers, json={"phone": None})
    assert clear_phone.status_code == 409
    bad_language = await users.client.patch(
        "/api/users/me/preferences", headers=headers, json={"language": "fr"}
    )
    assert bad_language.status_code == 422
