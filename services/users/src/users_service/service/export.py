"""Data export (LGPD art. 18 / GDPR art. 15): users' own data plus each other service's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from users_service.config import UsersSettings
from users_service.schemas import DataExport, ExportSection
from users_service.service import addresses, profiles, wishlist


async def _section(
    http: httpx.AsyncClient, url: str, authorization: str, timeout: float
) -> ExportSection:
    # The caller's own token: each service decides what belongs to them, as for any request.
    try:
        response = await http.get(url, headers={"Authorization": authorization}, timeout=timeout)
    except httpx.HTTPError as exc:
        return ExportSection(status="unavailable", error=f"{type(exc).__name__}")
    if response.status_code != 200:
        return ExportSection(status="unavailable", error=f"HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        return ExportSection(status="unavailable", error="not JSON")
    if not isinstance(data, dict):
        return ExportSection(status="unavailable", error="unexpected shape")
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
        *(_section(http, url, authorization, settings.export_timeout_seconds) for _, url in sources)
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
