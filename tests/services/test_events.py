"""Event ingestion service: fallback writes, concurrency, publishing, bounds, redaction."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise import connections

from app.bus import Channels
from app.config import Settings
from app.metrics import UNKNOWN_EVENT_TYPE_LABELS
from app.models import (
    McpInstallation,
    McpServer,
    McpServerLog,
    McpTool,
    SatelliteEvent,
    SatelliteUsageLog,
    Team,
)
from app.models.enums import TransportType
from app.runtime import Runtime
from app.services.common.storage import GroupCommit
from app.services.fleet.state import SatelliteState
from app.services.telemetry.effects import MAX_SERVER_LOGS_PER_INSTALLATION
from app.services.telemetry.ingest import ingest_events
from app.services.telemetry.redaction import redact
from tests.fixtures.people import TeamFactory
from tests.fixtures.satellites import SatelliteFactory
from tests.fixtures.server import listening

TS = "2026-01-02T03:04:05Z"
Json = dict[str, Any]


@pytest.fixture
async def team(make_team: TeamFactory) -> Team:
    return await make_team()


@pytest.fixture
async def installation(team: Team) -> McpInstallation:
    server = await McpServer.create(slug=f"srv-{team.slug}", name="Srv",
                                    transport_type=TransportType.STDIO, command="npx")
    return await McpInstallation.create(team=team, server=server, name="srv")


@pytest.fixture
async def satellite(rt: Runtime, make_satellite: SatelliteFactory) -> SatelliteState:
    created = await make_satellite()
    state = rt.fleet.get(created.id)
    assert state is not None
    return state


def executed(installation: McpInstallation, client_id: str | None = None) -> Json:
    body: Json = {"type": "mcp.tool.executed", "timestamp": TS,
                  "data": {"tool_name": "t", "server_id": installation.id, "team_id": None,
                           "duration_ms": 1, "success": True}}
    if client_id:
        body["id"] = client_id
    return body


def discovered(installation: McpInstallation, tool_name: str) -> Json:
    return {"type": "mcp.tools.discovered", "timestamp": TS,
            "data": {"installation_id": installation.id, "team_id": None, "server_slug": "srv",
                     "tool_count": 1, "tools": [{"tool_name": tool_name}]}}


async def poison_tool_named_bad(settings: Settings) -> None:
    """A real database refusal (a trigger), not a mock: inserting a tool named 'bad' fails."""
    if settings.is_sqlite:
        assert settings.sqlite_path is not None
        other = sqlite3.connect(settings.sqlite_path)
        other.execute("CREATE TRIGGER poison BEFORE INSERT ON mcp_tools "
                      "WHEN NEW.tool_name = 'bad' BEGIN SELECT RAISE(ABORT, 'poisoned'); END")
        other.commit()
        other.close()
        return
    await connections.get("default").execute_script(
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.tool_name = 'bad' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$; "
        "CREATE TRIGGER poison BEFORE INSERT ON mcp_tools FOR EACH ROW EXECUTE FUNCTION poison();"
    )


async def test_a_failing_write_fails_only_its_own_event(
    rt: Runtime, settings: Settings, satellite: SatelliteState, installation: McpInstallation,
) -> None:
    # A real database refusal (a trigger), not a mock: the bulk write fails as a whole.
    await poison_tool_named_bad(settings)
    result = await ingest_events(rt, satellite, [
        executed(installation), discovered(installation, "bad"), executed(installation),
    ])
    assert result.processed == 2
    assert [(failure.index, failure.error) for failure in result.failures] == [
        (1, "Event could not be stored")]
    assert await SatelliteUsageLog.filter(satellite_id=satellite.id).count() == 2
    assert await McpTool.all().count() == 0
    assert int(result.event_ids[0]) < int(result.event_ids[1])


async def test_concurrent_batches_written_together_keep_their_own_ids_and_effects(
    rt: Runtime, make_satellite: SatelliteFactory, installation: McpInstallation,
) -> None:
    states = []
    for _ in range(3):
        created = await make_satellite()
        state = rt.fleet.get(created.id)
        assert state is not None
        states.append(state)
    results = await asyncio.gather(*(
        ingest_events(rt, state, [executed(installation, "same-id"), executed(installation)])
        for state in states
    ))
    ids = [event_id for result in results for event_id in result.event_ids]
    assert all(result.processed == 2 and not result.failures for result in results)
    assert len(set(ids)) == 6  # the same client id on different satellites: different events
    for state, result in zip(states, results, strict=True):
        rows = await SatelliteEvent.filter(satellite_id=state.id).order_by("id")
        assert [str(row.id) for row in rows] == result.event_ids
        assert await SatelliteUsageLog.filter(satellite_id=state.id).count() == 2


async def test_a_failing_batch_never_fails_a_concurrent_batch(
    rt: Runtime, settings: Settings, make_satellite: SatelliteFactory,
    installation: McpInstallation,
) -> None:
    await poison_tool_named_bad(settings)
    good, bad = [rt.fleet.get((await make_satellite()).id) for _ in range(2)]
    assert good is not None
    assert bad is not None
    good_result, bad_result = await asyncio.gather(
        ingest_events(rt, good, [executed(installation), executed(installation)]),
        ingest_events(rt, bad, [executed(installation), discovered(installation, "bad")]),
    )
    assert (good_result.processed, good_result.failures) == (2, [])
    assert bad_result.processed == 1
    assert [failure.index for failure in bad_result.failures] == [1]
    assert await SatelliteUsageLog.filter(satellite_id=good.id).count() == 2
    assert await SatelliteUsageLog.filter(satellite_id=bad.id).count() == 1


async def test_group_commit_writes_queued_work_together_and_retries_a_failed_group_alone(
) -> None:
    groups: list[list[str]] = []
    gate = asyncio.Event()

    async def write(items: list[str]) -> None:
        groups.append(list(items))
        if items == ["first"]:
            await gate.wait()  # holds the lock while the others queue
        if "bad" in items:
            raise ValueError("refused")

    commit = GroupCommit(write, (ValueError,))
    first = asyncio.create_task(commit.write("first"))
    await asyncio.sleep(0)
    others = [asyncio.create_task(commit.write(item)) for item in ("a", "bad", "b")]
    await asyncio.sleep(0)
    gate.set()
    await first
    outcomes = await asyncio.gather(*others, return_exceptions=True)
    assert groups == [["first"], ["a", "bad", "b"], ["a"], ["bad"], ["b"]]
    assert outcomes[0] is None
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] is None


async def test_timestamps_with_an_offset_are_stored_and_published_in_utc(
    rt: Runtime, satellite: SatelliteState, installation: McpInstallation,
) -> None:
    event = {**executed(installation), "timestamp": "2026-01-02T05:04:05.5+02:00"}
    async with listening(rt, Channels.SATELLITE_EVENTS) as received:
        result = await ingest_events(rt, satellite, [event])
        message = await asyncio.wait_for(received.get(), 1)
    assert result.processed == 1
    assert message["timestamp"] == "2026-01-02T03:04:05.500000Z"
    row = await SatelliteEvent.get(id=int(result.event_ids[0]))
    assert row.occurred_at == datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)


async def test_concurrent_replays_apply_effects_once(
    rt: Runtime, satellite: SatelliteState, installation: McpInstallation,
) -> None:
    batch = [executed(installation, f"id-{number}") for number in range(20)]
    first, second = await asyncio.gather(ingest_events(rt, satellite, batch),
                                         ingest_events(rt, satellite, batch))
    assert first.event_ids == second.event_ids
    assert first.processed == second.processed == 20
    assert await SatelliteUsageLog.filter(satellite_id=satellite.id).count() == 20


async def test_the_same_client_id_twice_in_a_batch_is_one_event(
    rt: Runtime, satellite: SatelliteState, installation: McpInstallation,
) -> None:
    result = await ingest_events(rt, satellite, [executed(installation, "x"),
                                                 executed(installation, "x")])
    assert result.processed == 2
    assert result.event_ids[0] == result.event_ids[1]
    assert await SatelliteUsageLog.filter(satellite_id=satellite.id).count() == 1


async def test_new_events_are_published_and_replays_are_not(
    rt: Runtime, satellite: SatelliteState, installation: McpInstallation, team: Team,
) -> None:
    async with listening(rt, Channels.SATELLITE_EVENTS) as received:
        result = await ingest_events(rt, satellite, [executed(installation, "a")])
        await ingest_events(rt, satellite, [executed(installation, "a")])
        message = await asyncio.wait_for(received.get(), 15)
        sentinel = {"id": "sentinel"}
        await rt.bus.publish(Channels.SATELLITE_EVENTS, sentinel)
        assert await asyncio.wait_for(received.get(), 15) == sentinel  # the replay was not
    assert message["id"] == result.event_ids[0]
    assert (message["satellite_id"], message["team_id"]) == (satellite.id, team.id)
    assert (message["type"], message["timestamp"]) == ("mcp.tool.executed", TS)
    assert message["data"]["tool_name"] == "t"
    accepted = rt.metrics.registry.get_sample_value(
        "groundstation_events_total", {"outcome": "accepted"})
    assert accepted == 1


async def test_server_logs_keep_the_newest_lines_per_installation(
    rt: Runtime, satellite: SatelliteState, installation: McpInstallation,
) -> None:
    total = MAX_SERVER_LOGS_PER_INSTALLATION + 5
    logs = [{"level": "info", "message": f"line {number}", "timestamp": TS}
            for number in range(total)]
    result = await ingest_events(rt, satellite, [{
        "type": "mcp.server.logs", "timestamp": TS,
        "data": {"installation_id": installation.id, "team_id": None, "logs": logs},
    }])
    assert result.processed == 1
    rows = await McpServerLog.filter(installation_id=installation.id).order_by("id")
    assert len(rows) == MAX_SERVER_LOGS_PER_INSTALLATION
    assert (rows[0].message, rows[-1].message) == ("line 5", f"line {total - 1}")


async def test_unknown_types_are_kept_and_logged_once_per_type(
    rt: Runtime, satellite: SatelliteState, caplog: pytest.LogCaptureFixture,
) -> None:
    def unknown(event_type: str) -> Json:
        return {"type": event_type, "timestamp": TS, "data": {}}

    with caplog.at_level(logging.WARNING, logger="app.services.telemetry.ingest"):
        first = await ingest_events(rt, satellite, [unknown("mcp.mystery"),
                                                    unknown("mcp.mystery"),
                                                    unknown("mcp.other_mystery")])
        again = await ingest_events(rt, satellite, [unknown("mcp.mystery"),
                                                    unknown("no-dots")])
    assert (first.processed, first.failures) == (3, [])
    assert again.processed == 1
    assert [failure.error.split(" (")[0] for failure in again.failures] == [
        "Invalid event type: no-dots"]
    logged = [record.type for record in caplog.records  # type: ignore[attr-defined]
              if record.message == "unknown event type"]
    assert logged == ["mcp.mystery", "mcp.other_mystery"]


async def test_unknown_type_labels_are_bounded(rt: Runtime, satellite: SatelliteState) -> None:
    types = [f"mcp.mystery.type{number}" for number in range(UNKNOWN_EVENT_TYPE_LABELS + 3)]
    result = await ingest_events(rt, satellite, [
        {"type": event_type, "timestamp": TS, "data": {}} for event_type in types])
    assert result.processed == len(types)
    sample = rt.metrics.registry.get_sample_value
    assert sample("groundstation_unknown_events_total", {"type": types[0]}) == 1
    assert sample("groundstation_unknown_events_total", {"type": types[-1]}) is None
    assert sample("groundstation_unknown_events_total", {"type": "other"}) == 3


def test_redaction_covers_secret_words_schema_names_and_nesting() -> None:
    params = {"query": "q", "X-Api-Key": "1", "accessToken": "2", "PASSWORD": "3",
              "client_secret": "4", "MY_PAT": "5", "list": [{"authorization": "6"}]}
    assert redact(params, frozenset({"mypat"})) == {
        "query": "q", "X-Api-Key": "[REDACTED]", "accessToken": "[REDACTED]",
        "PASSWORD": "[REDACTED]", "client_secret": "[REDACTED]", "MY_PAT": "[REDACTED]",
        "list": [{"authorization": "[REDACTED]"}],
    }
    assert redact("plain") == "plain"
