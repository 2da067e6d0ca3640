"""Tortoise models only: fields, indexes, Meta. Rules live in `app/services`."""

from app.models.commands import SatelliteCommand
from app.models.mcp import (
    McpInstallation,
    McpInstallationRevision,
    McpServer,
    McpTool,
    McpUserConfig,
)
from app.models.people import Session, Team, TeamMembership, User
from app.models.satellites import (
    RegistrationToken,
    Satellite,
    SatelliteHeartbeat,
    SatelliteProcess,
)
from app.models.telemetry import (
    AuditEntry,
    McpClientActivity,
    McpRequestLog,
    McpServerLog,
    SatelliteEvent,
    SatelliteUsageLog,
)

__all__ = [
    "AuditEntry",
    "McpClientActivity",
    "McpInstallation",
    "McpInstallationRevision",
    "McpRequestLog",
    "McpServer",
    "McpServerLog",
    "McpTool",
    "McpUserConfig",
    "RegistrationToken",
    "Satellite",
    "SatelliteCommand",
    "SatelliteEvent",
    "SatelliteHeartbeat",
    "SatelliteProcess",
    "SatelliteUsageLog",
    "Session",
    "Team",
    "TeamMembership",
    "User",
]
