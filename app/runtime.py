"""The composition root: builds the long-lived collaborators and wires them.

Built once per process (server or CLI) from the settings. The one `Runtime` it
returns satisfies every context the services declare (`Core`, `FleetContext`,
`PeopleContext`, and `Services` for the transports); services never import this
module. Nothing here holds a rule.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from app.auth.keys import DerivedKeys
from app.auth.passwords import PasswordCost, Passwords
from app.auth.secrets import SecretBox, build_secret_box
from app.bus import Bus, create_bus
from app.config import Settings
from app.limits import LimitStore, create_limit_store
from app.metrics import Metrics
from app.services.alerts.state import AlertMemory
from app.services.common.clock import SYSTEM_CLOCK, Clock
from app.services.common.rate_limits import FailureLimiter, SatelliteRateLimits
from app.services.fleet.key_cache import VerifiedKeyCache
from app.services.fleet.recorder import HeartbeatRecorder
from app.services.fleet.state import FleetState
from app.services.live.connections import LiveHub
from app.services.people.session_cache import SessionCache
from app.tasks import BackgroundTasks


@dataclass(slots=True)
class Runtime:
    settings: Settings
    bus: Bus
    keys: DerivedKeys
    fleet: FleetState
    key_cache: VerifiedKeyCache
    # Counters behind every rate limit (shared through Redis when REDIS_URL is set).
    limits: LimitStore
    # Failed satellite authentications (API keys, registration tokens), by address.
    auth_failures: FailureLimiter
    # Failed logins and password checks, keyed by address and by email separately.
    login_failures: FailureLimiter
    rate_limits: SatelliteRateLimits
    heartbeats: HeartbeatRecorder
    secrets: SecretBox
    passwords: Passwords
    clock: Clock = SYSTEM_CLOCK
    metrics: Metrics = field(default_factory=Metrics)
    # Open subscriptions and SSE streams, by session (ended on logout, shutdown).
    live: LiveHub = field(default_factory=LiveHub)
    session_cache: SessionCache = field(default_factory=SessionCache)
    # What the alert rules remember between messages (docs/alerts.md §2).
    alerts: AlertMemory = field(default_factory=AlertMemory)
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    shutting_down: asyncio.Event = field(default_factory=asyncio.Event)
    # time.monotonic() when the shutdown timeout ends (0.0 until shutdown begins)
    shutdown_deadline: float = 0.0
    # clock.monotonic() when the server started serving (offline detection's grace period)
    started_monotonic: float = 0.0
    # Names this process in its start-up and shutdown log lines (several instances).
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


def build_runtime(
    settings: Settings, bus: Bus | None = None, limits: LimitStore | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Runtime:
    if settings.secret_key is None:
        raise ValueError("settings.secret_key must be resolved before building the runtime")
    bus = bus or create_bus(settings.redis_url)
    limits = limits or create_limit_store(settings.redis_url)
    keys = DerivedKeys.from_secret(settings.secret_key)
    metrics = Metrics()
    if settings.redis_url:
        from app.bus.redis import RedisBus  # imports redis only when configured

        if isinstance(bus, RedisBus):
            metrics.watch_redis(bus)
    return Runtime(
        settings=settings,
        bus=bus,
        keys=keys,
        fleet=FleetState(bus, settings.state_refresh_seconds, clock),
        key_cache=VerifiedKeyCache(settings, keys.key_cache_digest),
        limits=limits,
        auth_failures=FailureLimiter(
            limits, "auth", settings.auth_failure_limit, settings.auth_failure_window_seconds,
            "Too many failed authentications from this address; retry later",
        ),
        login_failures=FailureLimiter(
            limits, "login", settings.login_failure_limit, settings.login_failure_window_seconds,
            "Too many failed sign-in attempts; retry later",
        ),
        rate_limits=SatelliteRateLimits(settings, limits),
        heartbeats=HeartbeatRecorder(settings, metrics, clock),
        secrets=build_secret_box(settings, keys.encryption_default),
        passwords=Passwords(PasswordCost(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
        )),
        clock=clock,
        metrics=metrics,
        session_cache=SessionCache(ttl=settings.session_cache_seconds),
    )
