"""What people see of an installation's rendering: the entry a satellite would receive
(docs/protocol.md §9) with every secret masked (docs/graphql.md §3 `configPreview`).

The merge is the renderer's (`config_merge.merge_entry`, template → team →
owner) with `mask=True`: values of secret fields and every encrypted token
become `"********"`, and nothing is ever decrypted. An installation still
missing a required field is previewed all the same (its `missing` list says
what keeps it `awaiting_config`, i.e. out of every satellite's config); one
whose template cannot be rendered has no preview. Batched: any number of
installations cost two queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.models import McpInstallation
from app.services.mcp.config_merge import MergeError, merge_entry
from app.services.mcp.entries import entry_of, owner_tiers, tiers_of


@dataclass(frozen=True, slots=True)
class ConfigPreview:
    entry: dict[str, Any] | None = None
    missing: list[str] = field(default_factory=list)


def preview_of(installation: McpInstallation, owner_tier: dict[str, Any] | None
               ) -> ConfigPreview:
    """The masked entry of one installation loaded with its server and team."""
    tiers = tiers_of(installation, owner_tier)
    try:
        merged = merge_entry(tiers.template, tiers.team, tiers.user, mask=True)
    except MergeError:
        return ConfigPreview(None, tiers.missing)
    return ConfigPreview(entry_of(installation, merged), tiers.missing)


async def config_previews(installation_ids: Sequence[str]) -> dict[str, ConfigPreview]:
    """Masked previews by installation id (ids that name no installation are left out).

    Callers pass ids they may see (the scope is theirs to apply).
    """
    installations = await McpInstallation.filter(
        id__in=sorted(set(installation_ids))
    ).select_related("server", "team")
    tiers_by_installation = await owner_tiers(installations)
    return {row.id: preview_of(row, tiers_by_installation.get(row.id)) for row in installations}


__all__ = ["ConfigPreview", "config_previews", "preview_of"]
