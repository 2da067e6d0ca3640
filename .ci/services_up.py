"""Exit 0 when PostgreSQL and Redis answer at the given URLs (CI's scale-out pass)."""

import asyncio
import sys

import asyncpg
import redis.asyncio as aioredis


async def check(database_url: str, redis_url: str) -> None:
    connection = await asyncpg.connect(database_url, timeout=5)
    await connection.close()
    client = aioredis.from_url(redis_url, socket_connect_timeout=5)
    try:
        await client.ping()
    finally:
        await client.aclose()


try:
    asyncio.run(check(sys.argv[1], sys.argv[2]))
except Exception as error:  # any failure means "not reachable" here
    print(f"not reachable: {error}", file=sys.stderr)
    sys.exit(1)
