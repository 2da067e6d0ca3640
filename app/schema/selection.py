"""What a query asks for below the field being resolved (to prefetch a page's relations)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.schema.context import Info


def asked_for(info: Info, names: Iterable[str]) -> set[str]:
    """Those of `names` that appear anywhere in this field's selection (fragments too)."""
    wanted = set(names)
    found: set[str] = set()
    pending: list[Any] = list(info.selected_fields)
    while pending and found != wanted:
        selection = pending.pop()
        name = getattr(selection, "name", None)
        if name in wanted:
            found.add(name)
        pending.extend(getattr(selection, "selections", ()))
    return found


__all__ = ["asked_for"]
