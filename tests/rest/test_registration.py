"""`POST /api/satellites/register` over real HTTP (docs/protocol.md §3, §4, §13)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.models import AuditEntry, RegistrationToken, Satellite
from app.models.enums import SatelliteStatus, SatelliteType, TokenScope
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR
from app.services.common.clock import ManualClock
from app.services.satellites.admin import rotate_satellite_key, set_satellite_status
from app.services.satellites.tokens import IssuedToken, revoke_registration_token
from tests.fixtures.people import TeamFactory, TokenFactory
from tests.fixtures.satellites import SatelliteFactory, TestSatellite
from tests.fixtures.server import make_settings, running

REGISTER = "/api/satellites/register"
REFERENCE_HEADERS = {
    "Content-Type": "application/json",
    "User-Agent": "DeployStack-Satellite/0.1.0 (Node.js)",
    "Accept": "application/json, text/plain, */*",
    "Accept-Language": "en-US,en;q=0.9",
    "Accept-Encoding": "gzip, deflate, br",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
}
API_KEY_PREFIX = "deploystack_satellite_api_"


def reference_body(name: str, **extra: Any) -> dict[str, Any]:
    """What the reference client sends (docs/protocol.md §13)."""
    return {
        "name": name,
        "capabilities": ["stdio", "http", "sse"],
        "satellite_url": "http://satellite.internal:3001",
        "system_info": {
            "os": "linux linux",
            "arch": "x64",
            "node_version": "v20.11.1",
            "memory_mb": 512,
        },
        **extra,
    }


async def register(
    http: aiohttp.ClientSession,
    token: str | None,
    body: Any,
    *,
    authorization: str | None = None,
) -> tuple[int, dict[str, Any]]:
    headers = dict(REFERENCE_HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.post(REGISTER, json=body, headers=headers) as response:
        return response.status, await response.json()


def reforged(
    rt: Runtime,
    issued: IssuedToken,
    *,
    key: Any = None,
    algorithm: str = "HS256",
    prefix: str | None = None,
    **claims: Any,
) -> str:
    """The issued token's claims with changes, signed again (by default with the real key)."""
    scope_prefix, jwt_text = issued.token.rsplit("_", 1)[0], issued.token.split("_", 3)[3]
    payload = jwt.decode(jwt_text, options={"verify_signature": False})
    payload.update(claims)
    signed = jwt.encode(
        payload, rt.keys.registration_tokens if key is None else key, algorithm=algorithm
    )
    return (prefix if prefix is not None else scope_prefix + "_") + signed


async def heartbeat(http: aiohttp.ClientSession, satellite_id: str, api_key: str) -> int:
    """One heartbeat with `api_key`; its status."""
    body = {"status": "active", "system_metrics": {"cpu_usage_percent": 1, "memory_usage_mb": 64},
            "processes": [], "error_count": 0, "version": "1.0.0"}
    async with http.post(f"/api/satellites/{satellite_id}/heartbeat", json=body,
                         headers={"Authorization": f"Bearer {api_key}"}) as response:
        return response.status


def error_of(status: int, body: dict[str, Any]) -> tuple[int, str]:
    assert body["success"] is False
    assert body["message"]
    return status, body["error"]


async def issue_expired(
    issue_token: TokenFactory, clock: ManualClock, **kwargs: Any
) -> IssuedToken:
    """A token issued (through the service) two hours ago with a one-hour lifetime."""
    now = clock.now()
    clock.set(now - timedelta(hours=2))
    issued = await issue_token(hours=1, **kwargs)
    clock.set(now)
    return issued


# ---- success ----------------------------------------------------------------------


async def test_reference_client_registers_and_gets_exactly_the_documented_answer(
    http: aiohttp.ClientSession, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    status, body = await register(http, issued.token, reference_body("edge-satellite-01"))
    assert status == 200
    assert set(body) == {"success", "satellite", "message"}
    assert body["success"] is True
    assert set(body["satellite"]) == {
        "id",
        "name",
        "satellite_type",
        "team_id",
        "status",
        "api_key",
    }
    satellite = body["satellite"]
    assert satellite["name"] == "edge-satellite-01"
    assert satellite["satellite_type"] == "global"
    assert satellite["team_id"] is None
    assert satellite["status"] == "inactive"
    assert satellite["api_key"].startswith("deploystack_satellite_api_global_")
    assert len(satellite["api_key"]) == len("deploystack_satellite_api_global_") + 32
    assert body["message"] == (
        "Satellite registered. Status is 'inactive' until its first heartbeat."
    )
    row = await Satellite.get(id=satellite["id"])
    assert row.capabilities == ["stdio", "http", "sse"]
    assert row.satellite_url == "http://satellite.internal:3001"
    assert row.system_info["arch"] == "x64"


async def test_new_key_authenticates_on_the_satellites_own_routes(
    http: aiohttp.ClientSession, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    _, body = await register(http, issued.token, reference_body("edge-satellite-02"))
    satellite = body["satellite"]
    headers = {"Authorization": f"Bearer {satellite['api_key']}"}
    async with http.get(f"/api/satellites/{satellite['id']}/commands", headers=headers) as rsp:
        assert rsp.status not in (401, 403, 429)


async def test_extra_body_fields_are_ignored_and_type_comes_from_the_token(
    http: aiohttp.ClientSession, issue_token: TokenFactory, make_team: TeamFactory
) -> None:
    team = await make_team()
    issued = await issue_token(scope=TokenScope.TEAM, team_id=team.id)
    body = reference_body(
        "team-satellite-01", satellite_type="global", team_id=None, something_new={"nested": [1, 2]}
    )
    status, answer = await register(http, issued.token, body)
    assert status == 200
    assert answer["satellite"]["satellite_type"] == "team"
    assert answer["satellite"]["team_id"] == team.id
    assert answer["satellite"]["api_key"].startswith("deploystack_satellite_api_team_")


async def test_minimal_body_gets_default_capabilities(
    http: aiohttp.ClientSession, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    status, body = await register(http, issued.token, {"name": "minimal-satellite"})
    assert status == 200
    row = await Satellite.get(id=body["satellite"]["id"])
    assert row.capabilities == ["stdio", "http", "sse"]
    assert row.system_info == {}


async def test_registration_consumes_the_token(
    http: aiohttp.ClientSession, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    _, body = await register(http, issued.token, reference_body("edge-satellite-03"))
    row = await RegistrationToken.get(jti=issued.row.jti)
    assert row.used_at is not None
    assert row.used_by_satellite_id == body["satellite"]["id"]
    status, again = await register(http, issued.token, reference_body("edge-satellite-04"))
    assert error_of(status, again) == (401, "token_already_used")


# ---- the table of docs/protocol.md §3, row by row, in order -------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token deploystack_satellite_global_x"],
)
async def test_missing_or_non_bearer_header_is_registration_token_required(
    http: aiohttp.ClientSession, authorization: str | None
) -> None:
    if authorization is None:
        status, body = await register(http, None, reference_body("edge-satellite-05"))
    else:
        status, body = await register(
            http, None, reference_body("edge-satellite-05"), authorization=authorization
        )
    assert error_of(status, body) == (401, "registration_token_required")


async def test_bad_prefix_signature_alg_audience_and_issuer_are_invalid(
    http: aiohttp.ClientSession, rt: Runtime, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    jwt_text = issued.token.split("_", 3)[3]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    payload = jwt.decode(jwt_text, options={"verify_signature": False})
    candidates = {
        "bad prefix": "deploystack_satellite_other_" + jwt_text,
        "no prefix": jwt_text,
        "api key instead": "deploystack_satellite_api_global_" + "a" * 32,
        "wrong key": reforged(rt, issued, key=b"another-secret-of-32-bytes-long!"),
        "alg none": "deploystack_satellite_global_" + jwt.encode(payload, None, algorithm="none"),  # type: ignore[arg-type]
        "HS384": reforged(rt, issued, key=rt.keys.registration_tokens * 2, algorithm="HS384"),
        "RS256": reforged(rt, issued, key=rsa_key, algorithm="RS256"),
        "wrong aud": reforged(rt, issued, aud="something-else"),
        "wrong iss": reforged(rt, issued, iss="another-backend"),
        "tampered": issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB"),
    }
    for label, token in candidates.items():
        status, body = await register(http, token, reference_body("edge-satellite-06"))
        assert error_of(status, body) == (401, "invalid_registration_token"), label
    assert not await Satellite.exists(name="edge-satellite-06")
    assert (await RegistrationToken.get(jti=issued.row.jti)).used_at is None


async def test_expired_token_is_token_expired(
    http: aiohttp.ClientSession, issue_token: TokenFactory, clock: ManualClock
) -> None:
    issued = await issue_expired(issue_token, clock)
    status, body = await register(http, issued.token, reference_body("edge-satellite-07"))
    assert error_of(status, body) == (401, "token_expired")


async def test_expired_and_wrong_audience_is_invalid_not_expired(
    http: aiohttp.ClientSession,
    rt: Runtime,
    issue_token: TokenFactory,
    clock: ManualClock,
) -> None:
    issued = await issue_expired(issue_token, clock)
    status, body = await register(
        http, reforged(rt, issued, aud="wrong"), reference_body("edge-satellite-08")
    )
    assert error_of(status, body) == (401, "invalid_registration_token")


async def test_expired_and_revoked_is_expired(
    http: aiohttp.ClientSession,
    rt: Runtime,
    issue_token: TokenFactory,
    clock: ManualClock,
) -> None:
    issued = await issue_expired(issue_token, clock)
    await revoke_registration_token(rt, issued.row.jti, actor=CLI_ACTOR)
    status, body = await register(http, issued.token, reference_body("edge-satellite-09"))
    assert error_of(status, body) == (401, "token_expired")


async def test_unknown_jti_is_invalid(
    http: aiohttp.ClientSession, rt: Runtime, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    status, body = await register(
        http, reforged(rt, issued, jti="f" * 32), reference_body("edge-satellite-10")
    )
    assert error_of(status, body) == (401, "invalid_registration_token")


async def test_revoked_token_is_invalid(
    http: aiohttp.ClientSession, rt: Runtime, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    await revoke_registration_token(rt, issued.row.jti, actor=CLI_ACTOR)
    status, body = await register(http, issued.token, reference_body("edge-satellite-11"))
    assert error_of(status, body) == (401, "invalid_registration_token")


async def test_resigned_token_with_a_known_jti_but_other_claims_is_invalid(
    http: aiohttp.ClientSession, rt: Runtime, issue_token: TokenFactory
) -> None:
    issued = await issue_token(satellite_name="edge-satellite-12")
    forged = reforged(rt, issued, satellite_name="edge-satellite-13")
    status, body = await register(http, forged, reference_body("edge-satellite-13"))
    assert error_of(status, body) == (401, "invalid_registration_token")


async def test_scope_claim_not_matching_the_prefix_is_token_invalid_scope(
    http: aiohttp.ClientSession, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    swapped = issued.token.replace("deploystack_satellite_global_", "deploystack_satellite_team_")
    status, body = await register(http, swapped, reference_body("edge-satellite-14"))
    assert error_of(status, body) == (401, "token_invalid_scope")
    assert (await RegistrationToken.get(jti=issued.row.jti)).used_at is None


async def test_used_token_with_swapped_prefix_is_already_used_before_scope(
    http: aiohttp.ClientSession, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    assert (await register(http, issued.token, reference_body("edge-satellite-15")))[0] == 200
    swapped = issued.token.replace("deploystack_satellite_global_", "deploystack_satellite_team_")
    status, body = await register(http, swapped, reference_body("edge-satellite-16"))
    assert error_of(status, body) == (401, "token_already_used")


async def test_concurrent_registrations_with_one_token_give_one_success(
    http: aiohttp.ClientSession, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    results = await asyncio.gather(
        register(http, issued.token, reference_body("racing-satellite-a")),
        register(http, issued.token, reference_body("racing-satellite-b")),
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 401]
    loser = next(body for status, body in results if status == 401)
    assert loser["error"] == "token_already_used"
    assert await Satellite.filter(name__startswith="racing-satellite-").count() == 1


# ---- names and re-registration ------------------------------------------------------


async def test_unbound_token_on_a_live_satellites_name_is_409_and_stays_usable(
    http: aiohttp.ClientSession, issue_token: TokenFactory, make_satellite: SatelliteFactory
) -> None:
    existing = await make_satellite(name="taken-satellite-1")
    assert await heartbeat(http, existing.id, existing.api_key) == 200  # live
    issued = await issue_token()
    status, body = await register(http, issued.token, reference_body(existing.name))
    assert error_of(status, body) == (409, "satellite_name_taken")
    assert (await RegistrationToken.get(jti=issued.row.jti)).used_at is None
    status, body = await register(http, issued.token, reference_body("fresh-satellite-1"))
    assert status == 200


async def test_bound_token_reregisters_keeping_id_and_replacing_the_key(
    http: aiohttp.ClientSession, issue_token: TokenFactory, make_satellite: SatelliteFactory
) -> None:
    existing = await make_satellite(name="reborn-satellite")  # active, with a key
    old_headers = {"Authorization": f"Bearer {existing.api_key}"}
    async with http.get(existing.path("commands"), headers=old_headers) as response:
        assert response.status not in (401, 403)  # the old key works (and is now cached)
    issued = await issue_token(satellite_name=existing.name)
    status, body = await register(http, issued.token, reference_body(existing.name))
    assert status == 200
    assert body["satellite"]["id"] == existing.id
    assert body["satellite"]["status"] == "inactive"
    assert body["satellite"]["api_key"] != existing.api_key
    async with http.get(existing.path("commands"), headers=old_headers) as response:
        assert response.status == 401
    new_headers = {"Authorization": f"Bearer {body['satellite']['api_key']}"}
    async with http.get(existing.path("commands"), headers=new_headers) as response:
        assert response.status not in (401, 403)
    row = await Satellite.get(id=existing.id)
    assert row.status is SatelliteStatus.INACTIVE
    assert await AuditEntry.filter(action="satellite.reregistered", object_id=existing.id).exists()


async def test_reregistration_keeps_maintenance(
    http: aiohttp.ClientSession,
    rt: Runtime,
    issue_token: TokenFactory,
    make_satellite: SatelliteFactory,
) -> None:
    existing = await make_satellite(name="maintained-sat")
    await set_satellite_status(rt, existing.id, SatelliteStatus.MAINTENANCE, actor=CLI_ACTOR)
    issued = await issue_token(satellite_name=existing.name)
    status, body = await register(http, issued.token, reference_body(existing.name))
    assert status == 200
    assert body["satellite"]["status"] == "maintenance"
    assert (await Satellite.get(id=existing.id)).status is SatelliteStatus.MAINTENANCE


async def test_team_token_bound_to_a_global_satellites_name_is_refused(
    http: aiohttp.ClientSession,
    issue_token: TokenFactory,
    make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    existing = await make_satellite(name="global-sat-0001")
    team = await make_team()
    issued = await issue_token(scope=TokenScope.TEAM, team_id=team.id, satellite_name=existing.name)
    status, body = await register(http, issued.token, reference_body(existing.name))
    assert error_of(status, body) == (409, "satellite_name_taken")
    row = await Satellite.get(id=existing.id)
    assert row.satellite_type is SatelliteType.GLOBAL
    assert row.team_id is None  # type: ignore[attr-defined]
    assert (await RegistrationToken.get(jti=issued.row.jti)).used_at is None


async def test_global_token_bound_to_a_team_satellites_name_is_refused(
    http: aiohttp.ClientSession,
    issue_token: TokenFactory,
    make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    team = await make_team()
    existing = await make_satellite(
        name="team-sat-00001", satellite_type=SatelliteType.TEAM, team_id=team.id
    )
    issued = await issue_token(satellite_name=existing.name)
    status, body = await register(http, issued.token, reference_body(existing.name))
    assert error_of(status, body) == (409, "satellite_name_taken")


async def test_other_teams_token_bound_to_the_name_is_refused(
    http: aiohttp.ClientSession,
    issue_token: TokenFactory,
    make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    owner, stranger = await make_team(), await make_team()
    existing = await make_satellite(
        name="team-sat-00002", satellite_type=SatelliteType.TEAM, team_id=owner.id
    )
    issued = await issue_token(
        scope=TokenScope.TEAM, team_id=stranger.id, satellite_name=existing.name
    )
    status, body = await register(http, issued.token, reference_body(existing.name))
    assert error_of(status, body) == (409, "satellite_name_taken")
    mine = await issue_token(scope=TokenScope.TEAM, team_id=owner.id, satellite_name=existing.name)
    status, body = await register(http, mine.token, reference_body(existing.name))
    assert status == 200
    assert body["satellite"]["id"] == existing.id
    assert body["satellite"]["team_id"] == owner.id


async def test_disabled_satellite_cannot_reregister_and_token_is_kept(
    http: aiohttp.ClientSession,
    rt: Runtime,
    issue_token: TokenFactory,
    make_satellite: SatelliteFactory,
) -> None:
    existing = await make_satellite(name="disabled-sat-1")
    await set_satellite_status(rt, existing.id, SatelliteStatus.DISABLED, actor=CLI_ACTOR)
    issued = await issue_token(satellite_name=existing.name)
    status, body = await register(http, issued.token, reference_body(existing.name))
    assert error_of(status, body) == (403, "satellite_disabled")
    assert (await RegistrationToken.get(jti=issued.row.jti)).used_at is None
    assert (await Satellite.get(id=existing.id)).status is SatelliteStatus.DISABLED


async def test_bound_token_for_another_new_name_is_invalid_and_says_which_name(
    http: aiohttp.ClientSession, issue_token: TokenFactory
) -> None:
    issued = await issue_token(satellite_name="the-right-name")
    status, body = await register(http, issued.token, reference_body("the-wrong-name"))
    assert error_of(status, body) == (401, "invalid_registration_token")
    assert "the-right-name" in body["message"]
    status, body = await register(http, issued.token, reference_body("the-right-name"))
    assert status == 200


async def test_bound_token_for_another_existing_name_is_409(
    http: aiohttp.ClientSession, issue_token: TokenFactory, make_satellite: SatelliteFactory
) -> None:
    existing = await make_satellite(name="existing-sat-1")
    issued = await issue_token(satellite_name="some-other-name")
    status, body = await register(http, issued.token, reference_body(existing.name))
    assert error_of(status, body) == (409, "satellite_name_taken")
    assert "bound to the name 'some-other-name'" in body["message"]
    assert (await RegistrationToken.get(jti=issued.row.jti)).used_at is None


async def test_deleted_satellites_name_can_be_registered_again(
    http: aiohttp.ClientSession,
    rt: Runtime,
    issue_token: TokenFactory,
    make_satellite: SatelliteFactory,
) -> None:
    from app.services.satellites.admin import delete_satellite

    existing = await make_satellite(name="recycled-name-1")
    await delete_satellite(rt, existing.id, actor=CLI_ACTOR)
    status, body = await register(http, (await issue_token()).token, reference_body(existing.name))
    assert status == 200
    assert body["satellite"]["id"] != existing.id


# ---- recovering: an unbound token re-registers a satellite that is not live (§4) ------


async def assert_reregistered(
    http: aiohttp.ClientSession,
    existing: TestSatellite,
    issued: IssuedToken,
    answer: tuple[int, dict[str, Any]],
    *,
    rule: str,
    old_keys: tuple[str, ...],
) -> str:
    """200 with the same id and a new key that works; every old key 401; the token
    consumed by this satellite; the audit entry naming the token and the rule."""
    status, body = answer
    assert status == 200, body
    assert body["satellite"]["id"] == existing.id
    assert body["satellite"]["name"] == existing.name
    new_key: str = body["satellite"]["api_key"]
    assert new_key not in old_keys
    for old_key in old_keys:
        assert await heartbeat(http, existing.id, old_key) == 401
    assert await heartbeat(http, existing.id, new_key) == 200
    token_row = await RegistrationToken.get(jti=issued.row.jti)
    assert token_row.used_at is not None
    assert token_row.used_by_satellite_id == existing.id
    entry = await AuditEntry.get(action="satellite.reregistered", object_id=existing.id)
    assert entry.details["rule"] == rule
    assert entry.details["jti"] == issued.row.jti
    assert new_key not in str(entry.details)
    row = await Satellite.get(id=existing.id)
    assert row.rotated_key_unused is False
    assert await Satellite.filter(name=existing.name).count() == 1
    return new_key


async def assert_refused(
    http: aiohttp.ClientSession,
    existing: TestSatellite,
    issued: IssuedToken,
    answer: tuple[int, dict[str, Any]],
    *,
    key: str | None,
    error: tuple[int, str] = (409, "satellite_name_taken"),
) -> str:
    """The error, the token not consumed, nothing re-registered, the current key still
    working (when given); returns the message."""
    status, body = answer
    assert error_of(status, body) == error
    assert (await RegistrationToken.get(jti=issued.row.jti)).used_at is None
    assert not await AuditEntry.filter(action="satellite.reregistered").exists()
    if key is not None:
        assert await heartbeat(http, existing.id, key) == 200
    message: str = body["message"]
    return message


async def test_live_satellite_with_an_unbound_token_is_409_saying_how_to_recover(
    http: aiohttp.ClientSession,
    rt: Runtime,
    issue_token: TokenFactory,
    make_satellite: SatelliteFactory,
) -> None:
    existing = await make_satellite(name="live-satellite-1")
    assert await heartbeat(http, existing.id, existing.api_key) == 200
    issued = await issue_token()
    answer = await register(http, issued.token, reference_body(existing.name))
    message = await assert_refused(http, existing, issued, answer, key=existing.api_key)
    assert "live" in message
    assert f"groundstation token create --scope global --name {existing.name}" in message
    assert f"offline (no heartbeat for {rt.settings.offline_threshold} s" in message


async def test_live_team_satellite_409_names_the_team_in_the_command(
    http: aiohttp.ClientSession,
    issue_token: TokenFactory,
    make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    team = await make_team()
    existing = await make_satellite(
        name="live-team-sat-1", satellite_type=SatelliteType.TEAM, team_id=team.id
    )
    assert await heartbeat(http, existing.id, existing.api_key) == 200
    issued = await issue_token(scope=TokenScope.TEAM, team_id=team.id)
    answer = await register(http, issued.token, reference_body(existing.name))
    message = await assert_refused(http, existing, issued, answer, key=existing.api_key)
    assert (
        f"groundstation token create --scope team --team {team.slug} --name {existing.name}"
        in message
    )


async def test_offline_satellite_reregisters_with_an_unbound_token(
    http: aiohttp.ClientSession,
    rt: Runtime,
    clock: ManualClock,
    issue_token: TokenFactory,
    make_satellite: SatelliteFactory,
) -> None:
    existing = await make_satellite(name="offline-satellite-1")
    assert await heartbeat(http, existing.id, existing.api_key) == 200
    issued = await issue_token()
    clock.advance(rt.settings.offline_threshold - 1)  # still live
    answer = await register(http, issued.token, reference_body(existing.name))
    await assert_refused(http, existing, issued, answer, key=existing.api_key)
    clock.advance(rt.settings.offline_threshold + 1)  # no heartbeat for a whole threshold
    answer = await register(http, issued.token, reference_body(existing.name))
    await assert_reregistered(http, existing, issued, answer, rule="offline",
                              old_keys=(existing.api_key,))
    assert answer[1]["satellite"]["status"] == "inactive"


async def test_satellite_that_never_sent_a_heartbeat_reregisters_with_an_unbound_token(
    http: aiohttp.ClientSession, issue_token: TokenFactory, make_satellite: SatelliteFactory
) -> None:
    existing = await make_satellite(name="silent-satellite-1")  # active, no heartbeat ever
    issued = await issue_token()
    answer = await register(http, issued.token, reference_body(existing.name))
    await assert_reregistered(http, existing, issued, answer, rule="offline",
                              old_keys=(existing.api_key,))
    assert answer[1]["satellite"]["status"] == "inactive"
    assert (await Satellite.get(id=existing.id)).status is SatelliteStatus.ACTIVE  # heartbeat


async def test_rotated_key_never_used_lets_an_unbound_token_reregister_a_live_satellite(
    http: aiohttp.ClientSession,
    rt: Runtime,
    issue_token: TokenFactory,
    make_satellite: SatelliteFactory,
) -> None:
    existing = await make_satellite(name="rotated-satellite-1")
    assert await heartbeat(http, existing.id, existing.api_key) == 200  # live
    rotated = await rotate_satellite_key(rt, existing.id, actor=CLI_ACTOR)
    assert (await Satellite.get(id=existing.id)).rotated_key_unused is True
    issued = await issue_token()
    answer = await register(http, issued.token, reference_body(existing.name))
    await assert_reregistered(http, existing, issued, answer, rule="rotated_key_unused",
                              old_keys=(existing.api_key, rotated))


async def test_rotated_key_once_used_makes_the_satellite_live_again(
    http: aiohttp.ClientSession,
    rt: Runtime,
    issue_token: TokenFactory,
    make_satellite: SatelliteFactory,
) -> None:
    existing = await make_satellite(name="rotated-satellite-2")
    assert await heartbeat(http, existing.id, existing.api_key) == 200
    rotated = await rotate_satellite_key(rt, existing.id, actor=CLI_ACTOR)
    assert await heartbeat(http, existing.id, rotated) == 200  # the operator installed it
    assert (await Satellite.get(id=existing.id)).rotated_key_unused is False
    issued = await issue_token()
    answer = await register(http, issued.token, reference_body(existing.name))
    message = await assert_refused(http, existing, issued, answer, key=rotated)
    assert "live" in message


async def test_name_bound_token_reregisters_a_live_satellite(
    http: aiohttp.ClientSession, issue_token: TokenFactory, make_satellite: SatelliteFactory
) -> None:
    existing = await make_satellite(name="bound-live-sat-1")
    assert await heartbeat(http, existing.id, existing.api_key) == 200  # live
    issued = await issue_token(satellite_name=existing.name)
    answer = await register(http, issued.token, reference_body(existing.name))
    await assert_reregistered(http, existing, issued, answer, rule="name_bound",
                              old_keys=(existing.api_key,))


async def test_unbound_token_of_another_scope_is_409_even_for_an_offline_satellite(
    http: aiohttp.ClientSession,
    issue_token: TokenFactory,
    make_team: TeamFactory,
    make_satellite: SatelliteFactory,
) -> None:
    team_a, team_b = await make_team(), await make_team()
    team_sat = await make_satellite(
        name="team-b-sat-0001", satellite_type=SatelliteType.TEAM, team_id=team_b.id
    )  # never sent a heartbeat: offline
    global_sat = await make_satellite(name="global-sat-0002")
    cases = [
        (team_sat, await issue_token(), "it is a team satellite"),
        (team_sat, await issue_token(scope=TokenScope.TEAM, team_id=team_a.id),
         "it belongs to another team"),
        (global_sat, await issue_token(scope=TokenScope.TEAM, team_id=team_a.id),
         "it is a global satellite"),
    ]
    for existing, issued, why in cases:
        answer = await register(http, issued.token, reference_body(existing.name))
        message = await assert_refused(http, existing, issued, answer, key=None)  # stay offline
        assert why in message, message
    row = await Satellite.get(id=team_sat.id)
    assert (row.satellite_type, row.team_id) == (SatelliteType.TEAM, team_b.id)  # type: ignore[attr-defined]
    own = await issue_token(scope=TokenScope.TEAM, team_id=team_b.id)
    answer = await register(http, own.token, reference_body(team_sat.name))
    await assert_reregistered(http, team_sat, own, answer, rule="offline",
                              old_keys=(team_sat.api_key,))
    assert answer[1]["satellite"]["team_id"] == team_b.id


async def test_disabled_satellite_with_an_unbound_token_is_403_and_token_is_kept(
    http: aiohttp.ClientSession,
    rt: Runtime,
    issue_token: TokenFactory,
    make_satellite: SatelliteFactory,
) -> None:
    existing = await make_satellite(name="disabled-sat-2")  # offline: no heartbeat ever
    await set_satellite_status(rt, existing.id, SatelliteStatus.DISABLED, actor=CLI_ACTOR)
    issued = await issue_token()
    answer = await register(http, issued.token, reference_body(existing.name))
    await assert_refused(http, existing, issued, answer, key=None,
                         error=(403, "satellite_disabled"))
    assert await heartbeat(http, existing.id, existing.api_key) == 401
    assert (await Satellite.get(id=existing.id)).status is SatelliteStatus.DISABLED


# ---- body: validated after the token ---------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"name": "short"},
        {"name": "x" * 33},
        {"name": "Upper-Case-Name"},
        {"name": "has spaces in it"},
        {"name": "trailing-newline\n"},
        {"name": 1234567890123},
        {},
        {"name": "valid-name-01", "capabilities": "stdio"},
        {"name": "valid-name-01", "capabilities": ["x"] * 100},
        {"name": "valid-name-01", "satellite_url": "http://" + "a" * 3000},
        {"name": "valid-name-01", "system_info": "linux"},
        {"name": "valid-name-01", "system_info": {"blob": "a" * 20_000}},
        ["name", "valid-name-01"],
        "valid-name-01",
        None,
    ],
)
async def test_invalid_body_is_400_validation_with_details_and_keeps_the_token(
    http: aiohttp.ClientSession, issue_token: TokenFactory, body: Any
) -> None:
    issued = await issue_token()
    status, answer = await register(http, issued.token, body)
    assert status == 400
    assert "validation" in answer["error"]
    assert answer["message"]
    if isinstance(body, dict):
        assert answer["details"]
    assert (await RegistrationToken.get(jti=issued.row.jti)).used_at is None


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b"[" * 100_000])
async def test_unparseable_body_is_400_validation(
    http: aiohttp.ClientSession, issue_token: TokenFactory, raw: bytes
) -> None:
    issued = await issue_token()
    headers = {**REFERENCE_HEADERS, "Authorization": f"Bearer {issued.token}"}
    async with http.post(REGISTER, data=raw, headers=headers) as response:
        assert response.status == 400
        assert "validation" in (await response.json())["error"]


async def test_bad_token_answers_401_before_the_body_is_validated(
    http: aiohttp.ClientSession,
) -> None:
    status, body = await register(http, "deploystack_satellite_global_nope", {"name": "x"})
    assert error_of(status, body) == (401, "invalid_registration_token")
    async with http.post(
        REGISTER, data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "registration_token_required"


async def test_body_over_the_limit_is_413_body_too_large(
    http: aiohttp.ClientSession, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    body = reference_body("large-satellite", padding="a" * (1024 * 1024 + 10))
    status, answer = await register(http, issued.token, body)
    assert status == 413
    assert answer["error"] == "validation_failed: body too large"
    assert (await RegistrationToken.get(jti=issued.row.jti)).used_at is None


# ---- failures are counted, audited, and never leak the token ------------------------


async def test_repeated_failed_registrations_are_rate_limited(tmp_path: Path) -> None:
    from app.services.satellites.tokens import issue_registration_token

    async with running(make_settings(tmp_path, auth_failure_limit=3)) as (rt, http):
        good = await issue_registration_token(
            rt,
            scope=TokenScope.GLOBAL,
            team_id=None,
            hours=None,
            satellite_name=None,
            actor=CLI_ACTOR,
        )
        for _ in range(4):
            status, body = await register(
                http, "deploystack_satellite_global_bad", reference_body("limited-sat-01")
            )
            assert status == 401
        headers = {**REFERENCE_HEADERS, "Authorization": f"Bearer {good.token}"}
        async with http.post(
            REGISTER, json=reference_body("limited-sat-01"), headers=headers
        ) as response:
            assert response.status == 429
            assert "rate limit" in (await response.json())["error"]
            assert int(response.headers["Retry-After"]) >= 1
        assert (await RegistrationToken.get(jti=good.row.jti)).used_at is None
        assert await AuditEntry.filter(action="security.auth_failure_burst").exists()


async def test_failed_registration_is_audited_without_the_token(
    http: aiohttp.ClientSession, rt: Runtime, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    await revoke_registration_token(rt, issued.row.jti, actor=CLI_ACTOR)
    await register(http, issued.token, reference_body("audited-sat-01"))
    entry = await AuditEntry.get(action="security.registration_failed")
    assert entry.details["reason"] == "invalid_registration_token"
    assert entry.details["address"] == "127.0.0.1"
    assert entry.address == "127.0.0.1"
    jwt_text = issued.token.split("_", 3)[3]
    for row in await AuditEntry.all():
        assert jwt_text not in str(row.details)


async def test_no_token_or_api_key_reaches_the_logs(
    http: aiohttp.ClientSession, issue_token: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    issued = await issue_token()
    _, body = await register(http, issued.token, reference_body("quiet-satellite"))
    api_key = body["satellite"]["api_key"]
    headers = {"Authorization": f"Bearer {api_key}"}
    async with http.get(
        f"/api/satellites/{body['satellite']['id']}/commands", headers=headers
    ) as response:
        assert response.status not in (401, 403)
    await register(http, issued.token, reference_body("quiet-satellite-2"))  # a failure too
    async with http.get(
        f"/api/satellites/{body['satellite']['id']}/commands",
        headers={"Authorization": f"Bearer {api_key[:-1]}x"},
    ):
        pass
    assert caplog.records  # the run did log something
    secrets = [issued.token, issued.token.split("_", 3)[3], api_key, api_key[-24:]]
    for record in caplog.records:
        text = record.getMessage() + " " + str(vars(record))
        for secret in secrets:
            assert secret not in text
