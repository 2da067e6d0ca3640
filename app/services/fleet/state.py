"""The in-memory fleet: per-satellite state that hot paths read instead of the database.

Hot paths run from memory (docs/architecture.md §4): authentication, status and
"has pending work" come from here. The state is kept current by

- `apply_admin_change()`: the one way services change a satellite's
  administrative fields (status, key, allow-list, name, team). It writes the row
  with `revision + 1`, refreshes this instance's copy and publishes
  `satellite.changed` so other instances refresh theirs;
- `mark_pending()`: called after a command is committed (and from the bus);
- `refresh_loop()`: one periodic query per instance (not one per waiter) that
  picks up rows changed by other processes (the CLI) and pending commands.

Bus messages are hints. While a networked bus is disconnected, or has
reconnected but this instance has not re-read the database since, the fleet is
not `in_sync()`: the refresh runs every `_DEGRADED_REFRESH_SECONDS` (so held
long polls still wake within about a second) and authentication confirms key
generations in the database. A reconnection ends the subscription of
`follow_bus()` (`RESYNC`), which re-reads at once and subscribes again.

Heartbeat telemetry (last heartbeat, metrics, online) is owned by memory on
this instance and persisted by the heartbeat flusher; a refresh never
overwrites it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import F

from app.bus import Bus, Channels
from app.config import IPNetwork
from app.models import Satellite, SatelliteCommand
from app.models.enums import CommandStatus, SatelliteStatus, SatelliteType
from app.services.common.clock import SYSTEM_CLOCK, Clock
from app.services.fleet.wakeups import DeadlineTimers, Wakeup

log = logging.getLogger(__name__)

# Rows changed this long before the last refresh are re-read, covering clock skew
# between processes and transactions that committed late.
_REFRESH_OVERLAP = timedelta(seconds=5)
# The refresh interval while the bus cannot be trusted (disconnected or not yet re-read).
_DEGRADED_REFRESH_SECONDS = 0.5


@dataclass(slots=True)
class SatelliteState:
    id: str
    name: str
    satellite_type: SatelliteType
    team_id: str | None
    status: SatelliteStatus
    revision: int
    key_id: str | None
    key_hash: str | None
    key_generation: int
    allowed_networks: tuple[IPNetwork, ...]
    # The key came from an operator's rotation and has not authenticated yet (cleared
    # by the first authentication with it: `fleet.authentication`).
    rotated_key_unused: bool = False
    online: bool = False
    last_heartbeat_at: datetime | None = None
    reported_status: str | None = None
    version: str | None = None
    latest_metrics: dict[str, Any] | None = None
    process_count: int = 0
    # Pending work: a hint, set when a command may be waiting, cleared by a claim
    # that found nothing. `pending_epoch` lets a claim clear it only if nothing
    # was marked while it ran.
    has_pending: bool = False
    pending_epoch: int = 0
    wakeup: Wakeup = field(default_factory=Wakeup)

    @property
    def is_global(self) -> bool:
        return self.satellite_type is SatelliteType.GLOBAL

    def address_allowed(self, address: str) -> bool:
        if not self.allowed_networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.allowed_networks)


def parse_networks(cidrs: list[str] | None) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for cidr in cidrs or []:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            log.warning("ignoring malformed CIDR in allow-list", extra={"cidr": cidr})
    return tuple(networks)


class FleetState:
    def __init__(self, bus: Bus, refresh_seconds: float = 1.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self._bus = bus
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._by_id: dict[str, SatelliteState] = {}
        self._by_key_id: dict[str, str] = {}
        self._watermark: datetime | None = None
        # The bus epoch as of the last full re-read of the database (-1: none yet).
        self._synced_epoch = bus.epoch if bus.connected else -1
        self._resync_requested = asyncio.Event()
        self._degraded_logged = False
        # Marks this instance's own change announcements (`announce_change`).
        self.origin = uuid.uuid4().hex
        # Deadlines of held long polls (`SatelliteState.wakeup`).
        self.poll_timers = DeadlineTimers()

    # ---- reads -------------------------------------------------------------
    def get(self, satellite_id: str) -> SatelliteState | None:
        return self._by_id.get(satellite_id)

    def by_key_id(self, key_id: str) -> SatelliteState | None:
        satellite_id = self._by_key_id.get(key_id)
        return None if satellite_id is None else self._by_id.get(satellite_id)

    def all(self) -> list[SatelliteState]:
        return list(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    # ---- loading -----------------------------------------------------------
    async def load(self) -> None:
        """Read every live satellite once at start-up."""
        started = self._clock.now()
        epoch, connected = self._bus.epoch, self._bus.connected
        rows = await Satellite.exclude(status=SatelliteStatus.DELETED)
        for row in rows:
            self.apply_row(row, with_telemetry=True)
        self._watermark = started
        if connected:
            self._synced_epoch = epoch

    # ---- trusting the bus --------------------------------------------------
    def in_sync(self) -> bool:
        """True when memory may rely on bus messages: connected, and re-read since the
        last (re)connection. Always true with the in-process bus."""
        return self._bus.connected and self._synced_epoch == self._bus.epoch

    async def resync(self) -> None:
        """Re-read what bus messages may have missed, then trust the bus again."""
        epoch, connected = self._bus.epoch, self._bus.connected
        await self.refresh_once()
        if connected:
            self._synced_epoch = epoch

    def apply_row(self, row: Satellite, *, with_telemetry: bool = False) -> SatelliteState | None:
        """Apply a database row if it is newer than what memory holds."""
        current = self._by_id.get(row.id)
        if row.status is SatelliteStatus.DELETED:
            self._forget(row.id)
            return None
        if current is not None and current.revision >= row.revision and not with_telemetry:
            return current
        if current is not None and current.key_id and current.key_id != row.api_key_id:
            self._by_key_id.pop(current.key_id, None)
        state = current or SatelliteState(
            id=row.id,
            name=row.name,
            satellite_type=row.satellite_type,
            team_id=row.team_id,  # type: ignore[attr-defined]
            status=row.status,
            revision=row.revision,
            key_id=row.api_key_id,
            key_hash=row.api_key_hash,
            key_generation=row.key_generation,
            allowed_networks=parse_networks(row.allowed_cidrs),
        )
        state.name = row.name
        state.satellite_type = row.satellite_type
        state.team_id = row.team_id  # type: ignore[attr-defined]
        state.status = row.status
        state.revision = row.revision
        state.key_id = row.api_key_id
        state.key_hash = row.api_key_hash
        state.key_generation = row.key_generation
        state.allowed_networks = parse_networks(row.allowed_cidrs)
        state.rotated_key_unused = row.rotated_key_unused
        if with_telemetry or current is None:
            state.online = row.online
            state.last_heartbeat_at = row.last_heartbeat_at
            state.reported_status = row.reported_status
            state.version = row.version
            state.latest_metrics = row.latest_metrics
            state.process_count = row.process_count
        self._by_id[row.id] = state
        if row.api_key_id:
            self._by_key_id[row.api_key_id] = row.id
        return state

    def _forget(self, satellite_id: str) -> None:
        state = self._by_id.pop(satellite_id, None)
        if state is not None:
            if state.key_id:
                self._by_key_id.pop(state.key_id, None)
            state.wakeup.set()  # release any held long poll

    async def reload(self, satellite_id: str) -> SatelliteState | None:
        row = await Satellite.get_or_none(id=satellite_id)
        if row is None:
            self._forget(satellite_id)
            return None
        return self.apply_row(row)

    # ---- writes ------------------------------------------------------------
    async def apply_admin_change(
        self,
        satellite_id: str,
        reason: str,
        *,
        only_if_status: SatelliteStatus | None = None,
        only_if: dict[str, Any] | None = None,
        **changes: Any,
    ) -> SatelliteState | None:
        """Write administrative fields, bump the revision, refresh memory, tell other instances.

        One conditional UPDATE (safe while another process writes the file). With
        `only_if_status` (and `only_if`, more field values the row must still have),
        nothing changes unless the row still has that status; returns None when no
        row was changed.
        """
        changes.setdefault("updated_at", self._clock.now())
        query = Satellite.filter(id=satellite_id)
        if only_if_status is not None:
            query = query.filter(status=only_if_status)
        if only_if:
            query = query.filter(**only_if)
        changed = await query.update(revision=F("revision") + 1, **changes)
        if not changed:
            return None
        state = await self.reload(satellite_id)
        await self.announce_change(satellite_id, reason)
        return state

    async def announce_change(self, satellite_id: str, reason: str) -> None:
        """Tell every instance that a satellite's row changed (this one already applied it:
        its own announcements are not read back, see `follow_bus`)."""
        await self._bus.publish(Channels.SATELLITE_CHANGED, {
            "satellite_id": satellite_id, "reason": reason, "origin": self.origin})

    # ---- pending work ------------------------------------------------------
    def mark_pending(self, satellite_id: str) -> None:
        state = self._by_id.get(satellite_id)
        if state is None:
            return
        state.has_pending = True
        state.pending_epoch += 1
        state.wakeup.set()

    def clear_pending_if_unchanged(self, state: SatelliteState, epoch: int) -> None:
        if state.pending_epoch == epoch:
            state.has_pending = False

    # ---- background --------------------------------------------------------
    async def refresh_once(self) -> None:
        now = self._clock.now()
        since = (self._watermark or now) - _REFRESH_OVERLAP
        for row in await Satellite.filter(updated_at__gte=since):
            self.apply_row(row)
        pending = (
            await SatelliteCommand.filter(status=CommandStatus.PENDING, expires_at__gt=now)
            .distinct()
            .values_list("satellite_id", flat=True)
        )
        for satellite_id in pending:
            state = self._by_id.get(str(satellite_id))
            if state is not None and not state.has_pending:
                self.mark_pending(state.id)
        self._watermark = now

    async def refresh_loop(self, stop: asyncio.Event) -> None:
        """The periodic re-read; every `_DEGRADED_REFRESH_SECONDS` while the bus cannot
        be trusted (`in_sync()`, checked that often), at once when a resync is asked for."""
        tick = min(self._refresh_seconds, _DEGRADED_REFRESH_SECONDS)
        last = time.monotonic()
        while not await self._wait(stop, tick):
            in_sync = self.in_sync()
            self._log_mode(in_sync)
            if in_sync and time.monotonic() - last < self._refresh_seconds - tick / 2:
                continue
            last = time.monotonic()
            try:
                if not in_sync and self._bus.connected:
                    await self.resync()
                else:
                    await self.refresh_once()
            except Exception:
                log.exception("fleet refresh failed; retrying")

    async def _wait(self, stop: asyncio.Event, seconds: float) -> bool:
        """Sleep up to `seconds` or until a resync is requested; True when `stop` is set."""
        if not self._resync_requested.is_set():
            # Event waits hold no database connection: cancelling them is safe.
            waiters = {asyncio.ensure_future(stop.wait()),
                       asyncio.ensure_future(self._resync_requested.wait())}
            try:
                await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        self._resync_requested.clear()
        return stop.is_set()

    def _log_mode(self, in_sync: bool) -> None:
        if not in_sync and not self._degraded_logged:
            self._degraded_logged = True
            log.warning(
                "bus not trusted (disconnected or reconnecting): pending commands and "
                "changed satellites are re-read from the database every %.1f s",
                min(self._refresh_seconds, _DEGRADED_REFRESH_SECONDS),
            )
        elif in_sync and self._degraded_logged:
            self._degraded_logged = False
            log.warning("bus trusted again: back to the normal refresh interval")

    async def follow_bus(self) -> None:
        """Apply other instances' changes and command wake-ups as they are published.

        A dropped subscription (this subscriber fell behind, or the bus reconnected
        and messages may have been missed) asks for an immediate re-read from the
        database and subscribes again; the loop ends when the bus closes.
        """
        while True:
            dropped = False
            async for channel, message in self._bus.subscribe(
                [Channels.SATELLITE_CHANGED, Channels.COMMANDS_PENDING]
            ):
                if channel == Channels.COMMANDS_PENDING:
                    self.mark_pending(str(message.get("satellite_id", "")))
                elif channel == Channels.SATELLITE_CHANGED:
                    if message.get("origin") == self.origin:
                        # Ours: memory has it. Reading it back cost one query per change,
                        # and at fleet bring-up (a change per activation) the subscription
                        # fell behind and was dropped, forcing full re-reads.
                        continue
                    try:
                        await self.reload(str(message.get("satellite_id", "")))
                    except Exception:
                        log.exception("reloading a changed satellite failed")
                elif message.get("type") == "subscriber_dropped":
                    dropped = True
            if not dropped:
                return
            self._synced_epoch = -1  # not trusted until the re-read below has run
            self._resync_requested.set()

