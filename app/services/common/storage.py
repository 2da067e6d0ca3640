"""SQL writers for event ingestion, and the group commit that shares one transaction.

Why hand-written SQL: on the hot path (a 100-event batch) building statements
through the ORM costs more than SQLite spends executing them, so the writers
bind plain values into cached multi-row statements. Table and column names are
our constants; every value is a bound parameter.

Why a group commit: SQLite has one connection, so every write transaction holds
it exclusively, and each statement in it is a round trip to the driver's thread
that waits its turn on a busy event loop. Concurrent batches therefore queue
behind each other's round trips. `GroupCommit` lets the batches that arrive while
one transaction runs be written together by the next one: the same few
statements carry many batches, and a batch whose group fails is retried alone, so
one bad batch never fails another.
"""

from __future__ import annotations

import asyncio
import functools
import json
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

# Rows per multi-row INSERT: well under the bound-parameter limits of SQLite and PostgreSQL.
INSERT_CHUNK_ROWS = 500

# Same text as the ORM's JSONField writes (compact separators), without its per-call set-up.
encode_json: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":")).encode


def is_postgres(conn: BaseDBAsyncClient) -> bool:
    return bool(conn.capabilities.dialect == "postgres")


@functools.lru_cache(maxsize=512)
def _insert_sql_cached(postgres: bool, table: str, columns: tuple[str, ...], rows: int,
                       suffix: str) -> str:
    width = len(columns)
    if postgres:
        values = ", ".join(
            "(" + ", ".join(f"${row * width + column + 1}" for column in range(width)) + ")"
            for row in range(rows)
        )
    else:
        values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * rows)
    names = ", ".join(f'"{column}"' for column in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES {values}{suffix}'  # noqa: S608


def insert_sql(conn: BaseDBAsyncClient, model: type[Model], columns: Sequence[str], rows: int,
               suffix: str = "") -> str:
    """A multi-row INSERT (cached by shape: a batch has few distinct row counts)."""
    return _insert_sql_cached(is_postgres(conn), model._meta.db_table, tuple(columns), rows,
                              suffix)


def marks(conn: BaseDBAsyncClient, count: int, start: int = 0) -> list[str]:
    """Parameter placeholders for positions `start`…`start + count - 1`."""
    if is_postgres(conn):
        return [f"${position + 1}" for position in range(start, start + count)]
    return ["?"] * count


async def insert_rows(conn: BaseDBAsyncClient, model: type[Model], columns: Sequence[str],
                      rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows (values in `columns` order, as stored) in one multi-row INSERT per chunk.

    Not `executemany`: SQLite steps it once per row, which costs about twice the
    time of one multi-row statement (prepared once per row count and cached).
    """
    for start in range(0, len(rows), INSERT_CHUNK_ROWS):
        chunk = rows[start:start + INSERT_CHUNK_ROWS]
        values = [value for row in chunk for value in row]
        await conn.execute_query(insert_sql(conn, model, columns, len(chunk)), values)


class DbTimes:
    """Datetimes as a model's field stores them, converted once per distinct value.

    A batch usually carries few distinct timestamps, and the field's conversion
    (time zone checks) is the costly part of building its rows.
    """

    def __init__(self, model: type[Model], column: str) -> None:
        self._field = model._meta.fields_map[column]
        self._model = model
        self._seen: dict[datetime, Any] = {}

    def __call__(self, value: datetime) -> Any:
        stored = self._seen.get(value)
        if stored is None:
            stored = self._seen[value] = self._field.to_db_value(value, self._model)
        return stored


# ---- group commit ---------------------------------------------------------------
_W = TypeVar("_W")


@dataclass(slots=True, eq=False)
class Job(Generic[_W]):
    """One caller's work; `error` is what its write raised (None: written)."""

    work: _W
    done: bool = False
    error: BaseException | None = field(default=None)


class GroupCommit(Generic[_W]):
    """Write concurrent callers' work together; see the module docstring.

    `write_group(items)` writes a list of work items in one transaction. A caller
    queues its item, then takes the lock: whoever gets it first writes everything
    queued so far, so callers that find their item already done return at once.
    When a group of several fails, each item is retried in a group of its own, and
    only that item's caller sees its error.
    """

    def __init__(self, write_group: Callable[[list[_W]], Awaitable[None]],
                 retryable: tuple[type[BaseException], ...]) -> None:
        self._write_group = write_group
        self._retryable = retryable
        self._queue: list[Job[_W]] = []
        self._lock = asyncio.Lock()

    async def write(self, work: _W) -> None:
        job = Job(work)
        self._queue.append(job)
        async with self._lock:
            if not job.done:
                jobs, self._queue = self._queue, []
                await self._write_jobs(jobs)
        if job.error is not None:
            raise job.error

    async def _write_jobs(self, jobs: list[Job[_W]]) -> None:
        try:
            try:
                await self._write_group([job.work for job in jobs])
            except self._retryable as error:
                if len(jobs) == 1:
                    jobs[0].error = error
                else:
                    await self._write_each(jobs)
            for job in jobs:
                job.done = True
        finally:
            for job in jobs:  # only when interrupted: no caller may wait for ever
                if not job.done:
                    job.done, job.error = True, RuntimeError("the group write was interrupted")

    async def _write_each(self, jobs: list[Job[_W]]) -> None:
        for job in jobs:
            try:
                await self._write_group([job.work])
            except self._retryable as error:
                job.error = error
            job.done = True


_group_commits: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, GroupCommit[Any]]
] = weakref.WeakKeyDictionary()


def group_commit(name: str, factory: Callable[[], GroupCommit[_W]]) -> GroupCommit[_W]:
    """The running loop's `GroupCommit` called `name` (asyncio locks belong to one loop)."""
    loop = asyncio.get_running_loop()
    per_loop = _group_commits.setdefault(loop, {})
    found = per_loop.get(name)
    if found is None:
        found = per_loop[name] = factory()
    return found


__all__ = ["INSERT_CHUNK_ROWS", "DbTimes", "GroupCommit", "encode_json", "group_commit",
           "insert_rows", "insert_sql", "is_postgres", "marks"]
