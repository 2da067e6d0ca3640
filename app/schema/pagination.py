"""Relay-style connections (`edges { cursor node }`, `pageInfo`, `totalCount`).

Cursors are opaque offsets into the ordered, scoped query. `first` is 0–100:
a larger value is a VALIDATION error, never silently capped (docs/graphql.md §5).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from tortoise.models import Model
from tortoise.queryset import QuerySet

from app.errors import ValidationError

MAX_FIRST = 100
_PREFIX = "offset:"

NodeType = TypeVar("NodeType")
M = TypeVar("M", bound=Model)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeType]):
    cursor: str
    node: NodeType


@strawberry.type
class Connection(Generic[NodeType]):
    edges: list[Edge[NodeType]]
    page_info: PageInfo
    total_count: int


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    """The offset after `cursor` (0 without one); a malformed cursor is a VALIDATION error."""
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not text.startswith(_PREFIX):
            raise ValueError(cursor)
        offset = int(text[len(_PREFIX):])
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise ValidationError("after: not a cursor returned by this API",
                              details=[{"field": "after", "message": "invalid cursor"}]
                              ) from error
    if offset < 0:
        raise ValidationError("after: not a cursor returned by this API")
    return offset + 1


DEFAULT_FIRST = 50


def checked_first(first: int | None) -> int:
    """`first` as given (null means the default, 50); outside 0–100 is a VALIDATION error."""
    if first is None:
        return DEFAULT_FIRST
    if not 0 <= first <= MAX_FIRST:
        raise ValidationError(f"first must be between 0 and {MAX_FIRST}",
                              details=[{"field": "first", "message": "out of range"}])
    return first


def connection(nodes: Sequence[Any], start: int, total: int, has_next: bool
               ) -> Connection[Any]:
    edges = [Edge(cursor=encode_cursor(start + index), node=node)
             for index, node in enumerate(nodes)]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=has_next,
                           end_cursor=edges[-1].cursor if edges else None),
        total_count=total,
    )


async def paginate(
    query: QuerySet[M], *, first: int | None, after: str | None,
    to_node: Callable[[list[M]], Awaitable[Sequence[Any]] | Sequence[Any]],
) -> Connection[Any]:
    """One page of an ordered, already scoped query (two queries: the page and the count)."""
    size = checked_first(first)
    start = decode_cursor(after)
    rows = await query.offset(start).limit(size + 1) if size else []
    total = await query.count()
    nodes = to_node(list(rows[:size]))
    if not isinstance(nodes, Sequence):
        nodes = await nodes
    return connection(nodes, start, total, len(rows) > size)


__all__ = [
    "DEFAULT_FIRST",
    "MAX_FIRST",
    "Connection",
    "Edge",
    "PageInfo",
    "checked_first",
    "connection",
    "decode_cursor",
    "encode_cursor",
    "paginate",
]
