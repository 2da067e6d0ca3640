"""Registration tokens in the service layer: issue, list, revoke, verify, consume."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import jwt
import pytest

from app.errors import AppError, Conflict, NotFound, Unauthenticated, ValidationError
from app.models import AuditEntry, RegistrationToken
from app.models.enums import ActorType, GlobalRole, TokenScope
from app.runtime import Runtime
from app.services.common.actors import CLI_ACTOR, Actor
from app.services.common.clock import utcnow
from app.services.people.users import create_user
from app.services.satellites.tokens import (
    consume_registration_token,
    issue_registration_token,
    issue_registration_tokens,
    list_registration_tokens,
    release_registration_token,
    revoke_registration_token,
    verify_registration_token,
)
from tests.fixtures.people import TeamFactory, TokenFactory


def payload_of(token: str) -> dict[str, object]:
    return jwt.decode(token.split("_", 3)[3], options={"verify_signature": False})


async def test_global_token_defaults_to_one_hour_and_stores_only_a_digest(
    rt: Runtime, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    assert issued.token.startswith("deploystack_satellite_global_")
    row = await RegistrationToken.get(jti=issued.row.jti)
    assert row.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert issued.token not in str(vars(row))
    claims = payload_of(issued.token)
    assert claims["exp"] - claims["iat"] == 3600  # type: ignore[operator]
    assert claims["iss"] == rt.settings.issuer
    assert claims["aud"] == "satellite-registration"
    assert claims["jti"] == row.jti
    assert claims["created_by"] is None
    assert abs((row.expires_at - utcnow()) - timedelta(hours=1)) < timedelta(seconds=5)


async def test_team_token_defaults_to_24_hours_and_carries_the_team(
    issue_token: TokenFactory, make_team: TeamFactory
) -> None:
    team = await make_team()
    issued = await issue_token(scope=TokenScope.TEAM, team_id=team.id)
    claims = payload_of(issued.token)
    assert issued.token.startswith("deploystack_satellite_team_")
    assert claims["exp"] - claims["iat"] == 24 * 3600  # type: ignore[operator]
    assert claims["team_id"] == team.id
    assert claims["scope"] == "team"
    assert issued.row.team_id == team.id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("scope", "hours", "allowed"),
    [
        (TokenScope.GLOBAL, 1, True),
        (TokenScope.GLOBAL, 24, True),
        (TokenScope.GLOBAL, 0, False),
        (TokenScope.GLOBAL, 25, False),
        (TokenScope.TEAM, 1, True),
        (TokenScope.TEAM, 72, True),
        (TokenScope.TEAM, 0, False),
        (TokenScope.TEAM, 73, False),
        (TokenScope.TEAM, -5, False),
    ],
)
async def test_lifetime_bounds(
    issue_token: TokenFactory,
    make_team: TeamFactory,
    scope: TokenScope,
    hours: int,
    allowed: bool,
) -> None:
    team_id = (await make_team()).id if scope is TokenScope.TEAM else None
    if allowed:
        issued = await issue_token(scope=scope, team_id=team_id, hours=hours)
        claims = payload_of(issued.token)
        assert claims["exp"] - claims["iat"] == hours * 3600  # type: ignore[operator]
    else:
        with pytest.raises(ValidationError):
            await issue_token(scope=scope, team_id=team_id, hours=hours)


async def test_team_token_needs_an_existing_team(issue_token: TokenFactory) -> None:
    with pytest.raises(ValidationError):
        await issue_token(scope=TokenScope.TEAM, team_id=None)
    with pytest.raises(NotFound):
        await issue_token(scope=TokenScope.TEAM, team_id="f" * 32)


async def test_global_token_cannot_carry_a_team(
    issue_token: TokenFactory, make_team: TeamFactory
) -> None:
    team = await make_team()
    with pytest.raises(ValidationError):
        await issue_token(scope=TokenScope.GLOBAL, team_id=team.id)


async def test_bound_name_must_be_a_valid_satellite_name(issue_token: TokenFactory) -> None:
    with pytest.raises(ValidationError):
        await issue_token(satellite_name="Not Valid")
    issued = await issue_token(satellite_name="valid-name-1")
    assert payload_of(issued.token)["satellite_name"] == "valid-name-1"
    assert issued.row.satellite_name == "valid-name-1"


async def test_token_issued_by_a_user_names_its_creator(rt: Runtime) -> None:
    user = await create_user(
        rt,
        email="admin@example.com",
        password="correct horse",
        global_role=GlobalRole.GLOBAL_ADMIN,
        actor=CLI_ACTOR,
    )
    issued = await issue_registration_token(
        rt,
        scope=TokenScope.GLOBAL,
        team_id=None,
        hours=None,
        satellite_name=None,
        actor=Actor(ActorType.USER, user_id=user.id),
    )
    assert payload_of(issued.token)["created_by"] == user.id
    assert issued.row.created_by_id == user.id  # type: ignore[attr-defined]


async def test_issuing_is_audited_without_the_token(issue_token: TokenFactory) -> None:
    issued = await issue_token(hours=2)
    entry = await AuditEntry.get(action="registration_token.issued", object_id=issued.row.jti)
    assert entry.details["scope"] == "global"
    assert entry.details["hours"] == 2
    assert issued.token.split("_", 3)[3] not in str(entry.details)


async def test_list_is_newest_first_and_filters(
    issue_token: TokenFactory, make_team: TeamFactory
) -> None:
    team = await make_team()
    first = await issue_token()
    second = await issue_token(scope=TokenScope.TEAM, team_id=team.id)
    third = await issue_token()
    listed = [row.jti for row in await list_registration_tokens()]
    assert listed == [third.row.jti, second.row.jti, first.row.jti]
    assert [row.jti for row in await list_registration_tokens(team_id=team.id)] == [second.row.jti]
    assert [row.jti for row in await list_registration_tokens(scope=TokenScope.GLOBAL)] == [
        third.row.jti,
        first.row.jti,
    ]


async def test_revoke_unknown_is_not_found(rt: Runtime) -> None:
    with pytest.raises(NotFound):
        await revoke_registration_token(rt, "0" * 32, actor=CLI_ACTOR)


async def test_revoke_is_idempotent_and_audited_once(
    rt: Runtime, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    first = await revoke_registration_token(rt, issued.row.jti, actor=CLI_ACTOR)
    second = await revoke_registration_token(rt, issued.row.jti, actor=CLI_ACTOR)
    assert first.revoked_at is not None
    assert second.revoked_at == first.revoked_at
    assert await AuditEntry.filter(action="registration_token.revoked").count() == 1


async def test_revoking_a_used_token_is_a_conflict(rt: Runtime, issue_token: TokenFactory) -> None:
    issued = await issue_token()
    verified = await verify_registration_token(rt, f"Bearer {issued.token}")
    await consume_registration_token(verified, satellite_id="s" * 32, now=utcnow())
    with pytest.raises(Conflict) as caught:
        await revoke_registration_token(rt, issued.row.jti, actor=CLI_ACTOR)
    assert caught.value.code == "token_already_used"


async def test_verify_returns_the_tokens_scope_team_and_binding(
    rt: Runtime, issue_token: TokenFactory, make_team: TeamFactory
) -> None:
    team = await make_team()
    issued = await issue_token(
        scope=TokenScope.TEAM, team_id=team.id, satellite_name="bound-name-01"
    )
    verified = await verify_registration_token(rt, f"Bearer {issued.token}")
    assert verified.jti == issued.row.jti
    assert verified.scope is TokenScope.TEAM
    assert verified.team_id == team.id
    assert verified.satellite_name == "bound-name-01"


async def test_bearer_scheme_is_case_insensitive(rt: Runtime, issue_token: TokenFactory) -> None:
    issued = await issue_token()
    verified = await verify_registration_token(rt, f"bearer {issued.token}")
    assert verified.jti == issued.row.jti


async def test_token_issued_under_another_issuer_is_invalid(
    rt: Runtime, issue_token: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    issued = await issue_token()
    monkeypatch.setattr(rt, "settings", replace(rt.settings, issuer="other-deployment"))
    with pytest.raises(Unauthenticated) as caught:
        await verify_registration_token(rt, f"Bearer {issued.token}")
    assert caught.value.code == "invalid_registration_token"


async def test_concurrent_consumers_of_one_token_have_one_winner(
    rt: Runtime, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    verified = await verify_registration_token(rt, f"Bearer {issued.token}")
    outcomes = await asyncio.gather(
        *(consume_registration_token(verified, satellite_id=f"{n:032d}", now=utcnow())
          for n in range(5)),
        return_exceptions=True,
    )
    winners = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, AppError)]
    assert len(winners) == 1
    assert len(losers) == 4
    assert {loser.code for loser in losers} == {"token_already_used"}


async def test_consume_answers_why_it_lost(rt: Runtime, issue_token: TokenFactory) -> None:
    revoked, expired = await issue_token(), await issue_token()
    revoked_verified = await verify_registration_token(rt, f"Bearer {revoked.token}")
    expired_verified = await verify_registration_token(rt, f"Bearer {expired.token}")
    await revoke_registration_token(rt, revoked.row.jti, actor=CLI_ACTOR)
    await RegistrationToken.filter(jti=expired.row.jti).update(
        expires_at=utcnow() - timedelta(seconds=1)
    )
    with pytest.raises(Unauthenticated) as caught:
        await consume_registration_token(revoked_verified, satellite_id="a" * 32, now=utcnow())
    assert caught.value.code == "invalid_registration_token"
    with pytest.raises(Unauthenticated) as caught:
        await consume_registration_token(expired_verified, satellite_id="a" * 32, now=utcnow())
    assert caught.value.code == "token_expired"


async def test_release_gives_the_token_back_only_for_that_use(
    rt: Runtime, issue_token: TokenFactory
) -> None:
    issued = await issue_token()
    verified = await verify_registration_token(rt, f"Bearer {issued.token}")
    await consume_registration_token(verified, satellite_id="a" * 32, now=utcnow())
    assert not await release_registration_token(issued.row.jti, satellite_id="b" * 32)
    assert await release_registration_token(issued.row.jti, satellite_id="a" * 32)
    again = await verify_registration_token(rt, f"Bearer {issued.token}")
    assert again.jti == issued.row.jti


async def test_tokens_issued_in_bulk_are_distinct_single_use_and_audited_once(
    rt: Runtime, make_team: TeamFactory
) -> None:
    team = await make_team()
    issued = await issue_registration_tokens(
        rt, count=25, scope=TokenScope.TEAM, team_id=team.id, hours=2, actor=CLI_ACTOR)
    assert len({token.token for token in issued}) == 25
    rows = await RegistrationToken.filter(team_id=team.id)
    assert sorted(row.jti for row in rows) == sorted(token.row.jti for token in issued)
    assert all(row.satellite_name is None and row.used_at is None for row in rows)
    for token in issued[:3]:  # each is a valid team token of its own
        verified = await verify_registration_token(rt, f"Bearer {token.token}")
        assert (verified.jti, verified.team_id) == (token.row.jti, team.id)
    [entry] = await AuditEntry.filter(action="registration_tokens.issued")
    assert entry.team_id == team.id
    assert entry.details["count"] == 25
    assert entry.details["hours"] == 2
    assert not any(token.token in str(entry.details) for token in issued)
    assert not await AuditEntry.filter(action="registration_token.issued").exists()


@pytest.mark.parametrize("count", [0, -1, 10_001])
async def test_a_bulk_count_outside_its_bounds_issues_nothing(rt: Runtime, count: int) -> None:
    with pytest.raises(ValidationError, match="count is 1 to 10,000"):
        await issue_registration_tokens(rt, count=count, scope=TokenScope.GLOBAL, team_id=None,
                                        hours=None, actor=CLI_ACTOR)
    assert not await RegistrationToken.exists()


async def test_bulk_tokens_follow_the_single_token_rules(rt: Runtime) -> None:
    with pytest.raises(ValidationError, match="global tokens live 1 to 24 hours"):
        await issue_registration_tokens(rt, count=2, scope=TokenScope.GLOBAL, team_id=None,
                                        hours=25, actor=CLI_ACTOR)
    with pytest.raises(NotFound):
        await issue_registration_tokens(rt, count=2, scope=TokenScope.TEAM,
                                        team_id="no-such-team", hours=None, actor=CLI_ACTOR)
    assert not await RegistrationToken.exists()
