"""`register_satellite` in the service layer: name rules, atomicity, counting failures."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from app.errors import AppError, Conflict, RateLimited, Unauthenticated, ValidationError
from app.models import AuditEntry, RegistrationToken, Satellite
from app.models.enums import SatelliteStatus, SatelliteType, TokenScope
from app.runtime import Runtime
from app.services.satellites.registration import RegistrationResult, register_satellite
from app.wire.registration import RegistrationRequest
from tests.fixtures.people import TeamFactory, TokenFactory
from tests.fixtures.satellites import SatelliteFactory

ADDRESS = "203.0.113.7"


async def register(
    rt: Runtime, token: str, name: str, address: str = ADDRESS
) -> RegistrationResult:
    return await register_satellite(
        rt,
        authorization=f"Bearer {token}",
        body=RegistrationRequest(name=name),
        address=address,
    )


async def test_new_satellite_takes_type_and_team_from_the_token(
    rt: Runtime, issue_token: TokenFactory, make_team: TeamFactory
) -> None:
    team = await make_team()
    issued = await issue_token(scope=TokenScope.TEAM, team_id=team.id)
    result = await register(rt, issued.token, "team-satellite-1")
    assert result.satellite_type is SatelliteType.TEAM
    assert result.team_id == team.id
    assert result.status is SatelliteStatus.INACTIVE
    assert not result.reregistered
    state = rt.fleet.get(result.satellite_id)
    assert state is not None
    assert state.team_id == team.id
    entry = await AuditEntry.get(action="satellite.registered", object_id=result.satellite_id)
    assert entry.details["jti"] == issued.row.jti
    assert result.api_key not in str(entry.details)


async def test_same_new_name_registered_concurrently_burns_only_the_winners_token(
    rt: Runtime, issue_token: TokenFactory
) -> None:
    first, second = await issue_token(), await issue_token()
    outcomes = await asyncio.gather(
        register(rt, first.token, "contested-name"),
        register(rt, second.token, "contested-name"),
        return_exceptions=True,
    )
    results = [outcome for outcome in outcomes if isinstance(outcome, RegistrationResult)]
    errors = [outcome for outcome in outcomes if isinstance(outcome, AppError)]
    assert len(results) == 1
    assert len(errors) == 1
    assert errors[0].code == "satellite_name_taken"
    rows = {row.jti: row for row in await RegistrationToken.all()}
    used = [row for row in rows.values() if row.used_at is not None]
    assert len(used) == 1
    assert used[0].used_by_satellite_id == results[0].satellite_id
    assert await Satellite.filter(name="contested-name").count() == 1


async def test_reregistration_moves_the_key_generation_and_keeps_history(
    rt: Runtime, issue_token: TokenFactory, make_satellite: SatelliteFactory
) -> None:
    existing = await make_satellite(name="long-lived-sat")
    before = rt.fleet.get(existing.id)
    assert before is not None
    generation = before.key_generation
    issued = await issue_token(satellite_name=existing.name)
    result = await register(rt, issued.token, existing.name)
    assert result.reregistered
    assert result.satellite_id == existing.id
    after = rt.fleet.get(existing.id)
    assert after is not None
    assert after.key_generation == generation + 1
    assert after.status is SatelliteStatus.INACTIVE
    row = await Satellite.get(id=existing.id)
    assert row.key_generation == generation + 1
    token_row = await RegistrationToken.get(jti=issued.row.jti)
    assert token_row.used_by_satellite_id == existing.id
    assert result.message.startswith("Satellite re-registered.")


async def test_reregistration_takes_the_new_capabilities_and_url(
    rt: Runtime, issue_token: TokenFactory, make_satellite: SatelliteFactory
) -> None:
    existing = await make_satellite(name="updated-sat-01")
    issued = await issue_token(satellite_name=existing.name)
    await register_satellite(
        rt,
        authorization=f"Bearer {issued.token}",
        body=RegistrationRequest(
            name=existing.name,
            capabilities=["stdio"],
            satellite_url="https://sat.example.com",
            system_info={"os": "linux"},
        ),
        address=ADDRESS,
    )
    row = await Satellite.get(id=existing.id)
    assert row.capabilities == ["stdio"]
    assert row.satellite_url == "https://sat.example.com"
    assert row.system_info == {"os": "linux"}


async def test_body_reader_is_not_called_when_the_token_fails(rt: Runtime) -> None:
    called = False

    async def reader() -> RegistrationRequest:
        nonlocal called
        called = True
        raise ValidationError("should not be reached")

    with pytest.raises(Unauthenticated):
        await register_satellite(rt, authorization="Bearer nope", body=reader, address=ADDRESS)
    assert not called


async def test_every_failure_is_audited_as_a_security_event(
    rt: Runtime,
    http: aiohttp.ClientSession,
    issue_token: TokenFactory,
    make_satellite: SatelliteFactory,
) -> None:
    existing = await make_satellite(name="occupied-name")
    async with http.post(existing.path("heartbeat"), headers=existing.headers, json={
        "status": "active", "system_metrics": {"cpu_usage_percent": 1, "memory_usage_mb": 1},
    }) as response:
        assert response.status == 200  # live: an unbound token cannot re-register it
    issued = await issue_token()
    with pytest.raises(Conflict):
        await register(rt, issued.token, existing.name)
    with pytest.raises(Unauthenticated):
        await register_satellite(
            rt, authorization=None, body=RegistrationRequest(name="whatever-name"), address=ADDRESS
        )
    entries = await AuditEntry.filter(action="security.registration_failed").order_by("id")
    assert [entry.details["reason"] for entry in entries] == [
        "satellite_name_taken",
        "registration_token_required",
    ]
    assert entries[0].details["jti"] == issued.row.jti
    assert entries[0].details["name"] == existing.name
    assert all(entry.address == ADDRESS for entry in entries)
    assert all(issued.token not in str(entry.details) for entry in entries)


async def test_failures_count_toward_the_shared_limit_per_address(
    rt: Runtime, issue_token: TokenFactory
) -> None:
    limit = rt.settings.auth_failure_limit
    for _ in range(limit + 1):
        with pytest.raises(Unauthenticated):
            await register(rt, "deploystack_satellite_global_bad", "limited-name-1")
    issued = await issue_token()
    with pytest.raises(RateLimited):
        await register(rt, issued.token, "limited-name-1")
    # Another address is not affected.
    result = await register(rt, issued.token, "limited-name-1", address="198.51.100.1")
    assert result.name == "limited-name-1"
