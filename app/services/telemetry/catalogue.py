"""The tool catalogue of an installation, as its satellite reports it
(docs/protocol.md §10): `mcp.tools.discovered` replaces it (backend form: tools
with description, input schema and token count; satellite form: tool names),
`mcp.tools.updated` adds and removes tools by name. Applied in event order."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.models import McpTool
from app.services.telemetry.model import Event, Installation
from app.services.telemetry.values import count, text
from app.wire.events import data_form


async def apply_catalogue(conn: BaseDBAsyncClient, event: Event) -> None:
    """The catalogue change of one new event (nothing without a known installation)."""
    installation = event.installation
    if installation is None:
        return
    data = event.data
    if event.type == "mcp.tools.updated":
        await _update_tools(conn, installation, data["added_tools"], data["removed_tools"],
                            event.occurred_at)
    elif data_form(event.type, data) == ("installation_id", "tools"):
        await _replace_tools(conn, installation, [
            item for item in data["tools"]
            if isinstance(item, dict) and isinstance(item.get("tool_name"), str)
        ], event.occurred_at)
    else:
        await _replace_tools(conn, installation, [
            {"tool_name": name} for name in data["tool_names"]
        ], event.occurred_at)


def _tool(installation: Installation, item: dict[str, Any], at: datetime) -> McpTool:
    token_count = item.get("token_count")
    return McpTool(
        installation_id=installation.id, team_id=installation.team_id,
        tool_name=item["tool_name"][:255], description=text(item.get("description"), None),
        input_schema=item.get("input_schema"),
        token_count=None if token_count is None else count(token_count), discovered_at=at,
    )


async def _replace_tools(conn: BaseDBAsyncClient, installation: Installation,
                         items: list[dict[str, Any]], at: datetime) -> None:
    await McpTool.filter(installation_id=installation.id).using_db(conn).delete()
    rows = [_tool(installation, item, at) for item in _unique(items)]
    if rows:
        await McpTool.bulk_create(rows, batch_size=500, using_db=conn)


async def _update_tools(conn: BaseDBAsyncClient, installation: Installation,
                        added: list[str], removed: list[str], at: datetime) -> None:
    tools = McpTool.filter(installation_id=installation.id).using_db(conn)
    if removed:
        await tools.filter(tool_name__in=[name[:255] for name in removed]).delete()
    if not added:
        return
    present = set(await tools.filter(tool_name__in=[name[:255] for name in added]).values_list(
        "tool_name", flat=True))
    rows = [_tool(installation, item, at) for item in _unique({"tool_name": name}
                                                                for name in added)
            if item["tool_name"][:255] not in present]
    if rows:
        await McpTool.bulk_create(rows, batch_size=500, using_db=conn)


def _unique(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first item of each tool name (a catalogue lists a name once)."""
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        seen.setdefault(item["tool_name"][:255], item)
    return list(seen.values())


__all__ = ["apply_catalogue"]
