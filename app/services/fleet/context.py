"""What the fleet's services use besides the core: the in-memory fleet and its caches."""

from __future__ import annotations

from typing import Protocol

from app.services.common.context import Core
from app.services.common.rate_limits import FailureLimiter, SatelliteRateLimits
from app.services.fleet.key_cache import VerifiedKeyCache
from app.services.fleet.recorder import HeartbeatRecorder
from app.services.fleet.state import FleetState


class FleetContext(Core, Protocol):
    fleet: FleetState
    key_cache: VerifiedKeyCache
    # Failed satellite authentications (API keys, registration tokens), by address.
    auth_failures: FailureLimiter
    rate_limits: SatelliteRateLimits
    heartbeats: HeartbeatRecorder
    # time.monotonic() when the server started serving (offline detection's grace period)
    started_monotonic: float
