"""String enums stored in the database (lower-case values, the REST wire forms)."""

from __future__ import annotations

from enum import StrEnum


class GlobalRole(StrEnum):
    GLOBAL_ADMIN = "global_admin"
    GLOBAL_USER = "global_user"


class TeamRole(StrEnum):
    TEAM_ADMIN = "team_admin"
    TEAM_USER = "team_user"


class SatelliteType(StrEnum):
    GLOBAL = "global"
    TEAM = "team"


class SatelliteStatus(StrEnum):
    """The administrative status; connection state (`online`) is separate."""

    INACTIVE = "inactive"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    DISABLED = "disabled"
    DELETED = "deleted"


class ReportedStatus(StrEnum):
    """What the satellite says about itself in its heartbeat."""

    ACTIVE = "active"
    DEGRADED = "degraded"
    ERROR = "error"
    UNKNOWN = "unknown"


class CommandType(StrEnum):
    SPAWN = "spawn"
    KILL = "kill"
    RESTART = "restart"
    CONFIGURE = "configure"
    HEALTH_CHECK = "health_check"
    INVALIDATE_USER_TOKEN_CACHE = "invalidate_user_token_cache"


class CommandPriority(StrEnum):
    IMMEDIATE = "immediate"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Sort key: lower is delivered first."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {
    CommandPriority.IMMEDIATE: 0,
    CommandPriority.HIGH: 1,
    CommandPriority.NORMAL: 2,
    CommandPriority.LOW: 3,
}


class CommandStatus(StrEnum):
    PENDING = "pending"
    ACKNOWLEDGED = "acknowledged"
    EXECUTING = "executing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_COMMAND_STATUSES


TERMINAL_COMMAND_STATUSES = frozenset(
    {CommandStatus.COMPLETED, CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED}
)


class TokenScope(StrEnum):
    GLOBAL = "global"
    TEAM = "team"


class TransportType(StrEnum):
    STDIO = "stdio"
    HTTP = "http"
    SSE = "sse"


class ProcessStatus(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    UNKNOWN = "unknown"


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class ActorType(StrEnum):
    USER = "user"
    SATELLITE = "satellite"
    CLI = "cli"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


class AlertSeverity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
