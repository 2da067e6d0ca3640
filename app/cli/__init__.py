"""The `groundstation` command line (docs/operations.md §3).

Scripts depend on the exact forms and outputs: the result alone on stdout,
logs on stderr, one `error: <message>` line and a non-zero exit on failure.
"""

from app.cli.entry import main

__all__ = ["main"]
