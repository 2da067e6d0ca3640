"""Pydantic models of the satellite REST bodies (docs/protocol.md), one module per route group.

The same models validate requests and describe them in the OpenAPI document.
Unknown fields are ignored (docs/protocol.md §1): every model uses `WireModel`.
"""

from app.wire.base import WireModel

__all__ = ["WireModel"]
