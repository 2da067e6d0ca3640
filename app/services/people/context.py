"""What the people services use: the fleet's context (whether the bus can be trusted,
configure pushes) plus the session cache, the login limits and the password hasher."""

from __future__ import annotations

from typing import Protocol

from app.auth.passwords import Passwords
from app.services.common.rate_limits import FailureLimiter
from app.services.fleet.context import FleetContext
from app.services.people.session_cache import SessionCache


class PeopleContext(FleetContext, Protocol):
    session_cache: SessionCache
    # Failed logins and password checks, keyed by address and by email separately.
    login_failures: FailureLimiter
    passwords: Passwords
