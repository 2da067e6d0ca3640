"""Users and teams: creation rules, lookups, audit."""

from __future__ import annotations

import pytest

from app.auth.passwords import PasswordCost, Passwords
from app.config import Settings
from app.errors import Conflict, NotFound, ValidationError
from app.models import AuditEntry, TeamMembership, User
from app.models.enums import GlobalRole, TeamRole
from app.runtime import Runtime, build_runtime
from app.services.common.actors import CLI_ACTOR
from app.services.people.sessions import login
from app.services.people.teams import create_team, get_team, get_team_by_slug
from app.services.people.users import create_user, get_user_by_email
from tests.fixtures.people import PASSWORD, TeamFactory, UserFactory


async def test_user_email_is_normalised_and_password_hashed(rt: Runtime) -> None:
    user = await create_user(
        rt,
        email="  Ada@Example.COM ",
        password="analytical engine",
        global_role=GlobalRole.GLOBAL_ADMIN,
        actor=CLI_ACTOR,
    )
    assert user.email == "ada@example.com"
    assert user.global_role is GlobalRole.GLOBAL_ADMIN
    assert user.password_hash.startswith("$argon2id$")
    assert "analytical engine" not in user.password_hash
    assert await rt.passwords.verify(user.password_hash, "analytical engine")
    assert not await rt.passwords.verify(user.password_hash, "analytical engine!")
    assert (await get_user_by_email("ADA@example.com")).id == user.id
    entry = await AuditEntry.get(action="user.created", object_id=user.id)
    assert "analytical engine" not in str(entry.details)


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("not-an-email", "long enough"),
        ("a@b", "long enough"),
        ("x@example.com", "short"),
        ("two words@example.com", "long enough"),
        ("x" * 250 + "@example.com", "long enough"),
    ],
)
async def test_invalid_user_input_is_a_validation_error(
    rt: Runtime, email: str, password: str
) -> None:
    with pytest.raises(ValidationError):
        await create_user(
            rt, email=email, password=password, global_role=GlobalRole.GLOBAL_USER, actor=CLI_ACTOR
        )


async def test_duplicate_email_in_any_case_is_email_taken(rt: Runtime) -> None:
    await create_user(
        rt,
        email="grace@example.com",
        password="compilers!",
        global_role=GlobalRole.GLOBAL_USER,
        actor=CLI_ACTOR,
    )
    with pytest.raises(Conflict) as caught:
        await create_user(
            rt,
            email="GRACE@example.com",
            password="compilers!",
            global_role=GlobalRole.GLOBAL_USER,
            actor=CLI_ACTOR,
        )
    assert caught.value.code == "email_taken"


async def test_unknown_email_is_not_found_and_dummy_verify_is_false(rt: Runtime) -> None:
    with pytest.raises(NotFound):
        await get_user_by_email("nobody@example.com")
    assert await rt.passwords.verify_unknown_user("anything") is False


def test_password_hashes_cost_rfc_9106_low_memory_unless_configured() -> None:
    # The default cost is argon2-cffi's (RFC 9106 low-memory profile); the test suite
    # configures a cheaper one, so this pins what a real deployment gets.
    default = build_runtime(Settings(database_url="sqlite://unused.db", secret_key="k" * 32))
    assert default.passwords.hash_prefix() == "$argon2id$v=19$m=65536,t=3,p=4$"
    cheap = Passwords(PasswordCost(time_cost=1, memory_kib=1024, parallelism=1))
    assert cheap.hash_prefix() == "$argon2id$v=19$m=1024,t=1,p=1$"


async def test_a_hash_of_another_cost_is_redone_at_the_next_login(
    rt: Runtime, make_user: UserFactory
) -> None:
    user = await make_user()
    older = Passwords(PasswordCost(time_cost=2, memory_kib=2048, parallelism=1))
    await User.filter(id=user.id).update(password_hash=await older.hash(PASSWORD))
    await login(rt, email=user.email, password=PASSWORD, address=None)
    stored = (await User.get(id=user.id)).password_hash
    assert stored.startswith(rt.passwords.hash_prefix())
    assert await rt.passwords.verify(stored, PASSWORD)


async def test_team_with_admin_makes_a_team_admin_membership(rt: Runtime) -> None:
    user = await create_user(
        rt,
        email="lead@example.com",
        password="team lead pass",
        global_role=GlobalRole.GLOBAL_USER,
        actor=CLI_ACTOR,
    )
    team = await create_team(
        rt, name="Platform", slug="platform", admin_email="Lead@Example.com", actor=CLI_ACTOR
    )
    membership = await TeamMembership.get(team_id=team.id, user_id=user.id)
    assert membership.role is TeamRole.TEAM_ADMIN
    assert (await get_team_by_slug("platform")).id == team.id
    assert (await get_team(team.id)).name == "Platform"
    entry = await AuditEntry.get(action="team.created", object_id=team.id)
    assert entry.details["admin_user_id"] == user.id


async def test_team_admin_must_exist_and_nothing_is_created_otherwise(rt: Runtime) -> None:
    with pytest.raises(NotFound):
        await create_team(
            rt, name="Ghost", slug="ghost-team", admin_email="ghost@example.com", actor=CLI_ACTOR
        )
    with pytest.raises(NotFound):
        await get_team_by_slug("ghost-team")


@pytest.mark.parametrize("slug", ["a", "-leading", "Upper", "has_underscore", "x" * 64, ""])
async def test_invalid_slug_is_a_validation_error(rt: Runtime, slug: str) -> None:
    with pytest.raises(ValidationError):
        await create_team(rt, name="Team", slug=slug, admin_email=None, actor=CLI_ACTOR)


async def test_duplicate_slug_is_slug_taken(rt: Runtime, make_team: TeamFactory) -> None:
    await make_team(slug="shared-slug")
    with pytest.raises(Conflict) as caught:
        await make_team(slug="shared-slug")
    assert caught.value.code == "slug_taken"


async def test_unknown_team_id_is_not_found(rt: Runtime) -> None:
    with pytest.raises(NotFound):
        await get_team("0" * 32)
