"""Satellite records and administrative actions."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from app.auth.api_keys import generate_api_key, hash_api_key
from app.models import Satellite
from app.models.enums import SatelliteType

if TYPE_CHECKING:
    from app.services.runtime import Runtime


async def new_api_key(satellite_type: SatelliteType) -> tuple[str, str, str]:
    """`(api_key, key_id, argon2_hash)`; the hash is computed in a thread."""
    api_key, key_id = generate_api_key(satellite_type)
    return api_key, key_id, await asyncio.to_thread(hash_api_key, api_key)


async def create_satellite(
    rt: Runtime,
    *,
    name: str,
    satellite_type: SatelliteType,
    team_id: str | None,
    capabilities: list[str] | None = None,
    satellite_url: str | None = None,
    system_info: dict[str, Any] | None = None,
) -> tuple[Satellite, str]:
    """Create an `inactive` satellite with a fresh API key; returns the row and the key.

    The caller owns the surrounding rules (token checks, name conflicts).
    """
    api_key, key_id, key_hash = await new_api_key(satellite_type)
    row = await Satellite.create(
        name=name,
        satellite_type=satellite_type,
        team_id=team_id,
        capabilities=capabilities if capabilities is not None else ["stdio", "http", "sse"],
        satellite_url=satellite_url or None,
        system_info=system_info or {},
        api_key_id=key_id,
        api_key_hash=key_hash,
    )
    rt.fleet.apply_row(row)
    return row, api_key
