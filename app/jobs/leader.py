"""One leader at a time runs the background jobs (docs/operations.md §4, issue 5).

On SQLite there is one server process per database file, so it always leads.
On PostgreSQL every instance tries `pg_try_advisory_lock` on a dedicated
connection; the one that gets it leads for as long as that connection lives.
When the leader dies (even `kill -9`), PostgreSQL ends its session and frees
the lock, and another instance takes it at its next attempt (within one jobs
interval). Jobs are idempotent, so a brief overlap at a hand-over is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from app.config import Settings

log = logging.getLogger(__name__)

# Arbitrary constant shared by every instance (distinct from the migration lock's key).
JOBS_LOCK_KEY = 0x6753_4A6F_6273  # "gSJobs"


class Leadership:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connection: Any = None
        self.is_leader = settings.is_sqlite

    async def run(self, stop: asyncio.Event) -> None:
        """Keep trying to lead (and checking that we still do) until `stop`."""
        if self._settings.is_sqlite:
            return
        try:
            while not stop.is_set():
                await self._attempt()
                try:
                    await asyncio.wait_for(stop.wait(),
                                           timeout=self._settings.jobs_interval_seconds)
                except TimeoutError:
                    continue
        finally:
            await self._release()

    async def _attempt(self) -> None:
        import asyncpg

        try:
            if self._connection is None or self._connection.is_closed():
                self._connection = await asyncpg.connect(
                    self._settings.database_url.split("?", 1)[0], timeout=5
                )
            if self.is_leader:
                await self._connection.fetchval("SELECT 1")  # still connected: still leading
                return
            if await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", JOBS_LOCK_KEY):
                self.is_leader = True
                log.info("this instance now runs the background jobs", extra={"op": "jobs"})
        except (TimeoutError, OSError, asyncpg.PostgresError) as error:
            if self.is_leader:
                log.warning("lost the jobs lock with the database connection",
                            extra={"op": "jobs", "error": str(error)})
            self.is_leader = False
            await self._release()

    async def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await connection.close(timeout=5)
            except Exception:  # closing a broken connection: nothing more to do
                connection.terminate()
        if not self._settings.is_sqlite:
            self.is_leader = False


__all__ = ["JOBS_LOCK_KEY", "Leadership"]
