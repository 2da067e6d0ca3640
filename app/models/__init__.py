"""Tortoise models only: fields, indexes, Meta. Rules live in `app/services`."""

from app.models.alerts import Alert, AlertRuleSetting, Webhook, WebhookDelivery
from app.models.commands import SatelliteCommand
from app.models.mcp import (
    McpInstallation,
    McpInstallationRevision,
    McpServer,
    McpTool,
    McpUserConfig,
)
from app.models.metrics import SatelliteMetricRollup
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
    McpClientSession,
    McpRequestLog,
    McpServerLog,
    ResourceLimitBreach,
    SatelliteConfigState,
    SatelliteEvent,
    SatelliteUsageLog,
)

__all__ = [
    "Alert",
    "AlertRuleSetting",
    "AuditEntry",
    "McpClientActivity",
    "McpClientSession",
    "McpInstallation",
    "McpInstallationRevision",
    "McpRequestLog",
    "McpServer",
    "McpServerLog",
    "McpTool",
    "McpUserConfig",
    "RegistrationToken",
    "ResourceLimitBreach",
    "Satellite",
    "SatelliteCommand",
    "SatelliteConfigState",
    "SatelliteEvent",
    "SatelliteHeartbeat",
    "SatelliteMetricRollup",
    "SatelliteProcess",
    "SatelliteUsageLog",
    "Session",
    "Team",
    "TeamMembership",
    "User",
    "Webhook",
    "WebhookDelivery",
]
