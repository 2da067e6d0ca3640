"""Permissions declared on fields: who may call a field at all.

Finer rules (which team, which object) live in the services; these only say
"logged in" or "global admin", so the schema shows the requirement where the
field is declared.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from app.schema.context import Info


class IsAuthenticated(BasePermission):
    message = "Log in first"
    error_extensions = {"code": "UNAUTHENTICATED", "reason": "unauthenticated"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal is not None


class IsGlobalAdmin(BasePermission):
    """Declare after IsAuthenticated: `permission_classes=[IsAuthenticated, IsGlobalAdmin]`."""

    message = "Only global administrators may do this"
    error_extensions = {"code": "FORBIDDEN", "reason": "forbidden"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and principal.is_global_admin


SIGNED_IN: list[type[BasePermission]] = [IsAuthenticated]
GLOBAL_ADMIN: list[type[BasePermission]] = [IsAuthenticated, IsGlobalAdmin]


__all__ = ["GLOBAL_ADMIN", "SIGNED_IN", "IsAuthenticated", "IsGlobalAdmin"]
