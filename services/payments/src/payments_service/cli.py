"""`shop payments ...`: reconciliation with the provider, and completing 3-D Secure locally."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import httpx
import typer
from shopkit.db import create_engine, create_sessionmaker

from payments_service import repository
from payments_service.config import PaymentsSettings
from payments_service.runtime import build_provider
from payments_service.service.reconcile import ReconcileReport, reconcile

app = typer.Typer(help="Payments: reconciliation and local 3-D Secure.", no_args_is_help=True)


@app.command("reconcile")
def reconcile_command(
    since: Annotated[datetime | None, typer.Option(help="Window start (UTC ISO 8601)")] = None,
    until: Annotated[datetime | None, typer.Option(help="Window end (default: now)")] = None,
    hours: Annotated[float, typer.Option(help="Window length when --since is not given")] = 24.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Compare local payment attempts with the provider's PaymentIntents; exit 1 on mismatches."""
    end = _utc(until) if until else datetime.now(UTC)
    start = _utc(since) if since else end - timedelta(hours=hours)
    if start >= end:
        raise typer.BadParameter("--since must be before --until")
    report = asyncio.run(run_reconcile(PaymentsSettings(), since=start, until=end))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print(report)
    raise typer.Exit(0 if report.ok else 1)


async def run_reconcile(
    settings: PaymentsSettings, *, since: datetime, until: datetime
) -> ReconcileReport:
    engine = create_engine(settings.database_url, pool_size=2, application_name="payments-cli")
    provider = build_provider(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            return await reconcile(
                session=session,
                provider=provider,
                namespace=settings.provider_namespace,
                since=since,
                until=until,
            )
    finally:
        await provider.close()
        await engine.dispose()


@app.command("authenticate")
def authenticate_command(
    order_id: Annotated[str, typer.Argument(help="Order whose payment waits on 3-D Secure")],
    fail: Annotated[bool, typer.Option("--fail", help="Fail the challenge instead")] = False,
) -> None:
    """Complete (or fail) the 3-D Secure challenge of an order's payment on localstripe, as the
    customer's browser would with Stripe.js. Development only."""
    settings = PaymentsSettings()
    if not settings.is_development or "api.stripe.com" in settings.stripe_api_base:
        raise typer.BadParameter("only against the local Stripe stand-in in development")
    status = asyncio.run(authenticate(settings, order_id=order_id, success=not fail))
    typer.echo(f"payment intent is now {status}")


async def authenticate(settings: PaymentsSettings, *, order_id: str, success: bool) -> str:
    engine = create_engine(settings.database_url, pool_size=1, application_name="payments-cli")
    try:
        async with create_sessionmaker(engine)() as session:
            attempts = await repository.attempts_of(session, order_id)
    finally:
        await engine.dispose()
    waiting = next((a for a in reversed(attempts) if a.next_action), None)
    if waiting is None or waiting.provider_payment_id is None or waiting.next_action is None:
        raise typer.BadParameter(f"order {order_id} has no payment waiting on 3-D Secure")
    return await complete_challenge(
        api_base=settings.stripe_api_base,
        api_key=settings.stripe_api_key.get_secret_value(),
        intent_id=waiting.provider_payment_id,
        client_secret=str(waiting.next_action.get("client_secret")),
        success=success,
    )


async def complete_challenge(
    *, api_base: str, api_key: str, intent_id: str, client_secret: str, success: bool
) -> str:
    """localstripe's stand-in for the 3-D Secure page: POST .../_authenticate."""
    async with httpx.AsyncClient(base_url=api_base, timeout=10.0) as client:
        response = await client.post(
            f"/v1/payment_intents/{intent_id}/_authenticate",
            data={"client_secret": client_secret, "success": "true" if success else "false"},
            auth=(api_key, ""),
        )
        response.raise_for_status()
        return str(response.json()["status"])


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _print(report: ReconcileReport) -> None:
    typer.echo(
        f"window {report.since.isoformat()} .. {report.until.isoformat()}: "
        f"{report.local_attempts} local attempts, {report.provider_intents} provider intents, "
        f"{report.matched} matched, {len(report.mismatches)} mismatches"
    )
    for m in report.mismatches:
        typer.echo(
            f"  {m.kind:<16} order={m.order_id} payment={m.payment_id} "
            f"intent={m.provider_payment_id} local={m.local} provider={m.provider}"
        )
