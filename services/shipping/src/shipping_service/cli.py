"""`shop carrier ...`: the sandbox carrier, for running shipments end to end locally."""

from __future__ import annotations

import asyncio
from typing import Annotated

import httpx
import typer
from shopkit.db import create_engine, create_sessionmaker

from shipping_service import repository
from shipping_service.config import ShippingSettings
from shipping_service.sandbox import SandboxCarrier

app = typer.Typer(
    help="Sandbox carrier: signed tracking webhooks to the public endpoint.", no_args_is_help=True
)


@app.callback()
def carrier() -> None:
    """Sandbox carrier commands (a group, so `shop carrier simulate` keeps its name)."""


async def _pending_tracking_numbers(settings: ShippingSettings) -> list[str]:
    engine = create_engine(settings.database_url, pool_size=1, application_name="shop-carrier")
    try:
        async with create_sessionmaker(engine)() as session:
            return [s.tracking_number for s in await repository.open_shipments(session)]
    finally:
        await engine.dispose()


async def simulate_async(
    *,
    tracking_numbers: list[str],
    to: str,
    base_url: str,
    step_delay: float,
    settings: ShippingSettings,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, list[str]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, transport=transport) as http:
        carrier = SandboxCarrier(http=http, settings=settings)
        results = {}
        for tracking_number in tracking_numbers:
            results[tracking_number] = await carrier.advance(
                tracking_number, to=to, step_delay=step_delay
            )
        return results


@app.command()
def simulate(
    tracking_numbers: Annotated[
        list[str] | None,
        typer.Argument(
            help="Parcels to advance; none means every open shipment in the shipping database"
        ),
    ] = None,
    to: Annotated[str, typer.Option(help="Last status to send")] = "delivered",
    base_url: Annotated[
        str, typer.Option(help="Public base URL (the gateway)")
    ] = "http://127.0.0.1:8000",
    step_delay: Annotated[float, typer.Option(help="Seconds between two updates")] = 0.0,
) -> None:
    """Advance shipments through posted -> in_transit -> out_for_delivery -> delivered."""
    settings = ShippingSettings()
    numbers = list(tracking_numbers or [])
    if not numbers:
        numbers = asyncio.run(_pending_tracking_numbers(settings))
        if not numbers:
            typer.echo("no open shipments")
            return
    try:
        results = asyncio.run(
            simulate_async(
                tracking_numbers=numbers,
                to=to,
                base_url=base_url,
                step_delay=step_delay,
                settings=settings,
            )
        )
    except (httpx.HTTPError, ValueError) as exc:
        typer.echo(f"simulation failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    for tracking_number, sent in results.items():
        typer.echo(f"{tracking_number}: {' -> '.join(sent) if sent else 'nothing to send'}")
