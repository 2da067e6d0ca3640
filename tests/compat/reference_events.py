"""The events the reference satellite builds, one per type of its event registry.

Shapes follow its `EventDataMap` (docs/protocol.md §10 lists the same keys):
`server_id` is the installation id and `server_slug` the installation name, as
its process manager sets them; pids are numbers; timestamps are
`Date.toISOString()` strings. The reference client sends no event `id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Json = dict[str, Any]

# Every type of the reference satellite's event registry, in its order.
REGISTRY_TYPES = (
    "mcp.client.connected", "mcp.client.disconnected", "mcp.client.activity",
    "mcp.tool.executed", "mcp.server.started", "mcp.server.crashed", "mcp.server.restarted",
    "mcp.server.stopped", "mcp.server.permanently_failed", "mcp.server.dormant",
    "mcp.server.respawned", "mcp.tools.discovered", "mcp.tools.updated", "config.refreshed",
    "config.error", "security.auth.failed", "resource.limit.exceeded",
)

START = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
SESSION_ID = "5c0e7f2a-9b1d-4c3e-8f6a-2d4b7e9c1a03"
OAUTH_CLIENT_ID = "dcr_8f3b2a61c4d94e7f"
USER_AGENT = "Visual Studio Code/1.96.2 (MCP client)"
CLIENT_IP = "203.0.113.24"
CONFIG_HASH = "3b9c8f2e61a4d7c05e8b1f9a2c6d4e7f80b3a5c9d1e2f4a6b8c0d2e4f6a8b0c2"
PID_STARTED, PID_RESTARTED, PID_RESPAWNED = 48211, 48388, 48502
TOOLS = ("resolve-library-id", "get-library-docs")
TOOL_ADDED = "search-docs"


def iso(moment: datetime) -> str:
    """As JavaScript's `Date.toISOString()` writes it."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Fleet:
    """What the events name: the team, its installation (the server), a member."""

    team_id: str | None
    installation_id: str
    server_slug: str
    user_id: str


def registry_event(event_type: str, fleet: Fleet, step: int = 0) -> Json:
    """The event of `event_type` as the reference satellite builds it (`step` seconds
    after `START`)."""
    at = START + timedelta(seconds=step)
    server = {"server_id": fleet.installation_id, "server_slug": fleet.server_slug,
              "team_id": fleet.team_id}
    samples: dict[str, Json] = {
        "mcp.client.connected": {
            "session_id": SESSION_ID, "client_type": "vscode", "user_agent": USER_AGENT,
            "team_id": fleet.team_id, "transport": "http", "ip_address": CLIENT_IP},
        "mcp.client.disconnected": {
            "session_id": SESSION_ID, "team_id": fleet.team_id,
            "connection_duration_seconds": 1842, "tool_execution_count": 17,
            "disconnect_reason": "client_close"},
        "mcp.client.activity": {
            "user_id": fleet.user_id, "team_id": fleet.team_id,
            "oauth_client_id": OAUTH_CLIENT_ID, "client_name": "VS Code",
            "user_agent": USER_AGENT, "ip_address": CLIENT_IP, "session_id": SESSION_ID,
            "request_count": 41, "tool_call_count": 17, "last_activity_at": iso(at)},
        "mcp.tool.executed": {
            "tool_name": TOOLS[0], "server_id": fleet.installation_id,
            "team_id": fleet.team_id, "duration_ms": 234, "success": True},
        "mcp.server.started": {
            **server, "user_id": fleet.user_id, "process_id": PID_STARTED, "transport": "stdio",
            "tool_count": 0, "spawn_duration_ms": 812},
        "mcp.server.crashed": {
            **server, "process_id": PID_STARTED, "exit_code": 1, "signal": None,
            "uptime_seconds": 93, "crash_count": 1, "will_restart": True},
        "mcp.server.restarted": {
            **server, "old_process_id": PID_STARTED, "new_process_id": PID_RESTARTED,
            "restart_reason": "crash", "attempt_number": 1},
        "mcp.server.stopped": {
            "server_id": fleet.installation_id, "server_name": fleet.server_slug,
            "team_id": fleet.team_id, "reason": "idle_timeout"},
        "mcp.server.permanently_failed": {
            **server, "total_crashes": 3,
            "last_error": "Error: Cannot find module '@upstash/context7-mcp'",
            "failed_at": iso(at)},
        "mcp.server.dormant": {
            **server, "process_id": PID_RESTARTED, "idle_duration_seconds": 900,
            "last_activity_at": iso(at - timedelta(seconds=900))},
        "mcp.server.respawned": {
            **server, "process_id": PID_RESPAWNED, "dormant_duration_seconds": 312,
            "respawn_duration_ms": 640},
        "mcp.tools.discovered": {
            **server, "tool_count": len(TOOLS), "tool_names": list(TOOLS),
            "discovery_duration_ms": 1450, "previous_tool_count": 0},
        "mcp.tools.updated": {
            **server, "added_tools": [TOOL_ADDED], "removed_tools": [TOOLS[1]],
            "total_tools": 2},
        "config.refreshed": {
            "config_hash": CONFIG_HASH, "server_count": 3, "teams_count": 2,
            "change_detected": True, "fetch_duration_ms": 87},
        "config.error": {
            "error_type": "network", "error_message": "connect ECONNREFUSED 10.0.4.7:3000",
            "status_code": None, "retry_in": 30},
        "security.auth.failed": {
            "team_id": fleet.team_id, "client_id": OAUTH_CLIENT_ID, "reason": "invalid_token",
            "ip_address": CLIENT_IP},
        "resource.limit.exceeded": {
            "team_id": fleet.team_id, "resource_type": "memory", "current_value": 612.5,
            "limit_value": 512},
    }
    return {"type": event_type, "timestamp": iso(at), "data": samples[event_type]}


def registry_batch(fleet: Fleet) -> list[Json]:
    """One event of every registry type, in registry order, a second apart."""
    return [registry_event(event_type, fleet, step)
            for step, event_type in enumerate(REGISTRY_TYPES)]
