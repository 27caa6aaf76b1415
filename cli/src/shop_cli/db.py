"""`shop db ...`: apply and author each service's migrations."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from alembic import command
from shopkit import migrations
from shopkit.mongo import create_client
from shopkit.mongo_migrations import upgrade as mongo_upgrade

app = typer.Typer(help="Database migrations (one history per service).", no_args_is_help=True)

ALL = (*migrations.POSTGRES_SERVICES, "catalog")


def _upgrade_catalog() -> list[str]:
    from catalog_service.config import CatalogSettings

    settings = CatalogSettings()

    async def run() -> list[str]:
        client = create_client(settings.mongo_url)
        try:
            return await mongo_upgrade(
                client[settings.mongo_database], migrations.migrations_dir("catalog") / "versions"
            )
        finally:
            await client.close()

    return asyncio.run(run())


@app.command()
def upgrade(
    services: Annotated[list[str] | None, typer.Argument(help="Services to migrate")] = None,
    all_services: Annotated[bool, typer.Option("--all", help="Migrate every service")] = False,
) -> None:
    """Bring databases to the latest revision."""
    chosen = list(ALL) if all_services or not services else services
    for service in chosen:
        if service not in ALL:
            raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(ALL)}")
        if service == "catalog":
            applied = _upgrade_catalog()
            typer.echo(f"catalog: {', '.join(applied) or 'up to date'}")
        else:
            migrations.upgrade(service)
            typer.echo(f"{service}: at head")


@app.command()
def revision(
    service: Annotated[str, typer.Argument(help="Service whose history gets the revision")],
    message: Annotated[str, typer.Option("-m", "--message")],
    autogenerate: Annotated[bool, typer.Option(help="Diff models against the database")] = True,
) -> None:
    """Create a new migration for one PostgreSQL service."""
    if service not in migrations.POSTGRES_SERVICES:
        raise typer.BadParameter(f"{service!r} has no Alembic history")
    command.revision(migrations.alembic_config(service), message=message, autogenerate=autogenerate)
