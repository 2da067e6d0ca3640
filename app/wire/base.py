from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """Base for satellite-sent bodies: extra fields ignored, never rejected."""

    model_config = ConfigDict(extra="ignore", frozen=True)
