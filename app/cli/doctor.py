"""`groundstation doctor [--json]`: the checks of `app/services/diagnostics`, one line
each (`status  check  detail`, with `fix:` under what is not ok), exit 1 if any failed."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict

from app.cli.database import command_settings
from app.cli.output import write_result
from app.logs import configure_logging
from app.services.diagnostics.checks import Check, Status, failed, run_checks


def _table(checks: list[Check]) -> str:
    width = max(len(check.name) for check in checks)
    lines: list[str] = []
    for check in checks:
        lines.append(f"{check.status.value:<4}  {check.name.ljust(width)}  {check.detail}")
        if check.fix and check.status is not Status.OK:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    return "\n".join(lines)


def doctor_command(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    checks = asyncio.run(run_checks(lambda: command_settings(args)))
    if args.json:
        write_result(json.dumps({"ok": not failed(checks),
                                 "checks": [asdict(check) for check in checks]}))
    else:
        write_result(_table(checks))
    return 1 if failed(checks) else 0


__all__ = ["doctor_command"]
