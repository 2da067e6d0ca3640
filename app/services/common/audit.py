"""The audit trail: who did what to which object, and security events."""

from __future__ import annotations

import logging
from typing import Any

from app.models import AuditEntry
from app.services.common.actors import Actor

log = logging.getLogger(__name__)


async def record_audit(
    action: str,
    *,
    actor: Actor,
    object_type: str | None = None,
    object_id: str | None = None,
    team_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one audit entry. `details` must never hold a secret (keys, tokens, passwords)."""
    entry = await AuditEntry.create(
        actor_type=actor.type,
        actor_user_id=actor.user_id,
        actor_satellite_id=actor.satellite_id,
        address=actor.address,
        action=action,
        object_type=object_type,
        object_id=object_id,
        team_id=team_id,
        details=details or {},
    )
    log.info(
        "audit",
        extra={"op": action, "object_type": object_type, "object_id": object_id,
               "actor_type": str(actor.type)},
    )
    return entry
