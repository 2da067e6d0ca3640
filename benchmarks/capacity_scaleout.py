"""Fleet capacity on PostgreSQL + Redis: two instances, the fleet spread across them.

    .venv/bin/python -m benchmarks.capacity_scaleout [--satellites 10000] [--hold 300]
        [--postgres postgres://postgres@127.0.0.1:5432/test] [--redis redis://127.0.0.1:6379/0]

The rows of `benchmarks.capacity` that matter for a deployment of several
instances: bring-up, the hold at the reference cadence, and command delivery,
with every command enqueued through the first instance while half of the
fleet long-polls the second (so each delivery to that half crosses Redis). A
fresh database is created on the PostgreSQL server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.config import load_settings
from benchmarks import people
from benchmarks.capacity import (
    BUDGETS,
    Run,
    Server,
    base_env,
    cli,
    finished,
    read_deliveries,
    report,
    simulator,
    summary_errors,
    summary_route,
    summary_unreachable,
    until,
)
from benchmarks.fleet import prepare_installation, prepare_session
from benchmarks.run import RESULTS_DIR, free_port, progress


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.capacity_scaleout",
        description="A simulated fleet spread over two instances on PostgreSQL + Redis: "
        "bring-up, the hold and command delivery across instances, with budgets.",
    )
    parser.add_argument("--satellites", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=300.0)
    parser.add_argument("--commands-per-second", type=float, default=20.0)
    parser.add_argument("--people-seconds", type=float, default=60.0)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL server (any database on it; a fresh one is made)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _online(url: str) -> int:
    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        count = await connection.fetchval("SELECT count(*) FROM satellites WHERE online "
                                          "AND name LIKE 'sim-%'")
    finally:
        await connection.close()
    return int(count)


async def _satellite_ids(url: str) -> list[str]:
    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        rows = await connection.fetch("SELECT id FROM satellites WHERE name LIKE 'sim-%' "
                                      "AND status = 'active'")
    finally:
        await connection.close()
    return [str(row["id"]) for row in rows]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name = f"gs_capacity_{int(time.time())}"
    database_url = with_database(args.postgres, name)
    asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
    workdir = Path(tempfile.mkdtemp(prefix="groundstation-scaleout-"))
    env = base_env(workdir / "unused.db")
    env["DATABASE_URL"] = database_url
    env["REDIS_URL"] = f"{args.redis}?channel_prefix={name}:"
    run = Run()
    servers: list[Server] = []
    try:
        settings = load_settings(environ=env, dotenv=None)
        cli(env, "migrate")
        session = asyncio.run(prepare_session(settings))
        asyncio.run(prepare_installation(settings))
        tokens = cli(env, "token", "create", "--scope", "global", "--count",
                     str(args.satellites)).split()
        servers = [Server(env, free_port()), Server(env, free_port())]
        for server in servers:
            server.start()
        measure(args, run, servers, workdir, tokens, session, database_url)
    finally:
        for server in servers:
            if server.process is not None and server.process.poll() is None:
                server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}"'))
    report(args, run)
    return 0 if all(row.passed is not False for row in run.rows) else 1


def measure(args: argparse.Namespace, run: Run, servers: list[Server], workdir: Path,
            tokens: list[str], session: str, database_url: str) -> None:
    n = args.satellites
    halves = [tokens[: n // 2], tokens[n // 2:]]
    sims = []
    outputs = []
    deliveries = []
    started = time.monotonic()
    for index, (server, share) in enumerate(zip(servers, halves, strict=True)):
        token_file = workdir / f"tokens-{index}.txt"
        token_file.write_text("\n".join(share) + "\n")
        outputs.append(workdir / f"hold-{index}.json")
        deliveries.append(workdir / f"deliveries-{index}.txt")
        sims.append(simulator(server.env, server.url, len(share), 600 + args.hold, outputs[-1],
                              "--token-file", str(token_file), "--deliveries-out",
                              str(deliveries[-1]), "--seed", str(index + 1)))
    progress(f"bring-up: {n:,} satellites over two instances")
    # Counted in the shared database: each instance's gauge counts what it handled.
    online = until(lambda: asyncio.run(_online(database_url)) >= n
                   or any(sim.poll() is not None for sim in sims), timeout=900, interval=2.0)
    bring_up = time.monotonic() - started
    run.add(f"bring-up: {n:,} satellites over two instances (PostgreSQL + Redis)",
            f"{bring_up:.1f} s" if online else "not all online", "well under a minute",
            online and bring_up < 60)
    hold_started = time.monotonic()
    time.sleep(15)
    targets = asyncio.run(_satellite_ids(database_url))
    returned, mutations = asyncio.run(people.enqueue_commands(
        servers[0].url, session, targets, rate=args.commands_per_second,
        duration=args.people_seconds))
    run.add(f"enqueueCommand at {args.commands_per_second:g}/s on instance 1",
            people.describe(mutations), "answered, none failed",
            mutations.errors == 0 and mutations.missing == 0)
    remaining = args.hold - (time.monotonic() - hold_started)
    if remaining > 0:
        progress(f"holding the fleet {remaining:.0f} s more")
        time.sleep(remaining)
    held = time.monotonic() - hold_started
    for sim in sims:
        sim.send_signal(signal.SIGINT)
    summaries = [finished(sim, output, timeout=120) for sim, output in zip(sims, outputs,
                                                                          strict=True)]
    run.numbers["hold_summaries"] = summaries
    errors = sum(summary_errors(s) + summary_unreachable(s) for s in summaries)
    p99 = max(summary_route(s, "heartbeat")["p99_ms"] for s in summaries)
    p50 = max(summary_route(s, "heartbeat")["p50_ms"] for s in summaries)
    rate = sum(float(s["requests_per_second"]) for s in summaries)
    dropped = sum(s.metric("groundstation_heartbeat_history_dropped_total") for s in servers)
    run.add(f"{n:,} satellites held for {held:.0f} s over two instances (PostgreSQL + Redis)",
            f"{errors} errors or dropped connections, heartbeat p50 {p50:.0f} ms / p99 "
            f"{p99:.0f} ms, {rate:,.0f} req/s, {dropped:.0f} history rows dropped",
            "0 errors, heartbeat p99 ≤ 200 ms",
            errors == 0 and p99 <= BUDGETS["hold_heartbeat_p99_ms"] and dropped == 0)
    received: dict[str, float] = {}
    for path in deliveries:
        received.update(read_deliveries(path))
    delivery = people.delivery_latencies(returned, received)
    run.numbers["delivery"] = people.as_dict(delivery)
    run.add(f"command delivery at {args.commands_per_second:g}/s, enqueued on instance 1, "
            "half the fleet polling instance 2", people.describe(delivery),
            "p50 ≤ 50 ms, p99 ≤ 250 ms, none lost",
            people.passed(delivery, BUDGETS["delivery_p99_ms"], p50=BUDGETS["delivery_p50_ms"]))


if __name__ == "__main__":
    raise SystemExit(main())
