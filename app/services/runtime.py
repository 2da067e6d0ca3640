"""The runtime: long-lived collaborators every service function receives as `rt`.

Built once per process (server or CLI) from the settings. Services are plain
async functions taking `rt` first; nothing here holds a rule.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from app.auth.keys import DerivedKeys
from app.auth.secrets import SecretBox, build_secret_box
from app.bus import Bus, create_bus
from app.config import Settings
from app.metrics import Metrics
from app.services.authentication import AuthFailureLimiter, VerifiedKeyCache
from app.services.fleet import FleetState
from app.services.heartbeats import HeartbeatRecorder
from app.services.live import LiveHub
from app.services.rate_limits import SatelliteRateLimits
from app.services.sessions import SessionCache
from app.tasks import BackgroundTasks


@dataclass(slots=True)
class Runtime:
    settings: Settings
    bus: Bus
    keys: DerivedKeys
    fleet: FleetState
    key_cache: VerifiedKeyCache
    auth_failures: AuthFailureLimiter
    # Failed logins and password checks, keyed by address and by email separately.
    login_failures: AuthFailureLimiter
    rate_limits: SatelliteRateLimits
    heartbeats: HeartbeatRecorder
    secrets: SecretBox
    metrics: Metrics = field(default_factory=Metrics)
    # Open subscriptions and SSE streams, by session (ended on logout, shutdown).
    live: LiveHub = field(default_factory=LiveHub)
    session_cache: SessionCache = field(default_factory=SessionCache)
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    shutting_down: asyncio.Event = field(default_factory=asyncio.Event)
    # time.monotonic() when the server started serving (offline detection's grace period)
    started_monotonic: float = 0.0


def build_runtime(settings: Settings, bus: Bus | None = None) -> Runtime:
    if settings.secret_key is None:
        raise ValueError("settings.secret_key must be resolved before building the runtime")
    bus = bus or create_bus(settings.redis_url)
    keys = DerivedKeys.from_secret(settings.secret_key)
    metrics = Metrics()
    return Runtime(
        settings=settings,
        bus=bus,
        keys=keys,
        fleet=FleetState(bus, settings.state_refresh_seconds),
        key_cache=VerifiedKeyCache(settings, keys.key_cache_digest),
        auth_failures=AuthFailureLimiter(
            settings.auth_failure_limit, settings.auth_failure_window_seconds
        ),
        login_failures=AuthFailureLimiter(
            settings.login_failure_limit, settings.login_failure_window_seconds
        ),
        rate_limits=SatelliteRateLimits(settings),
        heartbeats=HeartbeatRecorder(settings, metrics),
        secrets=build_secret_box(settings, keys.encryption_default),
        metrics=metrics,
    )
