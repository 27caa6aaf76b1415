"""`shop admin ...`: administrator accounts and signing keys (mounted by the `shop` CLI).

Roles are granted here and nowhere else: no API field can make an account an admin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, TypeVar

import typer
from contracts.types import utc_now
from shopkit.db import UnitOfWork, create_engine, create_sessionmaker
from shopkit.problems import DomainError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import keys, repository
from auth_service.config import AuthSettings
from auth_service.crypto import SecretBox
from auth_service.runtime import passwords_for
from auth_service.service import accounts

app = typer.Typer(help="Administrators and token signing keys.", no_args_is_help=True)

T = TypeVar("T")


def _in_transaction(work: Callable[[AsyncSession, AuthSettings], Awaitable[T]]) -> T:
    settings = AuthSettings()

    async def run() -> T:
        engine = create_engine(settings.database_url, pool_size=1, application_name="auth-cli")
        try:
            async with UnitOfWork(create_sessionmaker(engine)) as uow:
                result = await work(uow.session, settings)
                await uow.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


@app.command()
def create(
    email: Annotated[str, typer.Option(help="Email of the admin account")],
    password: Annotated[
        str, typer.Option(help="Password for a new account", prompt=True, hide_input=True)
    ],
    name: Annotated[str, typer.Option(help="Display name for a new account")] = "Administrator",
) -> None:
    """Create an admin account, or promote an existing account (its password is kept)."""

    async def work(session: AsyncSession, settings: AuthSettings) -> tuple[str, bool]:
        user, created = await accounts.make_admin(
            session, passwords=passwords_for(settings), email=email, password=password, name=name
        )
        return user.id, created

    try:
        user_id, created = _in_transaction(work)
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    verb = "created" if created else "promoted (existing password unchanged)"
    typer.echo(f"admin {email} {verb}: {user_id}")


@app.command("rotate-keys")
def rotate_keys(
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="Sign with the new key at once and retire the current one (a leaked key). "
            "Verifiers whose JWKS is older refuse its tokens until they reload it.",
        ),
    ] = False,
) -> None:
    """Rotate the signing key: by default the new key is published first and signs once every
    replica serves it; the old key stays published until its tokens expire."""

    async def work(session: AsyncSession, settings: AuthSettings) -> tuple[str, str]:
        box = SecretBox(settings.secret_key.get_secret_value())
        refresh_interval = timedelta(seconds=settings.key_refresh_seconds)
        if now:
            key = await keys.rotate(
                session,
                box=box,
                access_token_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
                refresh_interval=refresh_interval,
            )
            return key.kid, f"signs now; running replicas switch to it within {refresh_interval}"
        key = await keys.schedule_rotation(session, box=box, refresh_interval=refresh_interval)
        assert key.activates_at is not None
        return key.kid, f"published now, signs from {key.activates_at:%Y-%m-%d %H:%M:%S} UTC"

    kid, when = _in_transaction(work)
    typer.echo(f"new signing key {kid}: {when}")


@app.command("keys")
def list_keys() -> None:
    """Signing keys with their state (active, published, or due for removal)."""

    async def work(session: AsyncSession, _: AuthSettings) -> list[str]:
        lines = []
        moment = utc_now()
        for key in await repository.all_signing_keys(session):
            if key.retired_at is None and key.activates_at and key.activates_at > moment:
                state = f"pending, signs from {key.activates_at:%Y-%m-%d %H:%M:%S}"
            elif key.retired_at is None:
                state = "active"
            else:
                state = (
                    f"retired {key.retired_at:%Y-%m-%d %H:%M}, published until "
                    f"{key.publish_until:%Y-%m-%d %H:%M}"
                )
            lines.append(f"{key.kid}  created {key.created_at:%Y-%m-%d %H:%M}  {state}")
        return lines

    for line in _in_transaction(work) or ["no signing keys yet (the service creates one)"]:
        typer.echo(line)
