"""`groundstation simulate`: simulated satellites against a server (docs/operations.md §11).

The command is an HTTP client only: it opens no database and needs no settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

from app.cli.arguments import Parser
from app.simulator.engine import Fleet, Options

FAULTS = ("crash", "flap", "slow")


def add_simulate(subparsers: argparse._SubParsersAction[Parser]) -> None:
    simulate = subparsers.add_parser(
        "simulate", help="drive a fleet of simulated satellites against a server",
        description="Run N simulated satellites in this process against a Groundstation "
        "server, each behaving as the reference DeployStack satellite: register with a "
        "registration token, heartbeat every 30 s, long-poll for commands and report their "
        "results, fetch config on `configure`, send event batches every 3 s. Prints a "
        "progress line every 5 s on stderr and a summary at the end (JSON with --json). "
        "Exit status 0 when no request failed, 1 otherwise.",
    )
    simulate.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:3000")
    simulate.add_argument("--satellites", type=_positive, required=True,
                          help="how many satellites to simulate")
    simulate.add_argument("--duration", type=float, default=60.0,
                          help="seconds to run (default 60; Ctrl-C ends early)")
    source = simulate.add_mutually_exclusive_group()
    source.add_argument("--token-file", type=Path,
                        help="registration tokens, one per line (as `groundstation token "
                        "create --count N` prints them); one per satellite, spares are used "
                        "to register again after a refused key")
    source.add_argument("--credentials", type=Path,
                        help="start from saved credentials (`ID API_KEY` per line, as "
                        "--credentials-out writes) instead of registering")
    simulate.add_argument("--credentials-out", type=Path,
                          help="write each registered satellite's `ID API_KEY` to this file "
                          "at the end (it holds secrets: keep it private)")
    simulate.add_argument("--deliveries-out", type=Path,
                          help="write `COMMAND_ID MONOTONIC_SECONDS` per delivered command "
                          "(for measuring delivery latency from outside)")
    simulate.add_argument("--events-per-second", type=float, default=20.0,
                          help="events the whole fleet emits per second (default 20)")
    polling = simulate.add_mutually_exclusive_group()
    polling.add_argument("--long-poll", dest="long_poll", action="store_true", default=True,
                         help="hold polls open for up to 25 s (default)")
    polling.add_argument("--no-long-poll", dest="long_poll", action="store_false",
                         help="poll at the server's next_poll_interval instead")
    simulate.add_argument("--faults", type=_faults, default=frozenset(),
                          help=f"comma-separated fault modes for ~5%% of satellites each: "
                          f"{', '.join(FAULTS)} (crash: processes crash and report it; flap: "
                          "silent for 2-3 minutes now and then; slow: results after 5-20 s)")
    simulate.add_argument("--seed", type=int, default=1,
                          help="random seed: which satellites fault, names (default 1)")
    simulate.add_argument("--json", action="store_true", help="print the summary as JSON")
    simulate.set_defaults(standalone=simulate_command)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _faults(text: str) -> frozenset[str]:
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = chosen - set(FAULTS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault mode {sorted(unknown)[0]!r}; choose "
                                         f"from {', '.join(FAULTS)}")
    return chosen


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def simulate_command(args: argparse.Namespace) -> int:
    tokens = tuple(_lines(args.token_file)) if args.token_file else ()
    credentials: tuple[tuple[str, str], ...] = ()
    if args.credentials:
        pairs = [line.split() for line in _lines(args.credentials)]
        credentials = tuple((pair[0], pair[1]) for pair in pairs if len(pair) == 2)
    if len(tokens) + len(credentials) < args.satellites:
        print(f"groundstation: error: {args.satellites} satellites need as many tokens or "
              f"credentials; got {len(tokens) + len(credentials)}", file=sys.stderr)
        return 2
    deliveries: list[str] = []

    def delivered(_satellite_id: str, command_id: str, at: float) -> None:
        deliveries.append(f"{command_id} {at:.6f}")

    fleet = Fleet(Options(
        url=args.url.rstrip("/"), satellites=args.satellites, duration=args.duration,
        tokens=tokens, credentials=credentials, events_per_second=args.events_per_second,
        long_poll=args.long_poll, faults=args.faults, seed=args.seed,
        on_command=delivered if args.deliveries_out else None, tune_gc=True,
    ))
    summary = asyncio.run(_run(fleet))
    if args.credentials_out:
        args.credentials_out.write_text("".join(
            f"{s.satellite_id} {s.api_key}\n" for s in fleet.satellites if s.satellite_id))
        args.credentials_out.chmod(0o600)
    if args.deliveries_out:
        args.deliveries_out.write_text("".join(f"{line}\n" for line in deliveries))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(_table(summary))
    bring_up = summary.get("bring_up")
    failed = summary["errors"] or (isinstance(bring_up, dict) and bring_up["errors"])
    return 1 if failed else 0


async def _run(fleet: Fleet) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, fleet.stop)
    started = time.monotonic()
    print(f"[simulate] {fleet.options.satellites:,} satellites against {fleet.options.url} "
          f"for {fleet.options.duration:g} s", file=sys.stderr, flush=True)
    summary = await fleet.run()
    print(f"[simulate] done after {time.monotonic() - started:.0f} s", file=sys.stderr,
          flush=True)
    return summary


def _table(summary: dict[str, object]) -> str:
    routes = summary["routes"]
    assert isinstance(routes, dict)
    lines = [
        f"satellites {summary['satellites']:,}: registered {summary['registered']:,}, online "
        f"{summary['online']:,}; {summary['requests']:,} requests "
        f"({summary['requests_per_second']:,} req/s) in {summary['duration_seconds']} s; "
        f"errors {summary['errors']}, throttled {summary['throttled']}, unreachable "
        f"{summary['unreachable']}",
        f"all online after {summary['all_online_after_seconds']} s; the table covers the "
        f"{summary['steady_seconds']} s after that" if summary["bring_up"] else
        "not every satellite came online: the table covers the whole run",
        "route           requests  errors  p50 ms  p99 ms  max ms",
    ]
    for name, route in routes.items():
        lines.append(f"{name:<15} {route['requests']:>8,} {route['errors']:>7} "
                     f"{route['p50_ms']:>7} {route['p99_ms']:>7} {route['max_ms']:>7}")
    return "\n".join(lines)
