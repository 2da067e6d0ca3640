"""Opaque identifiers: 32 lower-case hex characters, no dashes.

No dashes matters: process ids are `{server_slug}-{team_slug}-{installation_id}`,
so the installation id is whatever follows the last dash.
"""

from __future__ import annotations

import uuid


def new_id() -> str:
    return uuid.uuid4().hex


ID_LENGTH = 32
