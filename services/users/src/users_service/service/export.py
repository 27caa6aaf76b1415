"""Data export (LGPD art. 18 / GDPR art. 15): users' own data plus each other service's."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from users_service.config import UsersSettings
from users_service.schemas import DataExport, ExportSection
from users_service.service import addresses, profiles, wishlist

log = logging.getLogger(__name__)


def _unavailable(name: str, error: str) -> ExportSection:
    # Reported in the export (never a failed request) and logged for whoever runs the service.
    log.warning("export source unavailable", extra={"source": name, "error": error})
    return ExportSection(status="unavailable", error=error)


async def _section(
    http: httpx.AsyncClient, name: str, url: str, authorization: str, timeout: float
) -> ExportSection:
    # The caller's own token: each service decides what belongs to them, as for any request.
    try:
        response = await http.get(url, headers={"Authorization": authorization}, timeout=timeout)
    except httpx.HTTPError as exc:
        return _unavailable(name, type(exc).__name__)
    if response.status_code != 200:
        return _unavailable(name, f"HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        return _unavailable(name, "not JSON")
    if not isinstance(data, dict):
        return _unavailable(name, "unexpected shape")
    return ExportSection(status="ok", data=data)


async def export(
    *,
    session: AsyncSession,
    settings: UsersSettings,
    http: httpx.AsyncClient,
    user_id: str,
    authorization: str,
) -> DataExport:
    profile = await profiles.load(session, user_id)
    sources = sorted(settings.export_sources.items())
    sections = await asyncio.gather(
        *(
            _section(http, name, url, authorization, settings.export_timeout_seconds)
            for name, url in sources
        )
    )
    return DataExport(
        user_id=user_id,
        generated_at=datetime.now(UTC),
        profile=profiles.to_public(profile),
        preferences=profiles.preferences_of(profile),
        addresses=(await addresses.list_mine(session=session, user_id=user_id)).items,
        wishlist=(await wishlist.list_mine(session=session, user_id=user_id)).items,
        services={name: section for (name, _), section in zip(sources, sections, strict=True)},
    )
