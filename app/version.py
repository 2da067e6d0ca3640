"""The running version: the installed package's metadata, whose one source is
`pyproject.toml`'s `[project] version` (docs/operations.md §8)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "groundstation"


def _installed_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


VERSION: str = _installed_version()
